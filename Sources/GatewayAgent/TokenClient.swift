import Foundation
import GatewayNet
import PatientTokens

/// Turns normalized identifiers into patient tokens through the token service: blind
/// here, evaluate there, verify the batch proof against the pinned key, unblind here.
/// The service sees random points only; identifiers never leave this process.
public final class TokenClient: Sendable {
    let http: HTTPClient
    let baseURL: String
    let pinned: [Int: [UInt8]]
    let batchSize: Int
    let parallelism: Int

    public init(config: AgentConfig) throws(AgentError) {
        http = try config.client(certificate: config.tokenCertificate ?? config.certificate,
                                 privateKey: config.tokenPrivateKey ?? config.privateKey)
        baseURL = config.tokenService ?? config.node
        pinned = try config.pinned()
        batchSize = max(1, config.tokenBatch ?? 100)
        parallelism = max(1, config.parallelism ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    public struct ServiceKey: Decodable, Sendable {
        public let version: Int
        public let state: String
        public let publicKey: String
    }

    /// The service's keys; each must equal its pinned key, or it is left out.
    public func usableVersions() async throws(AgentError) -> (active: Int, all: [Int]) {
        struct Keys: Decodable { let keys: [ServiceKey] }
        let response = try await send(HTTPRequest(method: "GET", target: "/v1/tokens/keys"), path: "/v1/tokens/keys")
        guard let keys = try? JSONDecoder().decode(Keys.self, from: Data(response.body)) else {
            throw .network("the token service's key list is not JSON")
        }
        let trusted = keys.keys.filter { key in
            key.state != "retired" && pinned[key.version].map { Base64URL.encode($0) == key.publicKey } == true
        }
        guard let active = keys.keys.first(where: { $0.state == "active" }) else {
            throw .network("the token service names no active key")
        }
        guard trusted.contains(where: { $0.version == active.version }) else { throw .keyNotPinned(version: active.version) }
        return (active.version, trusted.map(\.version).sorted())
    }

    /// Tokens for `inputs` under key `version`, in input order.
    public func tokenize(_ inputs: [TokenInput], version: Int) async throws(AgentError) -> [PatientToken] {
        guard let key = pinned[version] else { throw .keyNotPinned(version: version) }
        let chunks = stride(from: 0, to: inputs.count, by: batchSize).map { Array(inputs[$0..<min($0 + batchSize, inputs.count)]) }
        var results = [[PatientToken]](repeating: [], count: chunks.count)
        do {
            try await withThrowingTaskGroup(of: (Int, [PatientToken]).self) { group in
                var next = 0
                func launch() {
                    let i = next, chunk = chunks[i]
                    next += 1
                    group.addTask { (i, try await self.evaluate(chunk, version: version, publicKey: key)) }
                }
                while next < min(parallelism, chunks.count) { launch() }
                while let (i, tokens) = try await group.next() {
                    results[i] = tokens
                    if next < chunks.count { launch() }
                }
            }
        } catch let error as AgentError {
            throw error
        } catch {
            throw .network("\(error)")
        }
        return results.flatMap { $0 }
    }

    private struct Evaluation: Decodable {
        let keyVersion: Int
        let evaluatedElements: [String]
        let proof: String
    }

    private func evaluate(_ inputs: [TokenInput], version: Int, publicKey: [UInt8]) async throws(AgentError) -> [PatientToken] {
        let client: VOPRFClient, batch: BlindedBatch
        do {
            client = try VOPRFClient(publicKey: publicKey)
            batch = try client.blind(inputs.map(\.voprfInput))
        } catch {
            throw .input("cannot blind: \(error)")
        }
        let body = "{\"keyVersion\":\(version),\"blindedElements\":["
            + batch.blindedElements.map { "\"\(Base64URL.encode($0))\"" }.joined(separator: ",") + "]}"
        let request = HTTPRequest(method: "POST", target: "/v1/tokens/evaluate",
                                  headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array(body.utf8))
        let response = try await send(request, path: "/v1/tokens/evaluate")
        guard let answer = try? JSONDecoder().decode(Evaluation.self, from: Data(response.body)),
              answer.keyVersion == version,
              let proof = Base64URL.decode(answer.proof)
        else { throw .proofRejected(version: version) }
        let evaluated = answer.evaluatedElements.compactMap(Base64URL.decode)
        guard evaluated.count == inputs.count else { throw .proofRejected(version: version) }
        do {
            return try client.finalize(batch, evaluated: evaluated, proof: proof).map {
                PatientToken(keyVersion: version, output: $0)
            }
        } catch {
            throw .proofRejected(version: version)
        }
    }

    private func send(_ request: HTTPRequest, path: String) async throws(AgentError) -> HTTPResponse {
        let response: HTTPResponse
        do {
            response = try await http.execute(request, url: baseURL + path)
        } catch {
            throw .network("token service \(baseURL): \(error)")
        }
        guard response.status == 200 else { throw AgentError.from(response) }
        return response
    }
}
