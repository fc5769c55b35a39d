import Foundation
import GatewayNet
import IndexStore
import Logging
import Synchronization

/// Sends a regional node's outbox to the national node: batches of up to 5 000 records or
/// 8 MiB of text in store order, gzip NDJSON, each with an idempotency key made of this
/// region, the outbox's epoch and the batch's numbers, so a batch resent after a crash of
/// either side is a replay at the receiver. Up to three batches travel at once, so that
/// the national node parses one while it commits another; they are acknowledged in order,
/// and an entry leaves the outbox only after the national node took it and every entry
/// before.
///
/// What must stay true: two versions of one study are never in flight together (a batch
/// that shares a study with one in flight waits for it; versions within one batch are
/// applied in the batch's order), so each study's updates reach the national node in the
/// order they were made, even when a later batch is answered before an earlier one. After
/// any failure everything not yet acknowledged is sent again, in order; failures back off
/// exponentially (0.5 s to 30 s) with jitter; an empty outbox is looked at again every
/// 200 ms.
final class Gatherer: Sendable {
    private let outbox: OutboxStore
    private let client: HTTPClient
    private let target: String
    private let region: String
    private let logger: Logger
    private let running = Mutex(false)
    /// The outbox's epoch never changes for a database: read once.
    private let epoch = Mutex<String?>(nil)
    /// Records per batch: `batchSize`, halved each time the national node answers 413
    /// (its `index.maxBatchRecords` or body limits set lower than ours), so that a
    /// stricter national node slows gathering instead of stopping it.
    private let batchLimit = Mutex(Gatherer.batchSize)
    /// The national node commits a batch's records together, and the fewer commits the
    /// fewer index pages written per record (random tokens and UIDs touch a page each):
    /// draining on its own went from 0.63 x the regional ingest rate with 1 000 records a
    /// batch to 1.04 x with 5 000 (RESULTS.md). The byte bound keeps a batch of large
    /// records well inside the national node's default body limits.
    static let batchSize = 5_000
    static let batchBytes = 8 << 20
    static let inFlight = 3

    init(outbox: OutboxStore, client: HTTPClient, nationalURL: String, region: String, logger: Logger) {
        self.outbox = outbox
        self.client = client
        target = nationalURL + "/v1/index/studies"
        self.region = region
        self.logger = logger
    }

    func start() {
        guard running.withLock({ let was = $0; $0 = true; return !was }) else { return }
        Task.detached { [self] in
            var backoff = 0.5
            while running.withLock({ $0 }) {
                switch await sendWindow() {
                case .sent:
                    backoff = 0.5
                case .empty:
                    try? await Task.sleep(for: .milliseconds(200))
                case .failed:
                    try? await Task.sleep(for: .seconds(backoff * Double.random(in: 0.5...1.5)))
                    backoff = min(30, backoff * 2)
                }
            }
        }
    }

    func stop() { running.withLock { $0 = false } }

    private enum Outcome { case sent, empty, failed }

    private struct Flight {
        let last: Int
        let studies: Set<Substring>
        let sent: Task<Bool, Never>
    }

    private func outboxEpoch() async throws(StoreError) -> String {
        if let known = epoch.withLock({ $0 }) { return known }
        let read = try await outbox.outboxEpoch()
        epoch.withLock { $0 = read }
        return read
    }

    /// Sends from the oldest unacknowledged entry until the outbox is empty or a batch
    /// fails, keeping up to `inFlight` batches travelling.
    private func sendWindow() async -> Outcome {
        guard let epoch = try? await outboxEpoch() else { return .failed }
        var flights: [Flight] = []
        var sentThrough = 0
        var sentAny = false
        var held: [OutboxEntry] = []
        var readFailed = false
        while running.withLock({ $0 }) {
            while flights.count < Self.inFlight {
                if held.isEmpty {
                    guard let next = try? await outbox.pending(after: sentThrough, limit: Self.batchSize) else {
                        readFailed = true
                        break
                    }
                    held = next
                }
                let batch = Self.prefix(of: held, records: batchLimit.withLock { $0 }, bytes: Self.batchBytes)
                guard let last = batch.last else { break }
                let studies = Set(batch.map { Self.studyUID($0.record) })
                if flights.contains(where: { !$0.studies.isDisjoint(with: studies) }) { break }
                held.removeFirst(batch.count)
                flights.append(Flight(last: last.sequence, studies: studies, sent: Task { await self.send(batch, epoch: epoch) }))
                sentThrough = last.sequence
            }
            guard let first = flights.first else { return readFailed ? .failed : sentAny ? .sent : .empty }
            guard await first.sent.value, (try? await outbox.acknowledge(through: first.last)) != nil else {
                for flight in flights.dropFirst() { _ = await flight.sent.value }
                return .failed
            }
            flights.removeFirst()
            sentAny = true
        }
        for flight in flights { _ = await flight.sent.value }
        return .sent
    }

    /// The longest prefix of `entries` of at most `records` entries and `bytes` of record
    /// text, never empty when `entries` is not.
    static func prefix(of entries: [OutboxEntry], records: Int, bytes: Int) -> [OutboxEntry] {
        var total = 0
        var count = 0
        for entry in entries.prefix(max(1, records)) {
            total += entry.record.utf8.count + 1
            if count > 0, total > bytes { break }
            count += 1
        }
        return Array(entries.prefix(count))
    }

    /// The record's study UID, read from the text this node wrote (`StudyRecord.jsonText`
    /// puts it second, unescaped: UIDs are digits and dots); the whole text when it is
    /// not found, which only makes batches wait more.
    static func studyUID(_ record: String) -> Substring {
        let key = "\"studyInstanceUID\":\""
        guard let start = record.range(of: key)?.upperBound,
              let end = record[start...].firstIndex(of: "\"") else { return record[...] }
        return record[start..<end]
    }

    private func send(_ batch: [OutboxEntry], epoch: String) async -> Bool {
        guard let first = batch.first, let last = batch.last else { return true }
        let body = Gzip.compress(Array(batch.map(\.record).joined(separator: "\n").utf8))
        let request = HTTPRequest(method: "POST", target: "/v1/index/studies", headers: HTTPHeaders([
            ("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip"),
            ("Idempotency-Key", "gather-\(region)-\(epoch)-\(first.sequence)-\(last.sequence)"),
        ]), body: body)
        do {
            let response = try await client.execute(request, url: target)
            if response.status == 413 {
                let limit = batchLimit.withLock { limit in
                    limit = min(limit, max(1, batch.count / 2))
                    return limit
                }
                logger.warning("the national node refused a gathered batch as too large; sending smaller ones",
                               metadata: ["records": "\(batch.count)", "now": "\(limit)"])
                return false
            }
            guard response.status == 200 || response.status == 202 else {
                logger.warning("the national node refused a gathered batch", metadata: ["status": "\(response.status)"])
                return false
            }
            if response.status == 202 {
                // Records the national node rejects would be rejected again: logged, not retried.
                struct Answer: Decodable { let rejected: Int }
                let rejected = (try? JSONDecoder().decode(Answer.self, from: Data(response.body)))?.rejected ?? 0
                logger.warning("the national node rejected gathered records", metadata: ["count": "\(rejected)"])
            }
            return true
        } catch {
            logger.debug("gathering failed; will retry", metadata: ["error": "\(error)"])
            return false
        }
    }
}
