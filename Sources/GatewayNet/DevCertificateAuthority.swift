import CGatewayShims
import COpenSSL
import Foundation

/// A throwaway certificate authority for development: a P-256 CA and leaf certificates
/// whose SAN carries a URI identity (plus localhost, 127.0.0.1 and ::1). Production
/// certificates come from the operator's PKI; see Certs/README.md.
public final class DevCertificateAuthority {
    public enum Failure: Error, CustomStringConvertible {
        case openssl(String)
        case io(String)

        public var description: String {
            switch self {
            case .openssl(let m): return "certificate generation failed: \(m)"
            case .io(let m): return m
            }
        }
    }

    private let key: OpaquePointer
    private let certificate: OpaquePointer

    /// Makes a new CA valid for `days`.
    public init(commonName: String, days: Int = 825) throws(Failure) {
        guard let key = gw_generate_p256() else { throw .openssl(TLSSession.drainErrors()) }
        self.key = key
        certificate = try Self.build(subject: commonName, uri: nil, key: key, issuerKey: key, issuer: nil, days: days)
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(key)
    }

    /// The CA certificate, PEM.
    public var certificatePEM: String { Self.pem { PEM_write_bio_X509($0, certificate) } }

    /// Issues a leaf for `uri`; returns (certificate PEM, private key PEM).
    public func issue(commonName: String, uri: String, days: Int = 397) throws(Failure) -> (certificate: String, key: String) {
        guard let leafKey = gw_generate_p256() else { throw .openssl(TLSSession.drainErrors()) }
        defer { EVP_PKEY_free(leafKey) }
        let leaf = try Self.build(subject: commonName, uri: uri, key: leafKey, issuerKey: key, issuer: certificate, days: days)
        defer { X509_free(leaf) }
        let certPEM = Self.pem { PEM_write_bio_X509($0, leaf) }
        let keyPEM = Self.pem { PEM_write_bio_PrivateKey($0, leafKey, nil, nil, 0, nil, nil) }
        return (certPEM, keyPEM)
    }

    /// Writes `text` to `path`, readable by the owner only when `secret`, synced with its
    /// directory entry (`gw_publish_file`): a power cut leaves the whole file or none.
    public static func write(_ text: String, to path: String, secret: Bool) throws(Failure) {
        let bytes = Array(text.utf8)
        let failure = gw_publish_file(path, bytes, bytes.count, secret ? 0o600 : 0o644, 1)
        guard failure == 0 else { throw .io("cannot write \(path): \(String(cString: strerror(failure)))") }
    }

    private static func build(subject: String, uri: String?, key: OpaquePointer, issuerKey: OpaquePointer,
                              issuer: OpaquePointer?, days: Int) throws(Failure) -> OpaquePointer {
        guard let cert = X509_new() else { throw .openssl(TLSSession.drainErrors()) }
        var serial = [UInt8](repeating: 0, count: 16)
        _ = RAND_bytes(&serial, Int32(serial.count))
        serial[0] &= 0x7F
        let bn = BN_bin2bn(serial, Int32(serial.count), nil)
        defer { BN_free(bn) }
        let name = X509_NAME_new()
        defer { X509_NAME_free(name) }
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, "ImagingGateway development", -1, -1, 0)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, subject, -1, -1, 0)
        let ok = X509_set_version(cert, 2) == 1
            && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nil
            && X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nil
            && X509_gmtime_adj(X509_getm_notAfter(cert), days * 86_400) != nil
            && X509_set_subject_name(cert, name) == 1
            && X509_set_issuer_name(cert, issuer.map { X509_get_subject_name($0) } ?? name) == 1
            && X509_set_pubkey(cert, key) == 1
            && gw_cert_add_san_uri(cert, issuer ?? cert, uri ?? "", uri == nil ? 1 : 0) == 1
            && X509_sign(cert, issuerKey, EVP_sha256()) > 0
        guard ok else {
            X509_free(cert)
            throw .openssl(TLSSession.drainErrors())
        }
        return cert
    }

    private static func pem(_ write: (OpaquePointer?) -> Int32) -> String {
        let bio = BIO_new(BIO_s_mem())
        defer { BIO_free(bio) }
        _ = write(bio)
        var data: UnsafeMutablePointer<CChar>?
        let n = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)
        guard let data, n > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
    }
}
