import CGatewayShims

/// SHA-256 through OpenSSL, for callers that need a fingerprint of bytes (a request body
/// behind an idempotency key) without a crypto dependency of their own.
public enum Digest {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBytes { _ = gw_sha256(nil, 0, $0.baseAddress, $0.count, &out) }
        return out
    }
}
