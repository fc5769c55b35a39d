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
        let inFlight = Atomic<Int>(0)
        let times = schedule.sendTimes(duration: warmup + duration)
        let clock = ContinuousClock()
        let start = clock.now + .milliseconds(20)
        var late = 0, dropped = 0, offeredMeasured = 0
        _ = gw_set_timer_slack(1_000)
        sampler?.begin()
        let machine = MachineSampler()
        for (n, t) in times.enumerated() {
            let intended = start + .seconds(t)
            waitUntil(intended, clock)
            let measured = t >= warmup
            if measured {
                offeredMeasured += 1
                if (clock.now - intended).seconds > lateThreshold { late += 1 }
            }
            guard inFlight.load(ordering: .relaxed) < maxInFlight else {
                if measured { dropped += 1 }
                continue
            }
            inFlight.add(1, ordering: .relaxed)
            var (request, path) = target.mix.request(n)
            request.target = path
            target.client.execute(request, at: target.endpoint, deadline: intended + target.requestTimeout) { outcome in
                let elapsed = clock.now - intended
                inFlight.subtract(1, ordering: .relaxed)
                if measured { recorder.record(micros: elapsed.micros, outcome: outcome) }
            }
        }
        let sent = clock.now
        while inFlight.load(ordering: .relaxed) > 0, clock.now - sent < target.requestTimeout + .seconds(1) {
            Thread.sleep(forTimeInterval: 0.002)
        }
        let server = sampler?.end()
        let snap = recorder.snapshot
        let achieved = Double(snap.completed - snap.errors.total) / duration
        let result = StageResult(
            name: name, mode: "open", coordinatedOmission: false, schedule: schedule.description,
            offeredRate: Double(offeredMeasured) / duration, achievedRate: achieved, durationSeconds: duration,
            requests: snap.completed, errors: snap.errors,
            errorRate: snap.completed == 0 ? 0 : Double(snap.errors.total) / Double(snap.completed),
            lateSends: late, droppedSends: dropped, latencyMs: snap.histogram.latencyMs, server: server,
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

/// Never early: sleeps until the send time, with the thread's timer slack cut to 1 µs
/// (`open` sets it) so that a sleep ends within a few µs of the time asked, and yields
/// the core only for the last 20 µs. It used to yield for the last 300 µs: above about
/// 3 300 requests a second every gap is shorter than that, so the sending thread spun on
/// a whole core the node under test needed, and an open-loop run at 70 % of the
/// closed-loop peak fell behind within a minute (the soak, session 8).
private func waitUntil(_ instant: ContinuousClock.Instant, _ clock: ContinuousClock) {
    while true {
        let ahead = (instant - clock.now).seconds
        if ahead <= 0 { return }
        if ahead > 0.00002 { Thread.sleep(forTimeInterval: ahead - 0.00001) } else { sched_yield() }
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
