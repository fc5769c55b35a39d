/// How long the server held each request: from its last byte parsed to its response
/// queued for the socket, counted into fixed buckets (Prometheus `le` bounds, seconds).
///
/// Why the server keeps its own: a load generator's latency also holds its own queueing
/// and the time its threads were off the CPU, which on a shared machine can be most of a
/// tail; the node's figure says which side a stall was on. The request path pays two
/// clock reads and two relaxed atomic adds; a bucket's count is cumulative only when read.
public final class RequestDurations: Sendable {
    /// Upper bounds of the buckets in seconds; a last one, +Inf, takes the rest. Close
    /// enough from 1 to 100 ms (steps of at most 1.5 ×) to read a p99 against a target
    /// like "≤ 1.2 × the first five minutes'" or "≤ 5 ms".
    public static let bounds: [Double] = [0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
                                          0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    private static let boundsNanos: [UInt64] = bounds.map { UInt64($0 * 1e9) }

    private let buckets: [Counter] = (0...RequestDurations.bounds.count).map { _ in Counter() }
    private let sumMicros = Counter()

    func record(since start: ContinuousClock.Instant) {
        let (seconds, attos) = (ContinuousClock.now - start).components
        let nanos = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attos)) / 1_000_000_000
        let index = Self.boundsNanos.firstIndex { nanos <= $0 } ?? Self.bounds.count
        buckets[index].add(1)
        sumMicros.add(Int(nanos / 1000))
    }

    public struct Snapshot: Sendable, Equatable {
        /// Requests at or under each bound of `RequestDurations.bounds`, then all of them.
        public let cumulative: [Int]
        public let sumSeconds: Double
        public var count: Int { cumulative.last ?? 0 }

        public init(cumulative: [Int], sumSeconds: Double) {
            self.cumulative = cumulative
            self.sumSeconds = sumSeconds
        }
    }

    public var snapshot: Snapshot {
        var total = 0
        let cumulative = buckets.map { total += $0.current; return total }
        return Snapshot(cumulative: cumulative, sumSeconds: Double(sumMicros.current) / 1e6)
    }

    /// The histogram in the Prometheus text format under `name` (a histogram's
    /// `_bucket`, `_sum` and `_count` series).
    public static func exposition(_ snapshot: Snapshot, name: String, help: String) -> String {
        var text = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (bound, count) in zip(bounds.map { "\($0)" } + ["+Inf"], snapshot.cumulative) {
            text += "\(name)_bucket{le=\"\(bound)\"} \(count)\n"
        }
        text += "\(name)_sum \(snapshot.sumSeconds)\n\(name)_count \(snapshot.count)\n"
        return text
    }
}
