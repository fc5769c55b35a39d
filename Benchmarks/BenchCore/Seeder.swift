import Foundation
import GatewayNet
import Synchronization

/// Loads a node with synthetic studies as fast as it takes them: `connections` uploads
/// in flight, each the next batch of `SyntheticStudies`; a failed batch is retried three
/// times before it counts as failed. Study numbers start at `from`, so a second run can
/// extend a node (from 1 M to 10 M) instead of rewriting it.
public enum Seeder {
    public struct Outcome: Sendable {
        public let stored: Int
        public let failedBatches: Int
        public let seconds: Double
        public var rate: Double { seconds > 0 ? Double(stored) / seconds : 0 }
    }

    public static func run(client: HTTPClient, endpoint: HTTPEndpoint, from: Int, count: Int, batchSize: Int,
                           connections: Int, progress: @escaping @Sendable (Int, Double) -> Void) -> Outcome {
        let batches = (count + batchSize - 1) / batchSize
        let next = Atomic<Int>(0), stored = Atomic<Int>(0), failed = Atomic<Int>(0), running = Atomic<Int>(max(1, connections))
        let started = ContinuousClock.now
        // Signalled by the last connection to finish, so the run ends (and is timed) when
        // the last batch is answered, not at the next progress report: waking once a
        // second rounded every seeding time up to whole seconds (a 3.1 s run read 4 s).
        let finished = DispatchSemaphore(value: 0)

        @Sendable func send(_ n: Int, attempt: Int) {
            let size = min(batchSize, count - n * batchSize)
            let headers = HTTPHeaders([("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip")])
            let body = SyntheticStudies.studies(from: from + n * batchSize, count: size)
            let request = HTTPRequest(method: "POST", target: "/v1/index/studies", headers: headers, body: body)
            client.execute(request, at: endpoint, deadline: .now + .seconds(120)) { result in
                if case .success(let r) = result, r.status == 200 || r.status == 202 {
                    stored.add(size, ordering: .relaxed)
                } else if attempt < 3 {
                    return send(n, attempt: attempt + 1)
                } else {
                    failed.add(1, ordering: .relaxed)
                }
                sendNext()
            }
        }

        @Sendable func sendNext() {
            let n = next.add(1, ordering: .relaxed).oldValue
            if n < batches {
                send(n, attempt: 0)
            } else if running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                finished.signal()
            }
        }

        for _ in 0..<max(1, connections) { sendNext() }
        while finished.wait(timeout: .now() + 1) == .timedOut {
            progress(stored.load(ordering: .relaxed), (ContinuousClock.now - started).seconds)
        }
        let seconds = (ContinuousClock.now - started).seconds
        return Outcome(stored: stored.load(ordering: .relaxed), failedBatches: failed.load(ordering: .relaxed), seconds: seconds)
    }
}
