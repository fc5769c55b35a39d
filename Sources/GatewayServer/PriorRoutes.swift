import Foundation
import GatewayNet
import ImagingIndex
import IndexStore
import JSONText

/// The repeat-examination check and the regulator's statistics (Protocols/priors.md).
/// A check is a patient lookup across regions (audited and metered as `prior-checks`),
/// judged by the configured rule; the check itself is stored, durable before the answer,
/// for the statistics — in the lookup's own transaction when no peer is asked.
enum PriorRoutes {
    static func add(to router: inout Router, store: IndexStore & SupervisionStore, rule: PriorExamRule, tokenKeys: TokenKeys?,
                    auditor: Auditor, federation: Federation?, region: String) {
        router.add("GET", "/v1/patients/{token}/priors", roles: .roles(.clinic, .hospital, .reader), .async { request in
            if let refusal = try await auditor.admit(request, counter: "prior-checks") { return refusal }
            return try await check(request, store: store, rule: rule, tokenKeys: tokenKeys, auditor: auditor, federation: federation,
                                   region: region)
        })
        router.add("GET", "/v1/supervision/repeats", roles: .roles(.operator), .async { request in
            try await statistics(request, store: store, auditor: auditor)
        })
    }

    static let checkParameters: Set<String> = ["purpose", "modality", "bodyPart", "examItem", "days", "scope"]

    static func check(_ request: HTTPRequest, store: IndexStore & SupervisionStore, rule: PriorExamRule, tokenKeys: TokenKeys?,
                      auditor: Auditor, federation: Federation?, region: String) async throws -> HTTPResponse {
        let params = try QueryParameters(request, allowed: checkParameters)
        let purpose = try params.purpose()
        let scope = try params.scope(callerRole: request.peer?.role)
        let token = try IndexRoutes.pathToken(request, tokenKeys: tokenKeys)
        let modalities = try params.modalities()
        guard modalities.count == 1 else {
            throw HTTPError(400, "modality_required", "Name the planned examination's modality: modality=CT (one DICOM code).")
        }
        let bodyPart = params.string("bodyPart")
        let examItem = params.string("examItem")
        func fits(_ value: String?, _ extra: String) -> Bool {
            value.map { (1...16).contains($0.utf8.count) && $0.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || extra.contains($0) } }
                ?? true
        }
        guard fits(bodyPart, "_"), fits(examItem, "._-") else {
            throw HTTPError(400, "invalid_value", "bodyPart (letters, digits, _) and examItem (letters, digits, . _ -) are 1 to 16 characters.")
        }
        let days = try params.has("days") ? params.integer("days", default: 0, in: 1...3_650) : nil
        let planned = PriorExamRule.Planned(modality: modalities[0], bodyPart: bodyPart, examItem: examItem, days: days)
        let today = Self.today()
        var query = StudyQuery(patientToken: token)
        query.modalities = modalities
        query.dateFrom = rule.firstDay(for: planned, today: today)
        query.dateTo = today
        query.limit = 1_000
        let window = rule.windowDays(for: planned)
        let institution = request.peer?.organization ?? ""
        @Sendable func judged(_ found: [StudyRecord]) -> PriorCheck {
            let priors = found.filter { rule.matches($0, planned, today: today) }.count
            return PriorCheck(checkedAt: Int64(Date().timeIntervalSince1970 * 1000), day: today,
                              untilDay: CivilDay(today)!.adding(days: window).text, institution: institution, region: region,
                              patientToken: token, modality: planned.modality, bodyPart: planned.bodyPart, examItem: planned.examItem,
                              windowDays: window, repeatCandidate: priors > 0, priors: priors)
        }
        let found: [StudyRecord]
        let regions: [ScopedLookup.Region]
        let askPeers = scope != "local" && !(federation?.peers(for: scope).isEmpty ?? true)
        if !askPeers, scope == "local" || scope == "all" || scope == "region:\(region)" {
            // This node's store alone: the check rides in the lookup's own transaction.
            found = try await auditor.lookup(request, asked: token, query, in: store, counter: "prior-checks", check: judged)
            regions = [(region, found.count >= query.limit ? "partial" : "complete", found.count)]
        } else {
            (found, regions) = try await ScopedLookup.run(request, token: token, purpose: purpose, query: query, scope: scope,
                                                         federation: federation, region: region, store: store, auditor: auditor,
                                                         counter: "prior-checks")
            let check = judged(found)
            try await IndexRoutes.storeCall { () throws(StoreError) in try await store.record(check, audit: nil) }
        }
        let priors = found.filter { rule.matches($0, planned, today: today) }
        let verdict: PriorExamRule.Verdict = priors.isEmpty ? .none : .repeatCandidate
        let basis = "same modality" + (planned.bodyPart == nil && planned.examItem == nil ? "" : ", and the same body part or exam item")
            + ", dated within \(window) days up to \(today)"
        let regionText = regions.map { "{\"region\":\(jsonString($0.region)),\"status\":\"\($0.status)\",\"count\":\($0.count)}" }
        let priorText = priors.map { "{\"ageDays\":\(PriorExamRule.ageDays($0, today: today) ?? 0),\"study\":\($0.jsonText)}" }
        let body = "{\"patientToken\":\(jsonString(token)),\"verdict\":\"\(verdict.rawValue)\",\"rule\":{\"modality\":"
            + "\(jsonString(planned.modality)),\"bodyPart\":\(planned.bodyPart.map(jsonString) ?? "null"),\"examItem\":"
            + "\(planned.examItem.map(jsonString) ?? "null"),\"windowDays\":\(window),\"basis\":\(jsonString(basis))},"
            + "\"scope\":\(jsonString(scope)),\"regions\":[\(regionText.joined(separator: ","))],\"count\":\(priors.count),"
            + "\"priors\":[\(priorText.joined(separator: ","))]}"
        return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array(body.utf8))
    }

    /// Today in the node's time zone, YYYYMMDD: study dates are local dates.
    static func today() -> String {
        var now = time(nil)
        var t = tm()
        localtime_r(&now, &t)
        return CivilDay(year: Int(t.tm_year) + 1900, month: Int(t.tm_mon) + 1, day: Int(t.tm_mday)).text
    }

    /// Per institution and month, as JSON or (`format=csv` or `Accept: text/csv`) CSV.
    /// A count that rests on 1 to 4 patients is shown as "<5".
    static func statistics(_ request: HTTPRequest, store: SupervisionStore, auditor: Auditor) async throws -> HTTPResponse {
        let params = try QueryParameters(request, allowed: ["from", "to", "region", "format"])
        func monthParameter(_ name: String) throws(HTTPError) -> String {
            guard let v = params.string(name), v.count == 7, Array(v)[4] == "-",
                  let m = Int(v.suffix(2)), (1...12).contains(m), let y = Int(v.prefix(4)), (1900...2199).contains(y) else {
                throw HTTPError(400, "invalid_month", "'\(name)' is a month, YYYY-MM.")
            }
            return v.replacingOccurrences(of: "-", with: "")
        }
        let query = SupervisionQuery(fromMonth: try monthParameter("from"), toMonth: try monthParameter("to"), region: params.string("region"))
        if let r = query.region, !Codes.isSixDigits(r) {
            throw HTTPError(400, "invalid_region", "region is a six-digit division code.")
        }
        let csv = params.string("format") == "csv" || (request.headers["Accept"] ?? "").contains("text/csv")
        if let f = params.string("format"), !["csv", "json"].contains(f) {
            throw HTTPError(400, "invalid_format", "format is json (the default) or csv.")
        }
        let rows = try await IndexRoutes.storeCall { () throws(StoreError) in try await store.supervision(query) }
        try await auditor.record([auditor.event(request, .query, .read, counter: "lookups", count: rows.count)])
        func cell(_ c: SupervisionCount) -> String { (1...4).contains(c.patients) ? "<5" : String(c.count) }
        func month(_ m: String) -> String { m.prefix(4) + "-" + m.suffix(2) }
        if csv {
            var out = "institution,month,studiesIndexed,priorChecks,repeatCandidates,repeatStudies\r\n"
            for r in rows {
                out += [r.institution, month(r.month), cell(r.studiesIndexed), cell(r.priorChecks), cell(r.repeatCandidates),
                        cell(r.repeatStudies)].joined(separator: ",") + "\r\n"
            }
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/csv; charset=utf-8; header=present")]),
                                body: Array(out.utf8))
        }
        func json(_ c: SupervisionCount) -> String { (1...4).contains(c.patients) ? "\"<5\"" : String(c.count) }
        let items = rows.map {
            "{\"institution\":\(jsonString($0.institution)),\"month\":\"\(month($0.month))\",\"studiesIndexed\":\(json($0.studiesIndexed)),"
                + "\"priorChecks\":\(json($0.priorChecks)),\"repeatCandidates\":\(json($0.repeatCandidates)),"
                + "\"repeatStudies\":\(json($0.repeatStudies))}"
        }
        let body = "{\"from\":\"\(month(query.fromMonth))\",\"to\":\"\(month(query.toMonth))\",\"region\":"
            + "\(query.region.map(jsonString) ?? "null"),\"suppression\":\"counts resting on 1 to 4 patients are shown as <5\","
            + "\"rows\":[\(items.joined(separator: ","))]}"
        return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array(body.utf8))
    }
}
