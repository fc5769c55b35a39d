import CGatewayShims
import COpenSSL
import Foundation

public enum AuditError: Error, Equatable, CustomStringConvertible {
    case key(String)

    public var description: String {
        switch self {
        case .key(let m): "audit key: \(m)"
        }
    }
}

/// A signed statement of the log's state: its size and root at a time (RFC 9162 §4.10's
/// signed tree head, as a small text note). Anyone holding the node's audit public key
/// can check it, then check inclusion and consistency proofs against it.
public struct Checkpoint: Codable, Sendable, Equatable {
    public let origin: String
    public let treeSize: Int
    /// Base64 of the 32-byte root.
    public let rootHash: String
    public let time: String
    /// Base64 of an ECDSA P-256 / SHA-256 signature (DER) over `signedText`.
    public let signature: String

    public init(origin: String, treeSize: Int, rootHash: String, time: String, signature: String) {
        self.origin = origin
        self.treeSize = treeSize
        self.rootHash = rootHash
        self.time = time
        self.signature = signature
    }

    public var signedText: String {
        "imaging-gateway audit checkpoint\n\(origin)\n\(treeSize)\n\(rootHash)\n\(time)\n"
    }

    public var root: [UInt8] { Array(Data(base64Encoded: rootHash) ?? Data()) }
}

/// Signs checkpoints with the node's audit key, an ECDSA P-256 key kept in its own PEM
/// file (mode 0600), made on first use. It is not the TLS key: rotating a certificate
/// must not change who signed the log.
public final class CheckpointSigner: @unchecked Sendable {
    private let key: OpaquePointer
    public let publicKeyPEM: String
    private let lock = NSLock()

    public init(keyPath: String) throws(AuditError) {
        if !FileManager.default.fileExists(atPath: keyPath) {
            guard let fresh = gw_generate_p256() else { throw .key("cannot generate a P-256 key") }
            defer { EVP_PKEY_free(fresh) }
            guard let bio = BIO_new(BIO_s_mem()) else { throw .key("BIO_new") }
            defer { BIO_free(bio) }
            guard PEM_write_bio_PrivateKey(bio, fresh, nil, nil, 0, nil, nil) == 1 else {
                throw .key("cannot encode a P-256 key")
            }
            var pem = [UInt8](repeating: 0, count: 4096)
            let length = BIO_read(bio, &pem, Int32(pem.count))
            // Linked, not renamed: should another process have made the key meanwhile, its
            // key stays and is the one read below.
            let failure = gw_publish_file(keyPath, pem, Int(max(0, length)), 0o600, 0)
            guard length > 0, failure == 0 || failure == EEXIST else { throw .key("cannot write \(keyPath): errno \(failure)") }
        }
        guard let file = fopen(keyPath, "r") else { throw .key("cannot read \(keyPath)") }
        defer { fclose(file) }
        guard let key = PEM_read_PrivateKey(file, nil, nil, nil) else {
            ERR_clear_error()
            throw .key("\(keyPath) is not a PEM private key")
        }
        self.key = key
        guard let bio = BIO_new(BIO_s_mem()) else { throw .key("BIO_new") }
        defer { BIO_free(bio) }
        PEM_write_bio_PUBKEY(bio, key)
        var pem = [UInt8](repeating: 0, count: 1024)
        let n = BIO_read(bio, &pem, Int32(pem.count))
        publicKeyPEM = String(decoding: pem.prefix(Int(max(0, n))), as: UTF8.self)
    }

    deinit { EVP_PKEY_free(key) }

    public func sign(origin: String, treeSize: Int, root: [UInt8], time: Date = Date()) -> Checkpoint {
        let unsigned = Checkpoint(origin: origin, treeSize: treeSize, rootHash: Data(root).base64EncodedString(),
                                  time: AuditEvent.format(time), signature: "")
        let message = Array(unsigned.signedText.utf8)
        let signature: [UInt8] = lock.withLock {
            let ctx = EVP_MD_CTX_new()
            defer { EVP_MD_CTX_free(ctx) }
            var length = 0
            guard EVP_DigestSignInit(ctx, nil, EVP_sha256(), nil, key) == 1,
                  EVP_DigestSign(ctx, nil, &length, message, message.count) == 1 else { return [] }
            var out = [UInt8](repeating: 0, count: length)
            guard EVP_DigestSign(ctx, &out, &length, message, message.count) == 1 else { return [] }
            return Array(out.prefix(length))
        }
        return Checkpoint(origin: origin, treeSize: treeSize, rootHash: unsigned.rootHash, time: unsigned.time,
                          signature: Data(signature).base64EncodedString())
    }

    /// Whether `checkpoint` was signed by the key whose public half is `publicKeyPEM`.
    public static func verify(_ checkpoint: Checkpoint, publicKeyPEM: String) -> Bool {
        let pem = Array(publicKeyPEM.utf8)
        guard let signature = Data(base64Encoded: checkpoint.signature),
              let bio = pem.withUnsafeBufferPointer({ BIO_new_mem_buf($0.baseAddress, Int32($0.count)) })
        else { return false }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PUBKEY(bio, nil, nil, nil) else {
            ERR_clear_error()
            return false
        }
        defer { EVP_PKEY_free(key) }
        let ctx = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(ctx) }
        let message = Array(checkpoint.signedText.utf8), sig = Array(signature)
        let ok = EVP_DigestVerifyInit(ctx, nil, EVP_sha256(), nil, key) == 1
            && EVP_DigestVerify(ctx, sig, sig.count, message, message.count) == 1
        ERR_clear_error()
        return ok
    }
}
