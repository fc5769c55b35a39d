import CGatewayShims
import Foundation
import GatewayNet
import Synchronization

/// Where and how to send: the target, the client, the scenario mix.
public struct Target: Sendable {
    public let baseURL: String
    let endpoint: HTTPEndpoint
    public let client: HTTPClient
    public let mix: ScenarioMix
    public let requestTimeout: Duration

    /// Nil when `baseURL` is not an absolute http(s) URL.
    public init?(baseURL: String, client: HTTPClient, mix: ScenarioMix, requestTimeout: Duration = .seconds(10)) {
        guard let endpoint = HTTPEndpoint(baseURL) else { return nil }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.endpoint = endpoint
        self.client = client
        self.mix = mix
        self.requestTimeout = requestTimeout
    }
}

/// Runs one stage. Open loop: requests leave on a schedule whatever the server does, and
/// each latency runs from the request's intended send time, so a stall shows up in every
/// request it delayed. Closed loop: N connections each send the next request when the
/// previous answer arrives; a stall then delays only N requests and hides in the
/// percentiles (coordinated omission), so closed stages are for peak throughput.
public enum LoadRun {
    static let lateThreshold: Double = 0.001

    public static func open(_ target: Target, name: String, schedule: Schedule, duration: Double, warmup: Double,
                            maxInFlight: Int = 20_000, sampler: ProcessSampler? = nil) -> (StageResult, Recorder) {
        let recorder = Recorder()
        let pacer = Pacer(target, times: schedule.sendTimes(duration: warmup + duration), warmup: warmup,
                          maxInFlight: maxInFlight, recorder: recorder)
        sampler?.begin()
        let machine = MachineSampler()
        target.client.onLoop { pacer.start(on: $0) }
        while !pacer.finished.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.002) }
        let sent = ContinuousClock.now
        while pacer.inFlight.load(ordering: .relaxed) > 0, ContinuousClock.now - sent < target.requestTimeout + .seconds(1) {
            Thread.sleep(forTimeInterval: 0.002)
        }
        let server = sampler?.end()
        let snap = recorder.snapshot
        let achieved = Double(snap.completed - snap.errors.total) / duration
        let result = StageResult(
            name: name, mode: "open", coordinatedOmission: false, schedule: schedule.description,
            offeredRate: Double(pacer.offeredMeasured) / duration, achievedRate: achieved, durationSeconds: duration,
            requests: snap.completed, errors: snap.errors,
            errorRate: snap.completed == 0 ? 0 : Double(snap.errors.total) / Double(snap.completed),
            lateSends: pacer.late, droppedSends: pacer.dropped, latencyMs: snap.histogram.latencyMs, server: server,
            machine: machine.end(), histogramFile: "\(name).hgrm")
        return (result, recorder)
    }

    public static func closed(_ target: Target, name: String, connections: Int, duration: Double, warmup: Double,
                              sampler: ProcessSampler? = nil) -> (StageResult, Recorder) {
        let recorder = Recorder()
        let clock = ContinuousClock()
        let start = clock.now
        let measureFrom = start + .seconds(warmup)
        let end = measureFrom + .seconds(duration)
        let counter = Atomic<Int>(0)
        let running = Atomic<Int>(connections)
        let client = target.client

        @Sendable func send() {
            let n = counter.add(1, ordering: .relaxed).newValue
            var (request, path) = target.mix.request(n)
            request.target = path
            let sentAt = clock.now
            client.execute(request, at: target.endpoint, deadline: sentAt + target.requestTimeout) { outcome in
                let now = clock.now
                if sentAt >= measureFrom && now <= end { recorder.record(micros: (now - sentAt).micros, outcome: outcome) }
                if now < end { send() } else { running.subtract(1, ordering: .relaxed) }
            }
        }
        sampler?.begin()
        let machine = MachineSampler()
        for _ in 0..<connections { send() }
        while running.load(ordering: .relaxed) > 0, clock.now < end + target.requestTimeout + .seconds(1) {
            Thread.sleep(forTimeInterval: 0.005)
        }
        let server = sampler?.end()
        let snap = recorder.snapshot
        let result = StageResult(
            name: name, mode: "closed", coordinatedOmission: true, schedule: nil, offeredRate: nil,
            achievedRate: Double(snap.completed - snap.errors.total) / duration, durationSeconds: duration,
            requests: snap.completed, errors: snap.errors,
            errorRate: snap.completed == 0 ? 0 : Double(snap.errors.total) / Double(snap.completed),
            lateSends: 0, droppedSends: 0, latencyMs: snap.histogram.latencyMs, server: server,
            machine: machine.end(), histogramFile: "\(name).hgrm")
        return (result, recorder)
    }
}

/// An open loop's sends, made on the client's loop at their times: the loop sleeps in
/// epoll until the next send is due (to the microsecond, its timer slack cut to 1 µs),
/// sends every request due by then, and the requests start on that same thread.
///
/// Why on the loop: a thread of its own that slept until each send and handed the request
/// to the loop cost two thread wake-ups a request, and the generator 72 µs of CPU a token
/// lookup at 6 000/s against 35 µs in a closed loop (RESULTS.md, session 25), on the two
/// cores it shares with the node, so an open stage at 80 % of the closed-loop peak left
/// the node less CPU than the closed stage had. Never early: a request leaves at or after
/// its time, and its latency counts from its time, so a late send is paid in latency.
///
/// Every field but the atomics is touched only on the loop, and read by `open` once
/// `finished` is set (a release store, read with acquire).
private final class Pacer: @unchecked Sendable {
    let finished = Atomic<Bool>(false)
    let inFlight = Atomic<Int>(0)
    private(set) var late = 0, dropped = 0, offeredMeasured = 0
    private let target: Target
    private let times: [Double]
    private let warmup: Double
    private let maxInFlight: Int
    private let recorder: Recorder
    private let clock = ContinuousClock()
    /// Where the schedule's times count from.
    private var origin = ContinuousClock.now
    private var next = 0

    init(_ target: Target, times: [Double], warmup: Double, maxInFlight: Int, recorder: Recorder) {
        self.target = target
        self.times = times
        self.warmup = warmup
        self.maxInFlight = maxInFlight
        self.recorder = recorder
    }

    func start(on loop: EventLoop) {
        _ = gw_set_timer_slack(1_000)
        origin = clock.now + .milliseconds(20)
        sendDue(on: loop)
    }

    private func sendDue(on loop: EventLoop) {
        let now = clock.now
        while next < times.count {
            let intended = origin + .seconds(times[next])
            if intended > now {
                loop.schedule(after: intended - now) { [self] in sendDue(on: loop) }
                return
            }
            send(next, intended: intended, now: now)
            next += 1
        }
        finished.store(true, ordering: .releasing)
    }

    private func send(_ n: Int, intended: ContinuousClock.Instant, now: ContinuousClock.Instant) {
        let measured = times[n] >= warmup
        if measured {
            offeredMeasured += 1
            if (now - intended).seconds > LoadRun.lateThreshold { late += 1 }
        }
        guard inFlight.load(ordering: .relaxed) < maxInFlight else {
            if measured { dropped += 1 }
            return
        }
        inFlight.add(1, ordering: .relaxed)
        var (request, path) = target.mix.request(n)
        request.target = path
        target.client.execute(request, at: target.endpoint, deadline: intended + target.requestTimeout) { [self] outcome in
            let elapsed = clock.now - intended
            inFlight.subtract(1, ordering: .relaxed)
            if measured { recorder.record(micros: elapsed.micros, outcome: outcome) }
        }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    var micros: UInt64 {
        let s = seconds
        return s <= 0 ? 0 : UInt64(s * 1e6)
    }
}
