import Foundation
import GatewayNet
import ImagingIndex
import IndexStore

/// A patient lookup across regions, shared by the native API, QIDO-RS and FHIR: this
/// node's store and the peers the scope names, at once, each peer under the federation
/// deadline; merged, deduplicated by (StudyInstanceUID, storage unit), newest first,
/// then paged. Each region's answer is reported: complete, partial, timeout or error.
/// The audit event names every study on the page the caller receives, whichever region
/// held it, and is durable before the answer; peers log their part under the same
/// request ID.
enum ScopedLookup {
    typealias Region = (region: String, status: String, count: Int)

    /// `local`, `all` (the default) or `region:CODE`. A lookup from a peer (role node) is
    /// answered from this node's store only, whatever valid scope it asks: never forwarded
    /// twice. An invalid one is refused from a peer too, as the API description says.
    static func scope(_ value: String?, callerRole: String?) throws(HTTPError) -> String {
        if let v = value {
            let code = v.dropFirst("region:".count)
            guard v == "local" || v == "all" || (v.hasPrefix("region:") && Codes.isSixDigits(code)) else {
                throw HTTPError(400, "invalid_scope", "'scope' is local, all or region:<six-digit code>.")
            }
        }
        if callerRole == Role.node.rawValue { return "local" }
        return value ?? "all"
    }

    /// The peers a lookup in `scope` asks; none when this node's store answers alone. 404
    /// when the scope names neither this node's region nor a peer's.
    static func peers(_ scope: String, federation: Federation?, region: String) throws(HTTPError) -> [Federation.Peer] {
        let peers = scope == "local" ? [] : federation?.peers(for: scope) ?? []
        let here = scope == "local" || scope == "all" || scope == "region:\(region)"
        guard here || !peers.isEmpty else {
            throw HTTPError(404, "unknown_region", "\(scope) is neither this node's region nor one of its peers.")
        }
        return peers
    }

    /// `returned`: which of the studies on the page the caller passes on (a FHIR search
    /// narrowed by body site); the audit event names only those.
    static func run(_ request: HTTPRequest, token: String, purpose: String, query: StudyQuery, scope: String,
                    federation: Federation?, region: String, store: IndexStore, auditor: Auditor, counter: String = "lookups",
                    returned: (@Sendable (StudyRecord) -> Bool)? = nil) async throws -> (studies: [StudyRecord], regions: [Region]) {
        let peers = try peers(scope, federation: federation, region: region)
        let here = scope == "local" || scope == "all" || scope == "region:\(region)"
        guard let federation, !peers.isEmpty else {
            let studies = try await auditor.lookup(request, asked: token, query, in: store, counter: counter, returned: returned)
            return (studies, [ownRegion(region, found: studies.count, limit: query.limit)])
        }
        guard query.offset <= 1_000 else {
            throw HTTPError(400, "invalid_offset", "Across regions the offset goes up to 1000; narrow the search by date.")
        }
        var wide = query
        wide.limit = query.limit + query.offset
        wide.offset = 0
        var target = "/v1/patients/\(token)/studies?purpose=\(purpose)&scope=local&limit=\(wide.limit)"
        if let from = query.dateFrom { target += "&from=\(from)" }
        if let to = query.dateTo { target += "&to=\(to)" }
        if !query.modalities.isEmpty { target += "&modality=" + query.modalities.joined(separator: ",") }
        let requestID = Auditor.requestID(request)
        async let remote = federation.lookup(target, at: peers, limit: wide.limit, requestID: requestID)
        let local = wide
        let mine = here ? try await IndexRoutes.storeCall { () throws(StoreError) in try await store.query(local) } : []
        let answers = await remote
        var seen = Set<String>(), merged: [StudyRecord] = []
        for study in mine + answers.flatMap(\.studies) where seen.insert(study.studyInstanceUID + "|" + study.storageUnit).inserted {
            merged.append(study)
        }
        merged.sort { ($0.studyDate, $0.studyTime ?? "", $1.studyInstanceUID) > ($1.studyDate, $1.studyTime ?? "", $0.studyInstanceUID) }
        var regions: [Region] = []
        if here { regions.append(ownRegion(region, found: mine.count, limit: wide.limit)) }
        regions += answers.map { ($0.region, $0.status, $0.studies.count) }
        let page = Array(merged.dropFirst(query.offset).prefix(query.limit))
        try await auditor.recordLookup(request, requestID: requestID, asked: token, found: returned.map { page.filter($0) } ?? page,
                                       counter: counter)
        return (page, regions)
    }

    /// This node's own entry: `found` studies under a `limit` (a page as long as its limit
    /// may not be all of them).
    static func ownRegion(_ region: String, found: Int, limit: Int) -> Region {
        (region, found >= limit ? "partial" : "complete", found)
    }

    /// RFC 9111 §5.5 Warning values (code 299, "miscellaneous persistent warning") for the
    /// regions that did not answer completely: how QIDO-RS says a result is partial.
    static func warnings(_ regions: [Region]) -> [String] {
        regions.filter { $0.status != "complete" }.map { "299 imaging-gateway \"region \($0.region): \($0.status)\"" }
    }
}
