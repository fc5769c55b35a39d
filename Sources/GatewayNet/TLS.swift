import CGatewayShims
import COpenSSL
import Foundation

/// TLS settings for a listener or a client. Paths are PEM files.
public struct TLSConfiguration: Sendable {
    public var certificateChainPath: String?
    public var privateKeyPath: String?
    /// CA bundle that peers' certificates must chain to; nil means peers are not
    /// verified (a server then asks for no client certificate).
    public var trustedCAPath: String?
    /// A CRL (PEM) checked for the leaf; verification fails closed once its nextUpdate
    /// has passed, which is OpenSSL's own rule for an expired CRL.
    public var crlPath: String?
    /// TLS 1.3 only unless this is set; never anything older than 1.2.
    public var allowTLS12 = false
    /// Where a peer's SAN URI identity starts, e.g. `urn:imaging-gateway:`.
    public var identityPrefix = "urn:imaging-gateway:"

    public init(certificateChainPath: String? = nil, privateKeyPath: String? = nil,
                trustedCAPath: String? = nil, crlPath: String? = nil) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.trustedCAPath = trustedCAPath
        self.crlPath = crlPath
    }
}

public enum TLSError: Error, CustomStringConvertible {
    case configuration(String)

    public var description: String {
        switch self {
        case .configuration(let message): return "TLS configuration: \(message)"
        }
    }
}

/// An SSL_CTX: built once, shared read-only by every connection of a listener or client.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    let identityPrefix: String
    let isServer: Bool

    public init(configuration c: TLSConfiguration, server: Bool) throws(TLSError) {
        guard let ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
            throw .configuration("SSL_CTX_new failed: \(TLSSession.drainErrors())")
        }
        self.ctx = ctx
        isServer = server
        identityPrefix = c.identityPrefix
        _ = gw_ssl_ctx_set_min_proto(ctx, c.allowTLS12 ? gw_tls1_2_version() : gw_tls1_3_version())
        _ = gw_ssl_ctx_set_mode(ctx, Int(gw_ssl_mode_defaults()))
        _ = gw_ssl_ctx_set_options(ctx, gw_ssl_op_defaults())
        // One read syscall takes whatever records are queued, instead of a 5-byte header
        // read and a body read per record.
        gw_ssl_ctx_set_read_ahead(ctx)
        let aead12 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
            + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
        guard SSL_CTX_set_cipher_list(ctx, aead12) == 1,
              SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") == 1,
              gw_ssl_ctx_set_groups(ctx, "X25519:P-256") == 1 else {
            throw .configuration("cipher or group setup failed: \(TLSSession.drainErrors())")
        }
        if let chain = c.certificateChainPath, let key = c.privateKeyPath {
            guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else {
                throw .configuration("cannot load certificate chain \(chain): \(TLSSession.drainErrors())")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1,
                  SSL_CTX_check_private_key(ctx) == 1 else {
                throw .configuration("cannot load private key \(key) or it does not match: \(TLSSession.drainErrors())")
            }
        } else if server {
            throw .configuration("a TLS listener needs a certificate chain and a private key")
        }
        if let ca = c.trustedCAPath {
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                throw .configuration("cannot load CA bundle \(ca): \(TLSSession.drainErrors())")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        } else if !server {
            throw .configuration("a TLS client needs a CA bundle to verify servers")
        }
        if let crl = c.crlPath { try Self.loadCRL(ctx, path: crl) }
        if server {
            gw_ssl_ctx_server_alpn_http11(ctx)
            SSL_CTX_set_num_tickets(ctx, 1)
            let sid = Array("imaging-gateway".utf8)
            _ = SSL_CTX_set_session_id_context(ctx, sid, UInt32(sid.count))
        } else {
            _ = gw_ssl_ctx_client_alpn_http11(ctx)
        }
    }

    private static func loadCRL(_ ctx: OpaquePointer, path: String) throws(TLSError) {
        guard let file = fopen(path, "r") else { throw .configuration("cannot open CRL \(path)") }
        defer { fclose(file) }
        guard let store = SSL_CTX_get_cert_store(ctx) else { throw .configuration("no certificate store") }
        var loaded = 0
        while let crl = PEM_read_X509_CRL(file, nil, nil, nil) {
            X509_STORE_add_crl(store, crl)
            X509_CRL_free(crl)
            loaded += 1
        }
        ERR_clear_error()
        guard loaded > 0 else { throw .configuration("no CRL found in \(path)") }
        X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK))
    }

    deinit { SSL_CTX_free(ctx) }
}

/// The outcome of one non-blocking read, write or handshake step.
enum IOResult {
    case done(Int)
    /// The call must be retried once the socket is readable (also for a write, when TLS
    /// needs the peer's bytes first: SSL_write may need to read).
    case wantRead
    case wantWrite
    case eof
    case failed(String)
}

/// One SSL object bound to one non-blocking socket, touched only on its loop's queue
/// (OpenSSL objects are not thread-safe).
final class TLSSession {
    let ssl: OpaquePointer

    init?(context: TLSContext, fd: Int32, serverName: String? = nil) {
        guard let ssl = SSL_new(context.ctx) else { return nil }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            if let name = serverName {
                _ = gw_ssl_set_sni(ssl, name)
                _ = SSL_set1_host(ssl, name)
            }
            SSL_set_connect_state(ssl)
        }
    }

    deinit { SSL_free(ssl) }

    func handshake() -> IOResult {
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        return r == 1 ? .done(0) : classify(r)
    }

    func read(into buf: UnsafeMutableRawBufferPointer) -> IOResult {
        ERR_clear_error()
        let r = SSL_read(ssl, buf.baseAddress, Int32(buf.count))
        return r > 0 ? .done(Int(r)) : classify(r)
    }

    func write(_ buf: UnsafeRawBufferPointer) -> IOResult {
        ERR_clear_error()
        let r = SSL_write(ssl, buf.baseAddress, Int32(buf.count))
        return r > 0 ? .done(Int(r)) : classify(r)
    }

    /// Sends close_notify without waiting for the peer's; the fd closes right after.
    func shutdown() {
        ERR_clear_error()
        if SSL_is_init_finished(ssl) == 1 { _ = SSL_shutdown(ssl) }
    }

    /// Returns the record buffers (about 33 KiB) to the allocator while the connection
    /// waits; OpenSSL refuses if they hold unread or unsent bytes.
    func releaseBuffers() {
        _ = SSL_free_buffers(ssl)
    }

    /// Whether OpenSSL holds bytes already read from the socket but not yet returned.
    var hasPending: Bool { SSL_has_pending(ssl) == 1 }

    /// The verified peer certificate's first SAN URI.
    func peerURI() -> String? {
        var buf = [UInt8](repeating: 0, count: 512)
        let n = buf.withUnsafeMutableBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { gw_peer_san_uri(ssl, $0.baseAddress, $0.count) }
        }
        return n > 0 ? String(decoding: buf[0..<Int(n)], as: UTF8.self) : nil
    }

    private func classify(_ r: Int32) -> IOResult {
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .eof
        case SSL_ERROR_SYSCALL:
            let e = errno
            return e == 0 ? .eof : .failed(String(cString: strerror(e)))
        default:
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                return .failed("certificate verification: " + String(cString: X509_verify_cert_error_string(verify)))
            }
            return .failed(Self.drainErrors())
        }
    }

    static func drainErrors() -> String {
        var messages: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            messages.append(ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)")
        }
        return messages.isEmpty ? "unknown TLS error" : messages.joined(separator: "; ")
    }
}

/// A socket seen as a byte stream, plain or TLS.
enum Transport {
    case plain(Int32)
    case tls(TLSSession)

    func read(into buf: UnsafeMutableRawBufferPointer) -> IOResult {
        switch self {
        case .tls(let session): return session.read(into: buf)
        case .plain(let fd):
            let n = recv(fd, buf.baseAddress, buf.count, 0)
            if n > 0 { return .done(n) }
            if n == 0 { return .eof }
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .wantRead
                : .failed(String(cString: strerror(errno)))
        }
    }

    func write(_ buf: UnsafeRawBufferPointer) -> IOResult {
        switch self {
        case .tls(let session): return session.write(buf)
        case .plain(let fd):
            let n = send(fd, buf.baseAddress, buf.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .done(n) }
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .wantWrite
                : .failed(String(cString: strerror(errno)))
        }
    }
}
