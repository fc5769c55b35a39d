import GatewayNet
import ImagingIndex
import JSONText
import Synchronization

/// The cross-region lookups bound for one peer, sent together
/// (`POST /v1/federation/lookups`, FederationRoutes), by Nagle's rule: a lookup leaves at
/// once when nothing is on the wire to that peer; otherwise it waits for the batch out to
/// return and leaves with every lookup that arrived meanwhile. A full batch (`maxBatch`)
/// leaves at once whatever is out, up to `maxInFlight` batches. Under light load every
/// batch is one lookup; under load one round trip carries many, and the peer parses,
/// audits and commits them as one request. What that saves is per request at the peer: a
/// TLS record each way, a task, and above all a group commit with its `fdatasync`, about
/// 70 µs of CPU on a virtual disk. On two shared cores the national node spent about 95 µs
/// a lookup asked one per request, 66 with two batches out at a time and 52 with one
/// (RESULTS.md).
///
/// A peer older than the batch call answers it 404; its lookups are then asked one GET
/// each, as before, so regions and their national node can be upgraded in any order.
///
/// The cost: a lookup may wait up to one round trip before it leaves, so under moderate
/// load over a wide-area link its answer takes up to two. Its deadline still holds: a
/// batch goes out under the earliest deadline among its lookups, and a lookup queued later
/// has a later deadline than every batch ahead of it.
final class LookupBatcher: Sendable {
    enum Failure: Error, Equatable {
        case timeout
        case error
    }

    /// A lookup's page (`{"studies":[…],…}`) as the peer answered it, or why there is none.
    typealias Answer = Result<[String: JSONValue], Failure>

    private struct Waiting: Sendable {
        let target: String
        let requestID: String
        let due: ContinuousClock.Instant
        let done: @Sendable (Answer) -> Void
    }

    static let maxInFlight = 8
    static let maxBatch = FederationRoutes.maxLookups
    static let path = "/v1/federation/lookups"

    private let client: HTTPClient
    private let peerURL: String
    private let breaker: CircuitBreaker
    private let state = Mutex<(queue: [Waiting], inFlight: Int)>(([], 0))

    init(client: HTTPClient, peerURL: String, breaker: CircuitBreaker) {
        self.client = client
        self.peerURL = peerURL
        self.breaker = breaker
    }

    /// `target` (a native lookup's path and query, scope local) asked of the peer under
    /// `requestID`, answered by `due` at the latest.
    func lookup(_ target: String, requestID: String, due: ContinuousClock.Instant) async -> Answer {
        await withCheckedContinuation { (c: CheckedContinuation<Answer, Never>) in
            let waiting = Waiting(target: target, requestID: requestID, due: due) { c.resume(returning: $0) }
            let batch = state.withLock { s -> [Waiting]? in
                s.queue.append(waiting)
                return Self.takeIfDue(&s)
            }
            if let batch { send(batch) }
        }
    }

    /// The next batch, counted as out, when Nagle's rule lets one leave now.
    private static func takeIfDue(_ s: inout (queue: [Waiting], inFlight: Int)) -> [Waiting]? {
        guard !s.queue.isEmpty, s.inFlight == 0 || (s.queue.count >= maxBatch && s.inFlight < maxInFlight) else { return nil }
        let batch = Array(s.queue.prefix(maxBatch))
        s.queue.removeFirst(batch.count)
        s.inFlight += 1
        return batch
    }

    private func send(_ batch: [Waiting]) {
        var body = JSONWriter(capacity: 64 + 160 * batch.count)
        body.beginObject()
        body.key("lookups")
        body.array(batch) { out, waiting in
            out.beginObject()
            out.field("requestID", waiting.requestID)
            out.field("target", waiting.target)
            out.endObject()
        }
        body.endObject()
        let request = HTTPRequest(method: "POST", target: Self.path,
                                  headers: HTTPHeaders([("Content-Type", "application/json")]), body: body.bytes)
        let due = batch.map(\.due).min() ?? .now
        client.execute(request, url: peerURL + Self.path, deadline: due) { [self] result in
            if case .success(let response) = result, response.status == 404 { return sendAlone(batch) }
            let answers = Self.answers(result, count: batch.count)
            breaker.record(success: answers != nil)
            for (i, waiting) in batch.enumerated() {
                waiting.done(answers?[i] ?? .failure(result.isTimeout ? .timeout : .error))
            }
            sendNext()
        }
    }

    /// A peer older than the batch call answers it 404: during a rolling upgrade each of
    /// the batch's lookups is then asked as its own GET, as before the call existed. The
    /// batch counts as out until the last of them returns.
    private func sendAlone(_ batch: [Waiting]) {
        let left = Atomic(batch.count)
        let failed = Atomic(0)
        for waiting in batch {
            let request = HTTPRequest(method: "GET", target: waiting.target, headers: HTTPHeaders([("X-Request-ID", waiting.requestID)]))
            client.execute(request, url: peerURL + waiting.target, deadline: waiting.due) { [self] result in
                if case .success(let response) = result, response.status == 200, let page = JSONValue.parseObject(response.body) {
                    waiting.done(.success(page))
                } else {
                    failed.add(1, ordering: .relaxed)
                    waiting.done(.failure(result.isTimeout ? .timeout : .error))
                }
                if left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                    breaker.record(success: failed.load(ordering: .relaxed) == 0)
                    sendNext()
                }
            }
        }
    }

    /// After a batch returns: the lookups that queued meanwhile leave together, unless the
    /// peer's breaker opened, when they fail at once instead of waiting out a deadline.
    /// Every batch now due leaves; each turn first counts off the batch that ended last
    /// (the one that returned, or one failed here).
    private func sendNext() {
        var ended = 1
        while true {
            let batch = state.withLock { s -> [Waiting]? in
                s.inFlight -= ended
                return Self.takeIfDue(&s)
            }
            guard let batch else { return }
            if breaker.isOpen {
                batch.forEach { $0.done(.failure(.error)) }
                ended = 1
            } else {
                send(batch)
                ended = 0
            }
        }
    }

    /// Each lookup's page in order, or nil when the batch failed as a whole (no answer, a
    /// status other than 200, or not one answer per lookup). A lookup the peer refused
    /// alone (its own 4xx or 5xx) is an error for that lookup only.
    private static func answers(_ result: Result<HTTPResponse, HTTPClientError>, count: Int) -> [Answer]? {
        guard case .success(let response) = result, response.status == 200,
              let object = JSONValue.parseObject(response.body), case .array(let items)? = object["answers"],
              items.count == count
        else { return nil }
        return items.map { item in
            guard case .object(let answer) = item, case .number(200)? = answer["status"],
                  case .object(let page)? = answer["body"]
            else { return .failure(.error) }
            return .success(page)
        }
    }
}

private extension Result where Failure == HTTPClientError {
    var isTimeout: Bool {
        if case .failure(.timedOut) = self { return true }
        return false
    }
}
