/// RFC 4648 §5 base64url without padding: tokens, elements and proofs on the wire.
///
/// Written over bytes rather than through Foundation's base64 and `replacingOccurrences`:
/// every uploaded record's token is decoded (for its key version), and the Foundation
/// route, five string replacements through NSString, was the national node's largest
/// single cost while it took gathered batches.
///
/// What must stay true: `decode` accepts only the canonical form, the one `encode`
/// makes (no padding, no other alphabet, unused low bits of the last character zero), so
/// one byte string has exactly one text and a token compares equal only to itself.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 0–63 for a character of the alphabet, 0xFF for any other byte.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = UInt8(value) }
        return table
    }()

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        let length = (input.count * 4 + 2) / 3
        return String(unsafeUninitializedCapacity: length) { out in
            var o = 0
            var i = 0
            while i + 3 <= input.count {
                let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                for shift in [18, 12, 6, 0] { out[o] = alphabet[Int(n >> UInt32(shift) & 63)]; o += 1 }
                i += 3
            }
            let rest = input.count - i
            if rest > 0 {
                let n = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                for shift in [18, 12, 6].prefix(rest + 1) { out[o] = alphabet[Int(n >> UInt32(shift) & 63)]; o += 1 }
            }
            return o
        }
    }

    /// nil unless `text` is canonical unpadded base64url.
    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode(bytes: $0) }
    }

    private static func decode(bytes text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let tail = text.count % 4
        guard tail != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3 + max(0, tail - 1))
        var n: UInt32 = 0
        for (i, character) in text.enumerated() {
            let value = values[Int(character)]
            guard value != 0xFF else { return nil }
            n = n << 6 | UInt32(value)
            if i % 4 == 3 {
                out.append(UInt8(n >> 16 & 0xFF))
                out.append(UInt8(n >> 8 & 0xFF))
                out.append(UInt8(n & 0xFF))
                n = 0
            }
        }
        switch tail {
        case 2:
            guard n & 0xF == 0 else { return nil }
            out.append(UInt8(n >> 4 & 0xFF))
        case 3:
            guard n & 0x3 == 0 else { return nil }
            out.append(UInt8(n >> 10 & 0xFF))
            out.append(UInt8(n >> 2 & 0xFF))
        default:
            break
        }
        return out
    }
}
