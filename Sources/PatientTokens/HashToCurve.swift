import CGatewayShims

/// RFC 9380 §5.3.1 expand_message_xmd with SHA-256 (b_in_bytes 32, s_in_bytes 64).
enum HashToCurve {
    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBytes { _ = gw_sha256(nil, 0, $0.baseAddress, $0.count, &out) }
        return out
    }

    /// `length` uniform bytes from `message` under `dst`. Callers pass at most 255 bytes of
    /// DST and ask for at most 255 · 32 bytes, the RFC's limits; both are constants here.
    static func expandMessageXMD(_ message: [UInt8], dst: [UInt8], length: Int) -> [UInt8] {
        precondition(dst.count <= 255 && length <= 255 * 32)
        let ell = (length + 31) / 32
        let dstPrime = dst + [UInt8(dst.count)]
        var messagePrime = [UInt8](repeating: 0, count: 64)
        messagePrime += message
        messagePrime += [UInt8(length >> 8), UInt8(length & 0xFF), 0]
        messagePrime += dstPrime
        let b0 = sha256(messagePrime)
        var previous = sha256(b0 + [1] + dstPrime)
        var uniform = previous
        if ell > 1 {
            for i in 2...ell {
                let mixed = zip(b0, previous).map { $0 ^ $1 }
                previous = sha256(mixed + [UInt8(i)] + dstPrime)
                uniform += previous
            }
        }
        return Array(uniform.prefix(length))
    }
}
