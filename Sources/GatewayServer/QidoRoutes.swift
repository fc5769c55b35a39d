import JSONText
import Foundation
import GatewayNet
import ImagingIndex
import IndexStore

/// DICOMweb QIDO-RS (PS3.18 §10.6) over the index: study and series searches. What is
/// supported is in Protocols/qido-rs-conformance.md; any other key is a 400 that says so.
enum QidoRoutes {
    static let media = "application/dicom+json"

    static func add(to router: inout Router, store: IndexStore, auditor: Auditor, federation: Federation?, region: String) {
        router.add("GET", "/dicomweb/studies", roles: IndexRoutes.lookupRoles, .async { request in
            if let refusal = try await auditor.admit(request, counter: "lookups") { return refusal }
            return try await studies(request, store: store, auditor: auditor, federation: federation, region: region)
        })
        router.add("GET", "/dicomweb/studies/{uid}/series", roles: IndexRoutes.lookupRoles, .async { request in
            if let refusal = try await auditor.admit(request, counter: "lookups") { return refusal }
            return try await series(request, store: store, auditor: auditor)
        })
    }

    /// Match keys by keyword and by tag.
    static let studyKeys: [String: String] = [
        "PatientID": "PatientID", "00100020": "PatientID", "StudyDate": "StudyDate", "00080020": "StudyDate",
        "StudyInstanceUID": "StudyInstanceUID", "0020000D": "StudyInstanceUID", "AccessionNumber": "AccessionNumber",
        "00080050": "AccessionNumber", "ModalitiesInStudy": "ModalitiesInStudy", "00080061": "ModalitiesInStudy",
    ]
    static let seriesKeys: [String: String] = [
        "Modality": "Modality", "00080060": "Modality", "SeriesInstanceUID": "SeriesInstanceUID", "0020000E": "SeriesInstanceUID",
        "SeriesNumber": "SeriesNumber", "00200011": "SeriesNumber",
    ]
    static let controls: Set<String> = ["includefield", "limit", "offset", "fuzzymatching", "purpose", "scope"]

    struct Search {
        var match: [String: String] = [:]
        var include: Set<String> = []
        var limit = 100
        var offset = 0
        var scope: String?
    }

    static func parse(_ request: HTTPRequest, keys: [String: String]) throws(HTTPError) -> Search {
        var s = Search()
        var purpose: String?
        for (name, value) in request.query {
            if let key = keys[name] {
                guard s.match[key] == nil else { throw HTTPError(400, "repeated_parameter", "\(HTTPError.quote(name)) is given twice.") }
                s.match[key] = value
                continue
            }
            switch name {
            case "purpose": purpose = value
            case "scope": s.scope = value
            case "includefield":
                for field in value.split(separator: ",").map(String.init) {
                    if field == "all" { s.include.formUnion(DicomJSON.optionalStudyFields.values); continue }
                    guard let tag = DicomJSON.optionalStudyFields[field] ?? (studyKeys[field] != nil ? "" : nil) else {
                        throw HTTPError(400, "unsupported_includefield", "includefield '\(HTTPError.quote(field))' is not available here.")
                    }
                    if !tag.isEmpty { s.include.insert(tag) }
                }
            case "limit":
                guard let n = Int(value), (1...1000).contains(n) else { throw HTTPError(400, "invalid_limit", "limit must be 1 to 1000.") }
                s.limit = n
            case "offset":
                guard let n = Int(value), n >= 0 else { throw HTTPError(400, "invalid_offset", "offset must be 0 or more.") }
                s.offset = n
            case "fuzzymatching":
                guard value == "false" else {
                    throw HTTPError(400, "fuzzymatching_not_supported", "Fuzzy matching is not supported; send fuzzymatching=false or omit it.")
                }
            default:
                throw HTTPError(400, "unsupported_key", "'\(HTTPError.quote(name))' is not a supported match key; see the conformance statement.")
            }
        }
        guard let purpose, IndexRoutes.purposes.contains(purpose) else {
            throw HTTPError(400, "purpose_required", "Name the purpose of use: purpose=\(IndexRoutes.purposes.sorted().joined(separator: "|")).")
        }
        return s
    }

    /// The study search a request asks for, checked; nothing is read yet. A search
    /// without PatientID is local, and saying otherwise is refused.
    static func studySearch(_ request: HTTPRequest) throws(HTTPError) -> (search: Search, query: StudyQuery, scope: String) {
        let s = try parse(request, keys: studyKeys)
        var q = StudyQuery()
        if let id = s.match["PatientID"] {
            guard !id.contains("*"), !id.contains("?") else {
                throw HTTPError(400, "wildcard_not_supported", "PatientID takes one whole patient token; wildcards would enumerate patients.")
            }
            q.patientToken = id
        }
        if let uids = s.match["StudyInstanceUID"] { q.studyInstanceUIDs = uids.split(whereSeparator: { $0 == "," || $0 == "\\" }).map(String.init) }
        if let acc = s.match["AccessionNumber"] { q.accessionNumber = acc }
        if let m = s.match["ModalitiesInStudy"] {
            q.modalities = m.split(whereSeparator: { $0 == "," || $0 == "\\" }).map(String.init)
            guard q.modalities.allSatisfy(Codes.modalities.contains) else {
                throw HTTPError(400, "invalid_modality", "ModalitiesInStudy takes DICOM modality codes.")
            }
        }
        if let d = s.match["StudyDate"] { (q.dateFrom, q.dateTo) = try dateRange(d) }
        if q.patientToken == nil && q.studyInstanceUIDs.isEmpty && q.accessionNumber == nil && (q.dateFrom == nil || q.dateTo == nil) {
            throw HTTPError(400, "search_too_broad", "Give PatientID, StudyInstanceUID, AccessionNumber or a StudyDate range with both ends.")
        }
        q.limit = s.limit
        q.offset = s.offset
        let scope = try ScopedLookup.scope(s.scope, callerRole: request.peer?.role)
        guard q.patientToken != nil || scope == "local" || s.scope == nil else {
            throw HTTPError(400, "scope_needs_patient", "Searches across regions are by PatientID; this search is local.")
        }
        return (s, q, scope)
    }

    /// A search by PatientID (a token) spans regions by `scope` (default all; a `Warning`
    /// header names each region that did not answer completely); other searches are local.
    static func studies(_ request: HTTPRequest, store: IndexStore, auditor: Auditor, federation: Federation?,
                        region: String) async throws -> HTTPResponse {
        let (s, q, scope) = try studySearch(request)
        let include = s.include
        let local = try q.patientToken == nil || ScopedLookup.peers(scope, federation: federation, region: region).isEmpty
        guard !local, let token = q.patientToken else {
            // This node's store alone: the answer written from its rows.
            let found = try await auditor.lookup(request, asked: q.patientToken, q, in: store) { DicomJSON.study($0, include: include, to: &$1) }
            guard found.count > 0 else { return HTTPResponse(status: 204) }
            var response = HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", media)]), body: found.json)
            if q.patientToken != nil {
                for warning in ScopedLookup.warnings([ScopedLookup.ownRegion(region, found: found.count, limit: q.limit)]) {
                    response.headers.add("Warning", warning)
                }
            }
            return response
        }
        let (found, regions) = try await ScopedLookup.run(request, token: token, purpose: request.queryValue("purpose") ?? "TREAT",
                                                          query: q, scope: scope, federation: federation, region: region,
                                                          store: store, auditor: auditor)
        var response = answer(found) { DicomJSON.study($0, include: s.include, to: &$1) }
        for warning in ScopedLookup.warnings(regions) { response.headers.add("Warning", warning) }
        return response
    }

    static func series(_ request: HTTPRequest, store: IndexStore, auditor: Auditor) async throws -> HTTPResponse {
        let s = try parse(request, keys: seriesKeys)
        let uid = request.pathParameters["uid"] ?? ""
        guard Codes.isUID(uid) else { throw HTTPError(400, "invalid_uid", "The path must carry a StudyInstanceUID.") }
        var q = StudyQuery()
        q.studyInstanceUIDs = [uid]
        let studies = try await auditor.lookup(request, asked: nil, q, in: store)
        var found: [(SeriesRecord, StudyRecord)] = []
        for study in studies {
            for series in study.series ?? [] where matches(series, s.match) { found.append((series, study)) }
        }
        return answer(Array(found.dropFirst(s.offset).prefix(s.limit))) { DicomJSON.series($0.0, of: $0.1, to: &$1) }
    }

    static func matches(_ series: SeriesRecord, _ match: [String: String]) -> Bool {
        if let m = match["Modality"], !m.split(separator: ",").contains(Substring(series.modality)) { return false }
        if let u = match["SeriesInstanceUID"], !u.split(separator: ",").contains(Substring(series.seriesInstanceUID)) { return false }
        if let n = match["SeriesNumber"], Int(n) != series.seriesNumber { return false }
        return true
    }

    /// `YYYYMMDD`, `a-b`, `a-` or `-b` (dashes in ISO dates are accepted too).
    static func dateRange(_ value: String) throws(HTTPError) -> (String?, String?) {
        let bad = HTTPError(400, "invalid_date", "StudyDate must be YYYYMMDD or a range a-b, a- or -b.")
        if Codes.isDate(value) { return (value, value) }
        let compact = value.count == 10 ? value.replacingOccurrences(of: "-", with: "") : value
        if Codes.isDate(compact) { return (compact, compact) }
        let parts = value.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !(parts[0].isEmpty && parts[1].isEmpty),
              parts[0].isEmpty || Codes.isDate(parts[0]), parts[1].isEmpty || Codes.isDate(parts[1]) else { throw bad }
        return (parts[0].isEmpty ? nil : parts[0], parts[1].isEmpty ? nil : parts[1])
    }

    /// A JSON array of `items`, each written by `write`; 204 when there are none.
    static func answer<Item>(_ items: [Item], _ write: (Item, inout JSONWriter) -> Void) -> HTTPResponse {
        guard !items.isEmpty else { return HTTPResponse(status: 204) }
        var out = JSONWriter(capacity: 64 + 900 * items.count)
        out.array(items) { write($1, &$0) }
        return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", media)]), body: out.bytes)
    }
}
