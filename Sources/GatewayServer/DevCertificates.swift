import CGatewayShims
import Foundation
import GatewayNet

/// Development certificates made on a node's first start when its config names none:
/// a CA, the node's own certificate, and one client certificate per role, all under
/// `DATA/dev-certs/`. Kept across restarts; delete the folder to make new ones.
enum DevCertificates {
    /// A placeholder organization code (18 characters, as a unified social credit code).
    static let devOrganization = "91610000MA6TG0001A"

    struct Paths {
        let directory: String
        var ca: String { directory + "/ca.pem" }
        var nodeCertificate: String { directory + "/node.pem" }
        var nodeKey: String { directory + "/node-key.pem" }
        func client(_ role: Role) -> (certificate: String, key: String) {
            (directory + "/\(role.rawValue).pem", directory + "/\(role.rawValue)-key.pem")
        }
    }

    /// Fills unset TLS paths of `config` with development certificates, making them if
    /// they are not there yet. Returns the folder when it did, so the caller can say so.
    static func ensure(_ config: inout GatewayConfig) throws(DevCertificateAuthority.Failure) -> String? {
        guard config.tls.certificate == nil else { return nil }
        let paths = Paths(directory: config.dataDirectory + "/dev-certs")
        if !FileManager.default.fileExists(atPath: paths.directory) {
            // Made aside and renamed into place, so a start interrupted half-way never
            // leaves a folder that looks complete.
            let staging = Paths(directory: paths.directory + ".partial-\(getpid())")
            try make(staging)
            guard rename(staging.directory, paths.directory) == 0 else {
                throw .io("cannot move \(staging.directory) to \(paths.directory): \(String(cString: strerror(errno)))")
            }
            // The files and their folder's entries are synced already; this keeps the new name.
            let failure = gw_sync_directory(config.dataDirectory)
            guard failure == 0 else { throw .io("cannot sync \(config.dataDirectory): \(String(cString: strerror(failure)))") }
        }
        config.tls.certificate = paths.nodeCertificate
        config.tls.privateKey = paths.nodeKey
        if config.tls.clientCA == nil { config.tls.clientCA = paths.ca }
        return paths.directory
    }

    private static func make(_ paths: Paths) throws(DevCertificateAuthority.Failure) {
        do {
            try FileManager.default.createDirectory(atPath: paths.directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .io("cannot create \(paths.directory): \(error)")
        }
        let ca = try DevCertificateAuthority(commonName: "ImagingGateway development CA")
        try DevCertificateAuthority.write(ca.certificatePEM, to: paths.ca, secret: false)
        for role in Role.allCases {
            let issued = try ca.issue(commonName: "dev \(role.rawValue)", uri: role.uri(organization: devOrganization))
            let (cert, key) = role == .node ? (paths.nodeCertificate, paths.nodeKey) : paths.client(role)
            try DevCertificateAuthority.write(issued.certificate, to: cert, secret: false)
            try DevCertificateAuthority.write(issued.key, to: key, secret: true)
        }
    }
}
