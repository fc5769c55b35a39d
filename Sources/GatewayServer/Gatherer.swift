import Foundation
import GatewayNet
import IndexStore
import Logging
import Synchronization

/// Sends a regional node's outbox to the national node: batches of up to 1 000 records
/// in store order (so in order per storage unit), gzip NDJSON, each with an idempotency
/// key made of this region, the outbox's epoch and the batch's numbers, so a batch resent after a
/// crash of either side is a replay at the receiver. An entry leaves the outbox only
/// after the national node acknowledged it. Failures back off exponentially (0.5 s to
/// 30 s) with jitter; an empty outbox is looked at again every 200 ms.
final class Gatherer: Sendable {
    private let outbox: OutboxStore
    private let client: HTTPClient
    private let target: String
    private let region: String
    private let logger: Logger
    private let running = Mutex(false)
    /// The outbox's epoch never changes for a database: read once.
    private let epoch = Mutex<String?>(nil)

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
                switch await sendOneBatch() {
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

    private func outboxEpoch() async throws(StoreError) -> String {
        if let known = epoch.withLock({ $0 }) { return known }
        let read = try await outbox.outboxEpoch()
        epoch.withLock { $0 = read }
        return read
    }

    private func sendOneBatch() async -> Outcome {
        guard let batch = try? await outbox.pending(limit: 1_000) else { return .failed }
        guard let first = batch.first, let last = batch.last else { return .empty }
        guard let epoch = try? await outboxEpoch() else { return .failed }
        let body = Gzip.compress(Array(batch.map(\.record).joined(separator: "\n").utf8))
        let request = HTTPRequest(method: "POST", target: "/v1/index/studies", headers: HTTPHeaders([
            ("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip"),
            ("Idempotency-Key", "gather-\(region)-\(epoch)-\(first.sequence)-\(last.sequence)"),
        ]), body: body)
        do {
            let response = try await client.execute(request, url: target)
            guard response.status == 200 || response.status == 202 else {
                logger.warning("the national node refused a gathered batch", metadata: ["status": "\(response.status)"])
                return .failed
            }
            if response.status == 202 {
                // Records the national node rejects would be rejected again: logged, not retried.
                struct Answer: Decodable { let rejected: Int }
                let rejected = (try? JSONDecoder().decode(Answer.self, from: Data(response.body)))?.rejected ?? 0
                logger.warning("the national node rejected gathered records", metadata: ["count": "\(rejected)"])
            }
            try await outbox.acknowledge(through: last.sequence)
            return .sent
        } catch {
            logger.debug("gathering failed; will retry", metadata: ["error": "\(error)"])
            return .failed
        }
    }
}
