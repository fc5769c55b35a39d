import AuditLog
import Foundation
import GatewayNet
import ImagingIndex
import IndexStore
import ReadQueue

/// UPS-RS (PS3.18 §11) over the read queue, and the gateway's own `/v1/reads` calls for
/// what UPS has no word for: take the best next item, heartbeat a lease, post the AI
/// result, dead letters. Clinics create and cancel their own requests; readers claim and
/// complete; ai-workers run the AI stage; operators see all. Protocols/reads.md.
/// Calls about one workitem mostly wait for the writer and run on their connection's loop
/// (`awaiting`); searches, which may render a thousand items, run on the pool.
enum ReadRoutes {
    static let viewers: Set<String> = .roles(.clinic, .reader, .aiWorker, .operator)

    static func add(to router: inout Router, service: ReadService, index: IndexStore, auditor: Auditor,
                    federation: Federation?, region: String) {
        let store = service.store
        router.add("POST", "/dicomweb/workitems", roles: .roles(.clinic), .awaiting { request in
            if let refusal = try await auditor.admit(request, counter: "read-requests") { return refusal }
            let item = try await ReadCreation.workitem(request, index: index, auditor: auditor, federation: federation,
                                                       region: region)
            let outcome = try await perform(request, .create(item), .create, counter: "read-requests", store: store, auditor: auditor)
            var response = HTTPResponse(status: 201, headers: HTTPHeaders([("Content-Type", "application/dicom+json")]),
                                        body: Array(UPSJSON.render(outcome.item!).utf8))
            response.headers.add("Location", "/dicomweb/workitems/\(item.uid)")
            response.headers.add("Content-Location", "/dicomweb/workitems/\(item.uid)")
            return response
        })
        router.add("GET", "/dicomweb/workitems", roles: viewers, .async { request in
            let found = try await search(request, store: store, auditor: auditor)
            guard !found.isEmpty else { return HTTPResponse(status: 204) }
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/dicom+json")]),
                                body: Array(("[" + found.map(UPSJSON.render).joined(separator: ",") + "]").utf8))
        })
        router.add("GET", "/dicomweb/workitems/{uid}", roles: viewers, .awaiting { request in
            let item = try await visible(request, store: store, auditor: auditor)
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/dicom+json")]),
                                body: Array(UPSJSON.render(item).utf8))
        })
        router.add("GET", "/v1/reads/{uid}", roles: viewers, .awaiting { request in
            .json(UPSJSON.native(try await visible(request, store: store, auditor: auditor)))
        })
        router.add("PUT", "/dicomweb/workitems/{uid}/state", roles: .roles(.reader, .aiWorker), .awaiting { request in
            try await changeState(request, store: store, auditor: auditor)
        })
        router.add("POST", "/dicomweb/workitems/{uid}/cancelrequest", roles: .roles(.clinic, .operator), .awaiting { request in
            let uid = request.pathParameters["uid"] ?? ""
            let clinic = request.peer?.role == Role.clinic.rawValue ? request.peer?.organization : nil
            let by = request.peer?.role ?? "operator"
            let outcome = try await perform(request, .requestCancel(uid: uid, clinic: clinic, reason: "cancel requested by \(by)"),
                                            .update, counter: "read-transitions", store: store, auditor: auditor)
            return .json(UPSJSON.native(outcome.item!), status: 202)
        })
        router.add("POST", "/v1/reads/next", roles: .roles(.reader, .aiWorker), .awaiting { request in
            _ = try QueryParameters(request, allowed: ["label"])
            let raw = request.queryValue("label")
            let labels = raw.map { Set($0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)) }
            guard labels?.allSatisfy({ (1...64).contains($0.unicodeScalars.count) }) ?? true else {
                throw HTTPError(400, "invalid_label", "label is one comma-separated list of worklist labels, each 1 to 64 characters.")
            }
            let stage: ClaimStage = request.peer?.role == Role.aiWorker.rawValue ? .ai : .read
            let command = WorkitemCommand.claimNext(stage: stage, labels: labels, transactionUID: UIDs.make(),
                                                    holder: Auditor.actor(request))
            switch try await run(request, command, .update, counter: "read-transitions", store: store, auditor: auditor) {
            case .success(let outcome) where outcome.item != nil: return .json(UPSJSON.native(outcome.item!, forHolder: true))
            case .success, .failure(.noneWaiting): return HTTPResponse(status: 204)
            case .failure(let refusal): throw httpError(refusal)
            }
        })
        router.add("POST", "/v1/reads/{uid}/heartbeat", roles: .roles(.reader, .aiWorker), .awaiting { request in
            let body = try ReadBody.decode(HolderBody.self, request)
            let outcome = try await perform(request, .heartbeat(uid: request.pathParameters["uid"] ?? "", transactionUID: body.transactionUID),
                                            .update, counter: "read-transitions", store: store, auditor: auditor)
            return .json(UPSJSON.native(outcome.item!, forHolder: true))
        })
        router.add("POST", "/v1/reads/{uid}/ai-result", roles: .roles(.aiWorker), .awaiting { request in
            let body = try ReadBody.decode(AIResultBody.self, request)
            let result = try body.aiResult()
            let outcome = try await perform(request, .finishAI(uid: request.pathParameters["uid"] ?? "", transactionUID: body.transactionUID,
                                                               result: result),
                                            .update, counter: "read-transitions", store: store, auditor: auditor)
            return .json(UPSJSON.native(outcome.item!))
        })
        router.add("GET", "/v1/reads/dead-letters", roles: .roles(.operator), .async { request in
            let params = try QueryParameters(request, allowed: ["limit", "offset"])
            var query = WorkitemQuery()
            query.stages = [.deadLetter]
            query.limit = try params.integer("limit", default: 100, in: 1...1000)
            query.offset = try params.integer("offset", default: 0, in: 0...1_000_000)
            let items = try await IndexRoutes.storeCall { () throws(StoreError) in try await store.workitems(query) }
            return .json("{\"count\":\(items.count),\"workitems\":[" + items.map { UPSJSON.native($0) }.joined(separator: ",") + "]}")
        })
        router.add("POST", "/v1/reads/{uid}/redrive", roles: .roles(.operator), .awaiting { request in
            let outcome = try await perform(request, .redrive(uid: request.pathParameters["uid"] ?? "", newUID: UIDs.make()),
                                            .create, counter: "read-requests", store: store, auditor: auditor)
            var response = HTTPResponse.json(UPSJSON.native(outcome.item!), status: 201)
            response.headers.add("Location", "/dicomweb/workitems/\(outcome.item!.uid)")
            return response
        })
    }

    // MARK: parts

    /// Runs `command`, its audit event (when auditing) in the same transaction.
    static func run(_ request: HTTPRequest, _ command: WorkitemCommand, _ action: AuditEvent.Action, counter: String,
                    store: WorkitemStore, auditor: Auditor) async throws(HTTPError) -> Result<WorkitemOutcome, WorkitemRefusal> {
        let enabled = auditor.enabled
        return try await IndexRoutes.storeCall { () throws(StoreError) in
            try await store.perform(command, durable: true) { outcome in
                enabled ? auditor.event(request, .orderRecord, action, counter: counter,
                                        uids: outcome.changed.map(\.studyInstanceUID), count: outcome.changed.count) : nil
            }
        }
    }

    /// `run`, with a refusal as its HTTP answer.
    static func perform(_ request: HTTPRequest, _ command: WorkitemCommand, _ action: AuditEvent.Action, counter: String,
                        store: WorkitemStore, auditor: Auditor) async throws(HTTPError) -> WorkitemOutcome {
        switch try await run(request, command, action, counter: counter, store: store, auditor: auditor) {
        case .success(let outcome): return outcome
        case .failure(let refusal): throw httpError(refusal)
        }
    }

    static func httpError(_ refusal: WorkitemRefusal) -> HTTPError {
        switch refusal {
        case .notFound: return HTTPError(404, "workitem_not_found", "No workitem with this UID (that you may see).")
        case .duplicate: return HTTPError(409, "workitem_exists", "A workitem with this UID exists; use another UID or none.")
        case .wrongState(let s): return HTTPError(409, "wrong_state", "Refused: \(s).")
        case .wrongTransaction:
            return HTTPError(400, "wrong_transaction_uid",
                             "The Transaction UID is not the one that holds this workitem; if you held it, your lease expired.")
        case .noneWaiting: return HTTPError(404, "none_waiting", "No workitem is waiting.")
        }
    }

    /// PUT state: IN PROGRESS claims (a reader the read, an ai-worker the AI stage),
    /// COMPLETED and CANCELED end the holder's claim. A repeated final state under the
    /// same Transaction UID is 200 with a Warning (PS3.18 §11.7).
    private static func changeState(_ request: HTTPRequest, store: WorkitemStore, auditor: Auditor) async throws -> HTTPResponse {
        let uid = request.pathParameters["uid"] ?? ""
        let change: UPSJSON.StateRequest
        do {
            change = try UPSJSON.stateChange(request.body)
        } catch {
            throw HTTPError(400, "invalid_state_change", "\(error.attribute.isEmpty ? "" : error.attribute + ": ")\(error.message)")
        }
        let isAI = request.peer?.role == Role.aiWorker.rawValue
        let command: WorkitemCommand
        switch change.state {
        case "IN PROGRESS":
            command = .claim(uid: uid, transactionUID: change.transactionUID, holder: Auditor.actor(request), stage: isAI ? .ai : .read)
        case "COMPLETED" where !isAI:
            command = .complete(uid: uid, transactionUID: change.transactionUID, report: change.report)
        case "CANCELED" where !isAI:
            command = .cancel(uid: uid, transactionUID: change.transactionUID, reason: "canceled by its reader")
        default:
            throw HTTPError(409, "wrong_state", "The AI stage posts its result to /v1/reads/{uid}/ai-result; it does not complete reads.")
        }
        let outcome = try await perform(request, command, .update, counter: "read-transitions", store: store, auditor: auditor)
        var response = HTTPResponse.json(UPSJSON.native(outcome.item!, forHolder: true))
        if outcome.replayed {
            response.headers.add("Warning", "299 imaging-gateway \"The workitem is already \(change.state) under this Transaction UID\"")
        }
        return response
    }

    private static func search(_ request: HTTPRequest, store: WorkitemStore, auditor: Auditor) async throws -> [Workitem] {
        let names: [String: String] = ["ProcedureStepState": "00741000", "Priority": "00741200", "WorklistLabel": "00741202",
                                       "RequestingService": "00321033"]
        var values: [String: String] = [:]
        for (name, value) in request.query where name != "limit" && name != "offset" {
            guard let tag = names[name] ?? (names.values.contains(name) ? name : nil) else {
                throw HTTPError(400, "unsupported_parameter",
                                "'\(HTTPError.quote(name))' is not a search key here; use ProcedureStepState, Priority, WorklistLabel, RequestingService, limit, offset.")
            }
            values[tag] = value
        }
        let params = try QueryParameters(request, allowed: Set(request.query.map(\.name)))
        var query = WorkitemQuery()
        query.limit = try params.integer("limit", default: 100, in: 1...1000)
        query.offset = try params.integer("offset", default: 0, in: 0...1_000_000)
        if let state = values["00741000"] {
            let stages = Workitem.Stage.allCases.filter { $0.upsState == state }
            guard !stages.isEmpty else {
                throw HTTPError(400, "invalid_state", "ProcedureStepState is SCHEDULED, IN PROGRESS, COMPLETED or CANCELED.")
            }
            query.stages = stages
        }
        if let p = values["00741200"] {
            guard let priority = Workitem.Priority(dicom: p) else { throw HTTPError(400, "invalid_priority", "Priority is HIGH, MEDIUM or LOW.") }
            query.priority = priority
        }
        query.label = values["00741202"]
        query.clinic = values["00321033"]
        if request.peer?.role == Role.clinic.rawValue {
            // A clinic sees its own requests only.
            if let asked = query.clinic, asked != request.peer?.organization { return [] }
            query.clinic = request.peer?.organization
        }
        let found = try await IndexRoutes.storeCall { () throws(StoreError) in try await store.workitems(query) }
        try await auditor.record([auditor.event(request, .orderRecord, .read, counter: "lookups",
                                                uids: found.map(\.studyInstanceUID), count: found.count)])
        return found
    }

    /// The workitem named by the path, if the caller may see it (a clinic: its own).
    private static func visible(_ request: HTTPRequest, store: WorkitemStore, auditor: Auditor) async throws -> Workitem {
        let uid = request.pathParameters["uid"] ?? ""
        let found = try await IndexRoutes.storeCall { () throws(StoreError) in try await store.workitem(uid) }
        guard let item = found,
              request.peer?.role != Role.clinic.rawValue || item.clinic == request.peer?.organization else {
            throw httpError(.notFound)
        }
        try await auditor.record([auditor.event(request, .orderRecord, .read, counter: "lookups", uids: [item.studyInstanceUID],
                                                count: 1)])
        return item
    }

    struct HolderBody: Decodable {
        let transactionUID: String
    }

    struct AIResultBody: Decodable {
        let transactionUID: String
        /// 0...1, with `result` (any JSON object) — or `failure` with a reason.
        let urgency: Double?
        let result: JSONValue?
        let failure: String?

        func aiResult() throws(HTTPError) -> AIResult {
            if let failure { return .failed(reason: String(failure.prefix(200))) }
            guard let urgency, (0...1).contains(urgency) else {
                throw HTTPError(400, "invalid_ai_result", "Give urgency (0 to 1) and result (a JSON object), or failure (a reason).")
            }
            var text = "{}"
            if case .object? = result, let data = try? JSONEncoder().encode(result!), data.count <= 16_384 {
                text = String(decoding: data, as: UTF8.self)
            } else if result != nil {
                throw HTTPError(400, "invalid_ai_result", "result is a JSON object of at most 16 KiB.")
            }
            return .triaged(ReadService.triage(urgency), result: text)
        }
    }
}

/// JSON bodies of the /v1/reads calls.
enum ReadBody {
    static func decode<T: Decodable>(_ type: T.Type, _ request: HTTPRequest) throws(HTTPError) -> T {
        guard request.mediaType == "application/json" else { throw HTTPError(415, "unsupported_media_type", "Send application/json.") }
        guard let value = try? JSONDecoder().decode(T.self, from: Data(request.body)) else {
            throw HTTPError(400, "invalid_json", "The body is not the JSON object this call takes (Protocols/reads.md).")
        }
        return value
    }
}
