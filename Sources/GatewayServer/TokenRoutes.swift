import Foundation
import GatewayNet
import JSONText
import PatientTokens

/// The token service (DOMAIN.md §7): agents send blinded elements, the node answers with
/// evaluated elements and one proof per batch. It sees only random-looking points, and
/// logs none of them: errors name the element's position, never its bytes.
enum TokenRoutes {
    static let keyReaders: Set<String> = .roles(.tokenClient, .hospital, .clinic, .reader, .node, .operator)

    static func add(to router: inout Router, keys: TokenKeys, maxBatch: Int, pool: ComputePool, auditor: Auditor) {
        router.add("POST", "/v1/tokens/evaluate", roles: .roles(.tokenClient), .async { request in
            if let refusal = try await auditor.admit(request, counter: "token-evaluations") { return refusal }
            let (response, count) = try await pool.run { try evaluate(request, keys: keys, maxBatch: maxBatch) }
            if let refusal = try await auditor.admit(request, counter: "tokens", adding: count) { return refusal }
            try await auditor.record([auditor.event(request, .applicationActivity, .execute, counter: "token-evaluations",
                                                    count: count)])
            return response
        })
        router.add("GET", "/v1/tokens/keys", roles: keyReaders, .async { _ in
            try publicKeys(keys)
        })
    }

    struct EvaluateRequest: Decodable {
        let keyVersion: Int?
        let blindedElements: [String]
    }

    /// The answer and how many elements it evaluated.
    static func evaluate(_ request: HTTPRequest, keys: TokenKeys, maxBatch: Int) throws -> (HTTPResponse, Int) {
        guard request.mediaType == "application/json" else {
            throw HTTPError(415, "unsupported_media_type", "Send application/json.")
        }
        guard let body = try? JSONDecoder().decode(EvaluateRequest.self, from: Data(request.body)) else {
            throw HTTPError(400, "invalid_json",
                            "The body must be {\"keyVersion\": n (optional), \"blindedElements\": [base64url, ...]}.")
        }
        guard !body.blindedElements.isEmpty else { throw HTTPError(400, "empty_batch", "blindedElements is empty.") }
        guard body.blindedElements.count <= maxBatch else {
            throw HTTPError(413, "batch_too_large", "A batch holds at most \(maxBatch) blinded elements; split it.")
        }
        var elements: [[UInt8]] = []
        elements.reserveCapacity(body.blindedElements.count)
        for (i, text) in body.blindedElements.enumerated() {
            guard let bytes = Base64URL.decode(text), bytes.count == 33 else {
                throw HTTPError(400, "invalid_element", "blindedElements[\(i)] is not a base64url 33-byte compressed P-256 point.")
            }
            elements.append(bytes)
        }
        guard let version = body.keyVersion ?? keys.current.active?.version else {
            throw HTTPError(503, "no_active_key", "The token service has no active key.")
        }
        do {
            let (evaluated, proof) = try keys.withEvaluator(version: version) { try $0.blindEvaluate(elements) }
            let text = "{\"keyVersion\":\(version),\"evaluatedElements\":["
                + evaluated.map { "\"\(Base64URL.encode($0))\"" }.joined(separator: ",")
                + "],\"proof\":\"\(Base64URL.encode(proof))\"}"
            return (.json(text), elements.count)
        } catch TokenServiceError.unknownVersion(let v) {
            throw HTTPError(404, "unknown_key_version", "There is no token key version \(HTTPError.quote(String(v))).")
        } catch TokenServiceError.retired(let v) {
            throw HTTPError(410, "key_retired", "Token key version \(HTTPError.quote(String(v))) is retired; use the active version.")
        } catch TokenCryptoError.invalidElement {
            throw HTTPError(400, "invalid_element", "A blinded element is not a point on P-256.")
        }
    }

    static func publicKeys(_ keys: TokenKeys) throws -> HTTPResponse {
        let list = try keys.publicKeys().map { key in
            "{\"version\":\(key.version),\"state\":\(jsonString(key.state.rawValue)),"
                + "\"publicKey\":\"\(Base64URL.encode(key.publicKey))\"}"
        }
        return .json("{\"suite\":\"P256-SHA256\",\"mode\":\"VOPRF\",\"keys\":[\(list.joined(separator: ","))]}")
    }
}
