import CGatewayShims

/// SHA-256 through OpenSSL, for callers that need a fingerprint of bytes (a request body
/// behind an idempotency key) without a crypto dependency of their own.
public enum Digest {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { sha256(head: [], bytes) }

    /// SHA-256(head ‖ body), without copying the two into one array first.
    public static func sha256(head: [UInt8], _ body: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        head.withUnsafeBytes { h in
            body.withUnsafeBytes { b in _ = gw_sha256(h.baseAddress, h.count, b.baseAddress, b.count, &out) }
        }
        return out
    }
}
