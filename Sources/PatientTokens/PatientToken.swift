import Foundation

/// A patient token as the index stores it: `v<keyVersion>:<base64url of the 32-byte VOPRF
/// output>`, unpadded. The version says which service key made it, so rotation can tell
/// old tokens from new.
public struct PatientToken: Hashable, Sendable, CustomStringConvertible {
    public let keyVersion: Int
    public let output: [UInt8]

    public init(keyVersion: Int, output: [UInt8]) {
        precondition(output.count == 32 && keyVersion > 0)
        self.keyVersion = keyVersion
        self.output = output
    }

    public init?(_ text: String) {
        guard text.first == "v", let colon = text.firstIndex(of: ":"),
              let version = Int(text[text.index(after: text.startIndex)..<colon]), version > 0,
              let bytes = Base64URL.decode(String(text[text.index(after: colon)...])), bytes.count == 32
        else { return nil }
        self.init(keyVersion: version, output: bytes)
    }

    public var description: String { "v\(keyVersion):\(Base64URL.encode(output))" }
}

/// RFC 4648 §5 base64url without padding: tokens, elements and proofs on the wire.
public enum Base64URL {
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// nil unless `text` is canonical unpadded base64url.
    public static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 == 0x2D || $0 == 0x5F || (0x30...0x39).contains($0)
                || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }), text.utf8.count % 4 != 1
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: standard), encode(data) == text else { return nil }
        return Array(data)
    }
}
