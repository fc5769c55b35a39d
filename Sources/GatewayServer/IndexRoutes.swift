import JSONText
import Foundation
import GatewayNet
import ImagingIndex
import IndexStore
import PatientTokens

/// The index's native API: hospitals upload, clinics and peers look up.
enum IndexRoutes {
    /// HL7 PurposeOfUse codes a lookup may name.
    static let purposes: Set<String> = ["TREAT", "ETREAT", "CAREMGT", "HPAYMT", "HOPERAT", "HQUALIMP", "PUBHLTH",
                                        "HRESCH", "PATRQT", "HSYSADMIN", "COC"]
    static let lookupRoles: Set<String> = .roles(.clinic, .reader, .node, .operator)

    static func add(to router: inout Router, store: IndexStore, maxBatch: Int, tokenKeys: TokenKeys?, auditor: Auditor,
                    federation: Federation?, region: String) {
        router.add("POST", "/v1/index/studies", roles: .roles(.hospital, .node), .async { request in
            if let refusal = try await auditor.admit(request, counter: "uploads") { return refusal }
            return try await upload(request, store: store, maxBatch: maxBatch, tokenKeys: tokenKeys, auditor: auditor)
        })
        router.add("GET", "/v1/patients/{token}/studies", roles: lookupRoles, .immediate(atOnce: { request in
            try patientStudiesAtOnce(request, store: store, tokenKeys: tokenKeys, auditor: auditor, federation: federation,
                                     region: region)
        }) { request in
            if let refusal = try await auditor.admit(request, counter: "lookups") { return refusal }
            return try await patientStudies(request, store: store, tokenKeys: tokenKeys, auditor: auditor,
                                            federation: federation, region: region)
        })
    }

    // MARK: upload

    /// A hospital uploads its own storage unit's studies; a peer node (role node) forwards
    /// other units' studies, as a regional node does to the national one.
    static func upload(_ request: HTTPRequest, store: IndexStore, maxBatch: Int,
                       tokenKeys: TokenKeys?, auditor: Auditor) async throws -> HTTPResponse {
        let organization = request.peer?.organization ?? ""
        let key = request.headers["Idempotency-Key"]
        if let key {
            guard (1...128).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw HTTPError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 visible ASCII characters.")
            }
            if let saved = try await storeCall({ () throws(StoreError) in try await store.savedResponse(scope: organization, key: key) }) {
                guard saved.requestFingerprint == fingerprint(request) else {
                    throw HTTPError(422, "idempotency_key_reused", "This Idempotency-Key was used for a different request; use a new key.")
                }
                var response = HTTPResponse(status: saved.status, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                            body: saved.body)
                response.headers.add("Idempotent-Replayed", "true")
                try await auditor.record([auditor.event(request, .importRecords, .create, counter: "uploads")])
                return response
            }
        }
        let objects = try UploadBody.objects(request, maxBatch: maxBatch)
        if let refusal = try await auditor.admit(request, counter: "records", adding: objects.count) { return refusal }
        var results = [UploadResult?](repeating: nil, count: objects.count)
        var accepted: [(index: Int, record: StudyRecord)] = []
        for (i, parsed) in objects.enumerated() {
            switch parsed.result.flatMap(StudyRecord.validate) {
            case .failure(let rejection):
                results[i] = UploadResult(index: i, studyInstanceUID: parsed.uid, status: "rejected", errors: rejection.errors)
            case .success(let record) where request.peer?.role != Role.node.rawValue && record.storageUnit != organization:
                results[i] = UploadResult(index: i, studyInstanceUID: record.studyInstanceUID, status: "rejected", errors: [
                    FieldError("storageUnit", "forbidden-storage-unit",
                               "A hospital uploads only for its own storage unit, the organization code of its certificate."),
                ])
            case .success(let record) where tokenKeys?.isRetired(PatientToken(record.patientToken)?.keyVersion ?? 0) == true:
                results[i] = UploadResult(index: i, studyInstanceUID: record.studyInstanceUID, status: "rejected", errors: [
                    FieldError("patientToken", "token-key-retired",
                               "This token was made with a retired key version; tokenize again with the active key."),
                ])
            case .success(let record):
                accepted.append((i, record))
            }
        }
        let records = accepted.map(\.record)
        let event = auditor.enabled ? auditor.event(
            request, .importRecords, .create, counter: "uploads", outcome: accepted.count == objects.count ? .success : .minorFailure,
            tokens: Array(Set(records.map(\.patientToken))).sorted(), uids: records.map(\.studyInstanceUID),
            count: records.count) : nil
        let outcomes = try await storeCall { () throws(StoreError) in try await store.upsert(records, audit: event) }
        for ((i, record), outcome) in zip(accepted, outcomes) {
            results[i] = UploadResult(index: i, studyInstanceUID: record.studyInstanceUID,
                                      status: outcome == .inserted ? "accepted" : "updated", errors: nil)
        }
        let all = results.compactMap { $0 }
        let rejected = all.filter { $0.status == "rejected" }.count
        let response = HTTPResponse(status: rejected == 0 ? 200 : 202, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                    body: uploadAnswer(stored: accepted.count, rejected: rejected, results: all))
        if let key {
            let saved = SavedResponse(status: response.status, body: response.body, requestFingerprint: fingerprint(request))
            try await storeCall { () throws(StoreError) in try await store.saveResponse(saved, scope: organization, key: key) }
        }
        return response
    }

    /// What makes two uploads the same request: media type and (decoded) body.
    static func fingerprint(_ request: HTTPRequest) -> [UInt8] {
        Digest.sha256(head: Array((request.headers["Content-Type"] ?? "").utf8) + [0], request.body)
    }

    struct UploadResult {
        let index: Int
        let studyInstanceUID: String?
        let status: String
        let errors: [FieldError]?
    }

    /// `{"stored":…,"rejected":…,"results":[…]}`, written directly: with Foundation's
    /// encoder a 1 000-record answer cost as much as parsing the batch.
    static func uploadAnswer(stored: Int, rejected: Int, results: [UploadResult]) -> [UInt8] {
        var out = JSONWriter(capacity: 64 + 96 * results.count)
        out.beginObject()
        out.field("stored", stored)
        out.field("rejected", rejected)
        out.key("results")
        out.array(results) { out, result in
            out.beginObject()
            out.field("index", result.index)
            out.field("studyInstanceUID", result.studyInstanceUID)
            out.field("status", result.status)
            if let errors = result.errors {
                out.key("errors")
                out.array(errors) { out, error in
                    out.beginObject()
                    out.field("field", error.field)
                    out.field("code", error.code)
                    out.field("message", error.message)
                    out.endObject()
                }
            }
            out.endObject()
        }
        out.endObject()
        return out.bytes
    }

    // MARK: lookup

    static func patientStudies(_ request: HTTPRequest, store: IndexStore, tokenKeys: TokenKeys?, auditor: Auditor,
                               federation: Federation?, region: String) async throws -> HTTPResponse {
        let (query, token, purpose, scope) = try patientQuery(request, tokenKeys: tokenKeys)
        guard try !ScopedLookup.peers(scope, federation: federation, region: region).isEmpty else {
            let written = try await auditor.lookup(request, asked: token, query, in: store) { $0.writeNative(to: &$1) }
            return ownPage(written, token: token, query: query, scope: scope, region: region)
        }
        let (studies, regions) = try await ScopedLookup.run(request, token: token, purpose: purpose, query: query, scope: scope,
                                                           federation: federation, region: region, store: store, auditor: auditor)
        return page(token: token, query: query, scope: scope, regions: regions, studies: studies)
    }

    /// `patientStudies` answered on the loop, without a task, when nothing need be waited
    /// for: no audit event to make durable (auditing off), no other region to ask, and the
    /// store can read here at once. Nil sends the request to `patientStudies`.
    static func patientStudiesAtOnce(_ request: HTTPRequest, store: IndexStore, tokenKeys: TokenKeys?, auditor: Auditor,
                                     federation: Federation?, region: String) throws(HTTPError) -> HTTPResponse? {
        guard !auditor.enabled else { return nil }
        let (query, token, _, scope) = try patientQuery(request, tokenKeys: tokenKeys)
        guard try ScopedLookup.peers(scope, federation: federation, region: region).isEmpty,
              let written = store.queryAtOnce(query, writing: { $0.writeNative(to: &$1) }) else { return nil }
        return ownPage(written, token: token, query: query, scope: scope, region: region)
    }

    /// The answer from this region's studies alone.
    private static func ownPage(_ written: WrittenStudies, token: String, query: StudyQuery, scope: String,
                                region: String) -> HTTPResponse {
        page(token: token, query: query, scope: scope, regions: [ScopedLookup.ownRegion(region, found: written.count, limit: query.limit)],
             count: written.count) { $0.value(json: written.json) }
    }

    static func page(token: String, query: StudyQuery, scope: String, regions: [ScopedLookup.Region],
                     studies: [StudyRecord]) -> HTTPResponse {
        page(token: token, query: query, scope: scope, regions: regions, count: studies.count) { out in
            out.array(studies) { $1.write(to: &$0) }
        }
    }

    /// A native lookup's answer: `{"patientToken":…,"count":…,…,"regions":[…],"studies":[…]}`,
    /// the `count` studies' array written by `studies`.
    static func page(token: String, query: StudyQuery, scope: String, regions: [ScopedLookup.Region], count: Int,
                     studies: (inout JSONWriter) -> Void) -> HTTPResponse {
        var out = JSONWriter(capacity: 256 + 640 * count)
        out.beginObject()
        out.field("patientToken", token)
        out.field("count", count)
        out.field("limit", query.limit)
        out.field("offset", query.offset)
        out.field("scope", scope)
        out.key("regions")
        out.array(regions) { out, region in
            out.beginObject()
            out.field("region", region.region)
            out.field("status", "\(region.status)")
            out.field("count", region.count)
            out.endObject()
        }
        out.key("studies")
        studies(&out)
        out.endObject()
        return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]), body: out.bytes)
    }

    /// Built once: a set literal in the lookup built and hashed its seven names each time.
    static let lookupParameters: Set<String> = ["purpose", "from", "to", "modality", "limit", "offset", "scope"]

    /// The native lookup a request asks for, checked; nothing is read yet.
    static func patientQuery(_ request: HTTPRequest, tokenKeys: TokenKeys?) throws(HTTPError)
        -> (query: StudyQuery, token: String, purpose: String, scope: String) {
        let params = try QueryParameters(request, allowed: lookupParameters)
        let purpose = try params.purpose()
        let scope = try params.scope(callerRole: request.peer?.role)
        let token = try pathToken(request, tokenKeys: tokenKeys)
        var query = StudyQuery(patientToken: token)
        query.dateFrom = try params.date("from")
        query.dateTo = try params.date("to")
        query.modalities = try params.modalities()
        query.limit = try params.integer("limit", default: 100, in: 1...1000)
        query.offset = try params.integer("offset", default: 0, in: 0...1_000_000)
        return (query, token, purpose, scope)
    }

    /// The patient token in the path: well formed (else 400), of a key version not retired (else 410).
    static func pathToken(_ request: HTTPRequest, tokenKeys: TokenKeys?) throws(HTTPError) -> String {
        let token = request.pathParameters["token"] ?? ""
        guard Codes.isPatientToken(token) else {
            throw HTTPError(400, "invalid_token", "The path must carry a patient token v<keyVersion>:<base64url of 32 bytes>.")
        }
        if tokenKeys?.isRetired(PatientToken(token)?.keyVersion ?? 0) == true {
            throw HTTPError(410, "token_key_retired", "This token was made with a retired key version; tokenize again with the active key.")
        }
        return token
    }

    /// Store failures become answers that say nothing was acknowledged.
    static func storeCall<T>(_ body: () async throws(StoreError) -> T) async throws(HTTPError) -> T {
        do {
            return try await body()
        } catch .full {
            throw HTTPError(507, "insufficient_storage", "The index store is full; nothing from this request was stored.")
        } catch {
            throw HTTPError(503, "store_unavailable", "The index store failed; nothing from this request was stored. Retry later.")
        }
    }
}
