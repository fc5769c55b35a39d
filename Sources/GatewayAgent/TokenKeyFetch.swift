import Foundation
import GatewayNet
import PatientTokens

/// `gateway-agent init`: the service's current keys, to pin on first use.
public enum TokenKeyFetch {
    public static func current(_ config: AgentConfig) async throws(AgentError) -> [String: String] {
        struct Keys: Decodable { let keys: [TokenClient.ServiceKey] }
        let http = try config.client(certificate: config.tokenCertificate ?? config.certificate,
                                     privateKey: config.tokenPrivateKey ?? config.privateKey)
        let url = (config.tokenService ?? config.node) + "/v1/tokens/keys"
        let response: HTTPResponse
        do {
            response = try await http.execute(HTTPRequest(method: "GET", target: "/v1/tokens/keys"), url: url)
        } catch {
            throw .network("\(url): \(error)")
        }
        guard response.status == 200 else { throw AgentError.from(response) }
        guard let keys = try? JSONDecoder().decode(Keys.self, from: Data(response.body)) else {
            throw .network("the token service's key list is not JSON")
        }
        var pinned: [String: String] = [:]
        for key in keys.keys where key.state != "retired" { pinned[String(key.version)] = key.publicKey }
        return pinned
    }
}
