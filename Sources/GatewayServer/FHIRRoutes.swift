import Foundation
import GatewayNet
import ImagingIndex
import IndexStore

/// FHIR R4 search over the index: ImagingStudy (with its Endpoints) and the server's
/// CapabilityStatement. Errors are OperationOutcome resources, as FHIR clients expect.
enum FHIRRoutes {
    static let media = "application/fhir+json"

    static func add(to router: inout Router, store: IndexStore, auditor: Auditor, federation: Federation?, region: String) {
        router.add("GET", "/fhir/ImagingStudy", roles: IndexRoutes.lookupRoles, .async { request in
            do {
                if let refusal = try await auditor.admit(request, counter: "lookups") { return refusal }
                return try await search(request, store: store, auditor: auditor, federation: federation, region: region)
            } catch let error as HTTPError {
                return outcome(error)
            }
        })
        router.add("GET", "/fhir/metadata", .inline { request in
            json(capabilityStatement(base: base(request)), status: 200)
        })
    }

    /// Spans regions by `scope` (default all); regions that did not answer completely are
    /// listed in an OperationOutcome entry (search mode `outcome`) of the Bundle.
    static func search(_ request: HTTPRequest, store: IndexStore, auditor: Auditor, federation: Federation?,
                       region: String) async throws -> HTTPResponse {
        let (q, token, purpose, scope, bodySite) = try searchQuery(request)
        let atSite = bodySite.map(Self.examined(at:))
        var (found, regions) = try await ScopedLookup.run(request, token: token, purpose: purpose, query: q, scope: scope,
                                                          federation: federation, region: region, store: store, auditor: auditor,
                                                          returned: atSite)
        if let atSite { found = found.filter(atSite) }
        let b = base(request)
        let bundle = FHIRMapping.searchBundle(found, base: b, selfURL: b + "/ImagingStudy?" + (request.target.split(separator: "?").last ?? ""),
                                              incomplete: regions.filter { $0.status != "complete" }.map { ($0.region, $0.status) })
        return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", media)]), body: bundle)
    }

    /// Whether a study examined `site`: the index keeps a study's body part and its
    /// series', and either may match.
    static func examined(at site: String) -> @Sendable (StudyRecord) -> Bool {
        { study in
            study.bodyPartExamined?.uppercased() == site || (study.series ?? []).contains { $0.bodyPartExamined?.uppercased() == site }
        }
    }

    /// The ImagingStudy search a request asks for, checked; nothing is read yet.
    static func searchQuery(_ request: HTTPRequest) throws(HTTPError)
        -> (query: StudyQuery, token: String, purpose: String, scope: String, bodySite: String?) {
        var q = StudyQuery()
        var purpose: String?
        var scopeValue: String?
        var bodySite: String?
        for (name, value) in request.query {
            switch name {
            case "subject:identifier", "patient.identifier":
                let token = value.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).last.map(String.init) ?? ""
                if value.contains("|"), !value.hasPrefix(FHIRMapping.tokenSystem + "|") {
                    throw HTTPError(400, "unsupported_identifier_system", "Patients are identified by tokens: system \(FHIRMapping.tokenSystem).")
                }
                guard Codes.isPatientToken(token) else { throw HTTPError(400, "invalid_token", "The identifier must be a patient token.") }
                q.patientToken = token
            case "started":
                try applyDate(value, to: &q)
            case "modality":
                q.modalities = value.split(separator: ",").map { $0.split(separator: "|").last.map(String.init) ?? "" }
                guard q.modalities.allSatisfy(Codes.modalities.contains) else {
                    throw HTTPError(400, "invalid_modality", "modality takes DICOM modality codes (system \(FHIRMapping.dcmSystem)).")
                }
            case "bodysite":
                let code = value.split(separator: "|").last.map { $0.uppercased() } ?? ""
                guard (1...16).contains(code.count) else { throw HTTPError(400, "invalid_bodysite", "bodysite is a body part code, e.g. CHEST.") }
                bodySite = code
            case "_count":
                guard let n = Int(value), (1...1000).contains(n) else { throw HTTPError(400, "invalid_count", "_count must be 1 to 1000.") }
                q.limit = n
            case "purpose":
                purpose = value
            case "scope":
                scopeValue = value
            default:
                throw HTTPError(400, "unsupported_parameter", "'\(HTTPError.quote(name))' is not supported; use subject:identifier, started, modality, bodysite, _count, purpose.")
            }
        }
        guard let purpose, IndexRoutes.purposes.contains(purpose) else {
            throw HTTPError(400, "purpose_required", "Name the purpose of use: purpose=\(IndexRoutes.purposes.sorted().joined(separator: "|")).")
        }
        guard let token = q.patientToken else {
            throw HTTPError(400, "patient_required", "Search ImagingStudy by subject:identifier=\(FHIRMapping.tokenSystem)|<token>.")
        }
        let scope = try ScopedLookup.scope(scopeValue, callerRole: request.peer?.role)
        return (q, token, purpose, scope, bodySite)
    }

    /// `started=ge2024-01-01` and friends; a bare date means that day.
    static func applyDate(_ value: String, to q: inout StudyQuery) throws(HTTPError) {
        let prefixes = ["eq", "ge", "le", "gt", "lt"]
        let prefix = prefixes.first { value.hasPrefix($0) } ?? "eq"
        let rest = value.hasPrefix(prefix) ? String(value.dropFirst(2)) : value
        let day = rest.prefix(10).replacingOccurrences(of: "-", with: "")
        guard Codes.isDate(day) else { throw HTTPError(400, "invalid_date", "started takes a date YYYY-MM-DD with an optional prefix ge, le, gt, lt, eq.") }
        switch prefix {
        case "ge": q.dateFrom = day
        case "gt": q.dateFrom = nextDay(day)
        case "le": q.dateTo = day
        case "lt": q.dateTo = previousDay(day)
        default: q.dateFrom = day; q.dateTo = day
        }
    }

    static func shift(_ day: String, by days: Int) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd"
        f.timeZone = TimeZone(identifier: "UTC")
        guard let d = f.date(from: day) else { return day }
        return f.string(from: d.addingTimeInterval(Double(days) * 86_400))
    }

    static func nextDay(_ day: String) -> String { shift(day, by: 1) }
    static func previousDay(_ day: String) -> String { shift(day, by: -1) }

    static func base(_ request: HTTPRequest) -> String {
        "https://\(request.headers["Host"] ?? "localhost")/fhir"
    }

    static func json(_ object: [String: Any], status: Int) -> HTTPResponse {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return HTTPResponse(status: status, headers: HTTPHeaders([("Content-Type", media)]), body: Array(data))
    }

    static func outcome(_ error: HTTPError) -> HTTPResponse {
        json(["resourceType": "OperationOutcome", "issue": [[
            "severity": "error", "code": error.status == 400 ? "invalid" : "exception",
            "details": ["text": error.code], "diagnostics": error.message,
        ]]], status: error.status)
    }

    static func capabilityStatement(base: String) -> [String: Any] {
        [
            "resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-24", "kind": "instance",
            "fhirVersion": "4.0.1", "format": ["json"],
            "software": ["name": "imaging-gateway", "version": Gateway.version],
            "implementation": ["description": "ImagingGateway study index", "url": base],
            "rest": [[
                "mode": "server",
                "security": ["description": "Mutual TLS: client certificate SAN URI urn:imaging-gateway:ROLE:ORG-CODE; roles clinic, reader, node, operator may search. Every search names purpose=<PurposeOfUse>."],
                "resource": [
                    [
                        "type": "ImagingStudy", "interaction": [["code": "search-type"]],
                        "searchInclude": ["ImagingStudy:endpoint"],
                        "searchParam": [
                            ["name": "subject", "type": "reference", "documentation": "Only subject:identifier=\(FHIRMapping.tokenSystem)|<token>."],
                            ["name": "started", "type": "date", "documentation": "Prefixes eq, ge, gt, le, lt; day precision."],
                            ["name": "modality", "type": "token", "documentation": "DICOM modality codes."],
                            ["name": "bodysite", "type": "token", "documentation": "Body part (DICOM Body Part Examined, e.g. CHEST): with modality and started=ge, the repeat-examination check."],
                            ["name": "purpose", "type": "token", "documentation": "Required: HL7 PurposeOfUse code (extension of this server)."],
                        ],
                    ],
                    ["type": "Endpoint", "documentation": "Returned with ImagingStudy matches (search mode include)."],
                ],
            ]],
        ]
    }
}
