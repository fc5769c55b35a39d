import Foundation
import GatewayNet
import PatientTokens

/// What a hospital's or clinic's agent needs: where the node is, its client certificate,
/// and the token service's public keys, pinned by version. A JSON file; flags override.
public struct AgentConfig: Codable, Sendable, Equatable {
    /// The node's base URL, `https://host:port`.
    public var node: String
    /// Client certificate and key for the node (role hospital to upload, clinic to look up).
    public var certificate: String
    public var privateKey: String
    /// The CA that issued the node's certificate.
    public var trustedCA: String
    /// The token service's base URL; default: the node.
    public var tokenService: String?
    /// Client certificate and key with role token-client; default: the ones above.
    public var tokenCertificate: String?
    public var tokenPrivateKey: String?
    /// Token-service public keys the agent trusts, version → base64url compressed point.
    /// A proof that does not verify against the pinned key refuses the whole batch.
    public var pinnedKeys: [String: String]
    /// Records per upload request.
    public var uploadBatch: Int?
    /// Blinded elements per token-service request.
    public var tokenBatch: Int?
    /// Token batches in flight at once.
    public var parallelism: Int?

    public init(node: String, certificate: String, privateKey: String, trustedCA: String, pinnedKeys: [String: String]) {
        self.node = node
        self.certificate = certificate
        self.privateKey = privateKey
        self.trustedCA = trustedCA
        self.pinnedKeys = pinnedKeys
    }

    public static func load(path: String) throws(AgentError) -> AgentConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw .config("cannot read \(path)") }
        do {
            return try JSONDecoder().decode(AgentConfig.self, from: data)
        } catch {
            throw .config("\(path) is not an agent config: \(error)")
        }
    }

    /// The pinned keys, decoded; a malformed entry is a config error, not a silent skip.
    func pinned() throws(AgentError) -> [Int: [UInt8]] {
        var out: [Int: [UInt8]] = [:]
        for (version, text) in pinnedKeys {
            guard let v = Int(version), v > 0, let key = Base64URL.decode(text), (try? VOPRFClient(publicKey: key)) != nil else {
                throw .config("pinnedKeys[\(version)] is not a version and a base64url P-256 public key")
            }
            out[v] = key
        }
        guard !out.isEmpty else { throw .config("pinnedKeys is empty: pin the token service's public key") }
        return out
    }

    /// Sends `request` to the node; its answer when the status is one of `expect`, else the
    /// node's error document as an AgentError.
    func send(_ request: HTTPRequest, with node: HTTPClient, expect: Set<Int> = [200]) async throws(AgentError) -> HTTPResponse {
        let response: HTTPResponse
        do {
            response = try await node.execute(request, url: self.node + request.target)
        } catch {
            throw .network("\(self.node): \(error)")
        }
        guard expect.contains(response.status) else { throw AgentError.from(response) }
        return response
    }

    func client(certificate: String, privateKey: String) throws(AgentError) -> HTTPClient {
        let tls: TLSContext
        do {
            tls = try TLSContext(configuration: TLSConfiguration(certificateChainPath: certificate, privateKeyPath: privateKey,
                                                                 trustedCAPath: trustedCA), server: false)
        } catch {
            throw .config("TLS: \(error.description)")
        }
        var configuration = HTTPClientConfiguration(tls: tls)
        configuration.requestTimeout = .seconds(120)
        return HTTPClient(configuration: configuration)
    }
}

/// Why an agent command failed. Never carries an identifier: inputs are named by line.
public enum AgentError: Error, Equatable, CustomStringConvertible {
    case config(String)
    case input(String)
    case network(String)
    /// The node answered with an error document.
    case server(status: Int, code: String, message: String)
    /// The token service's proof did not verify against the pinned key: its answer is refused.
    case proofRejected(version: Int)
    case keyNotPinned(version: Int)

    public var description: String {
        switch self {
        case .config(let m): "configuration: \(m)"
        case .input(let m): "input: \(m)"
        case .network(let m): "network: \(m)"
        case let .server(status, code, message): "the node answered \(status) \(code): \(message)"
        case .proofRejected(let v):
            "the token service's proof for key version \(v) does not verify against the pinned key; tokens refused"
        case .keyNotPinned(let v): "token key version \(v) is not pinned in the agent config; pin its public key first"
        }
    }

    static func from(_ response: HTTPResponse) -> AgentError {
        struct Document: Decodable {
            struct Detail: Decodable { let code: String; let message: String }
            let error: Detail
        }
        if let d = try? JSONDecoder().decode(Document.self, from: Data(response.body)) {
            return .server(status: response.status, code: d.error.code, message: d.error.message)
        }
        return .server(status: response.status, code: "unexpected", message: "no error document")
    }
}
