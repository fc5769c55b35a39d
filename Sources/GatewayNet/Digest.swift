import COpenSSL

/// SHA-256 through OpenSSL, for callers that need a fingerprint of bytes (a request body
/// behind an idempotency key, an audit leaf) without a crypto dependency of their own.
public enum Digest {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = bytes.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &out, &length, EVP_sha256(), nil)
        }
        return out
    }
}
