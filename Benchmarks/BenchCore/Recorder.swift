import Foundation
import GatewayNet
import Histogram
import Synchronization

/// What a stage measured, as results.json carries it (schema: Benchmarks/results.schema.json).
public struct StageResult: Codable, Sendable {
    public struct Latency: Codable, Sendable {
        public var p50, p90, p99, p999, p9999, max, mean: Double
    }

    public struct Errors: Codable, Sendable {
        public var status4xx = 0, status5xx = 0, timeout = 0, connect = 0, other = 0
        public var total: Int { status4xx + status5xx + timeout + connect + other }
    }

    public struct Server: Codable, Sendable {
        public var cpuPercent: Double
        public var rssKiBMax: Int
    }

    /// Percentages of all the machine's CPU time during the stage (MachineSampler).
    public struct Machine: Codable, Sendable, Equatable {
        public var busyPercent: Double
        public var stealPercent: Double
    }

    public var name: String
    public var mode: String
    /// True for closed-loop stages: latency there omits the waits a stalled server
    /// imposes on requests not yet sent (coordinated omission); use them for peak
    /// throughput only.
    public var coordinatedOmission: Bool
    public var schedule: String?
    public var offeredRate: Double?
    public var achievedRate: Double
    public var durationSeconds: Double
    public var requests: Int
    public var errors: Errors
    public var errorRate: Double
    /// Open loop: sends that left more than 1 ms after their intended time.
    public var lateSends: Int
    /// Open loop: sends skipped because `maxInFlight` requests were already waiting.
    public var droppedSends: Int
    /// Milliseconds.
    public var latencyMs: Latency
    public var server: Server?
    public var machine: Machine?
    public var histogramFile: String
}

/// The histogram every stage records into: microseconds, 1 µs to 60 s, 3 digits.
public typealias LatencyHistogram = Histogram<UInt64>

/// Collects one stage's latencies (µs, 1 µs to 60 s, 3 significant digits) and outcomes.
/// Completions arrive on the client's loop threads; one lock guards it all, uncontended
/// with the default single loop.
public final class Recorder: Sendable {
    struct State {
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000,
                                          numberOfSignificantValueDigits: .three)
        var errors = StageResult.Errors()
        var completed = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func record(micros: UInt64, outcome: Result<HTTPResponse, HTTPClientError>) {
        state.withLock { s in
            _ = s.histogram.record(min(max(micros, 1), 60_000_000))
            s.completed += 1
            switch outcome {
            case .success(let r) where r.status >= 500: s.errors.status5xx += 1
            case .success(let r) where r.status >= 400: s.errors.status4xx += 1
            case .success: break
            case .failure(.timedOut): s.errors.timeout += 1
            case .failure(.connectFailed), .failure(.tlsFailed): s.errors.connect += 1
            case .failure: s.errors.other += 1
            }
        }
    }

    var snapshot: State { state.withLock { $0 } }

    public var histogram: LatencyHistogram { snapshot.histogram }
}

extension Histogram<UInt64> {
    var latencyMs: StageResult.Latency {
        func ms(_ p: Double) -> Double { Double(valueAtPercentile(p)) / 1000 }
        return StageResult.Latency(p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), p9999: ms(99.99),
                                   max: Double(totalCount == 0 ? 0 : max) / 1000, mean: totalCount == 0 ? 0 : mean / 1000)
    }

    /// The classic .hgrm text (values in ms), as HdrHistogram's tools read it.
    var hgrm: String {
        var out = ""
        outputPercentileDistribution(to: &out, outputValueUnitScalingRatio: 1000)
        return out
    }
}
