import Foundation
import GatewayNet
import ImagingIndex
import IndexStore
import JSONText

/// `POST /v1/federation/lookups` (role node): the native lookups a peer would otherwise
/// send one request each (LookupBatcher), in one. Body
/// `{"lookups":[{"requestID":"…","target":"/v1/patients/{token}/studies?…"},…]}`; answer
/// `{"answers":[{"status":200,"body":{…}},…]}` in the same order, each answer exactly what
/// `GET target` with `X-Request-ID: requestID` would have given the peer: the same checks,
/// its own audit event under the peer's request ID, scope local (a peer's lookup is never
/// forwarded). The quota is admitted once for the batch, counting each lookup. Only that
/// one route is reachable this way, so a batch cannot reach what its role could not.
enum FederationRoutes {
    static let maxLookups = 64

    static func add(to router: inout Router, store: IndexStore, tokenKeys: TokenKeys?, auditor: Auditor, region: String) {
        router.add("POST", LookupBatcher.path, roles: .roles(.node), .awaiting { request in
            let lookups = try lookups(in: request)
            if let refusal = try await auditor.admit(request, counter: "lookups", adding: lookups.count) { return refusal }
            var answers = [HTTPResponse?](repeating: nil, count: lookups.count)
            var asked: [(index: Int, request: HTTPRequest, query: StudyQuery, token: String)] = []
            for (i, lookup) in lookups.enumerated() {
                do throws(HTTPError) {
                    let (query, token, _, _) = try IndexRoutes.patientQuery(try routed(lookup), tokenKeys: tokenKeys)
                    asked.append((i, lookup, query, token))
                } catch {
                    answers[i] = error.response
                }
            }
            let found = try await auditor.lookups(asked.map(\.request), tokens: asked.map(\.token), asked.map(\.query), in: store)
            for (lookup, studies) in zip(asked, found) {
                let status = studies.count >= lookup.query.limit ? "partial" : "complete"
                answers[lookup.index] = IndexRoutes.page(token: lookup.token, query: lookup.query, scope: "local",
                                                         regions: [(region, status, studies.count)], studies: studies)
            }
            var out = JSONWriter(capacity: 32 + answers.reduce(0) { $0 + 24 + ($1?.body.count ?? 0) })
            out.beginObject()
            out.key("answers")
            out.array(answers.compactMap { $0 }) { out, answer in
                out.beginObject()
                out.field("status", answer.status)
                out.key("body")
                out.value(json: answer.body)
                out.endObject()
            }
            out.endObject()
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]), body: out.bytes)
        })
    }

    /// The batch's lookups as the requests they stand for, each with the batch's caller.
    static func lookups(in request: HTTPRequest) throws(HTTPError) -> [HTTPRequest] {
        guard let body = JSONValue.parseObject(request.body), case .array(let items)? = body["lookups"],
              (1...maxLookups).contains(items.count)
        else {
            throw HTTPError(400, "invalid_batch", "The body is {\"lookups\":[{\"requestID\":…,\"target\":…}]} with 1 to \(maxLookups) lookups.")
        }
        return try items.map { item throws(HTTPError) in
            guard case .object(let fields) = item, case .string(let target)? = fields["target"] else {
                throw HTTPError(400, "invalid_batch", "Each lookup is an object with a string 'target'.")
            }
            var headers = HTTPHeaders()
            switch fields["requestID"] {
            case nil: break
            case .string(let id)?: headers.add("X-Request-ID", id)
            default: throw HTTPError(400, "invalid_batch", "A lookup's 'requestID' is a string.")
            }
            var lookup = HTTPRequest(method: "GET", target: target, headers: headers, peer: request.peer)
            lookup.isTLS = request.isTLS
            return lookup
        }
    }

    /// `lookup` with its token bound, as the router binds it; 400 when its target is not
    /// `/v1/patients/{token}/studies`.
    static func routed(_ lookup: HTTPRequest) throws(HTTPError) -> HTTPRequest {
        let segments = lookup.path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count == 5, segments[0].isEmpty, segments[1] == "v1", segments[2] == "patients", segments[4] == "studies",
              let token = segments[3].contains("%") ? String(segments[3]).removingPercentEncoding : String(segments[3])
        else {
            throw HTTPError(400, "invalid_target", "A batched lookup's target is /v1/patients/{token}/studies with its query.")
        }
        var lookup = lookup
        lookup.pathParameters["token"] = token
        return lookup
    }
}
