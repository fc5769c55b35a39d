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
