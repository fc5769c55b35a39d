import ChildProcess
@testable import BenchCore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import GatewayNet
import Logging
import TestScratch
import XCTest

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A plain-HTTP server on loopback. With `stalls`, it answers nothing for the first
/// second of every five (what a GC pause or an fsync storm looks like from outside).
final class BenchTarget {
    let server: HTTPServer
    let url: String
    private let started = ContinuousClock.now

    init(stalls: Bool) throws {
        var router = Router()
        let origin = started
        if stalls {
            router.add("GET", "/healthz", .async { _ in
                let phase = (ContinuousClock.now - origin).seconds.truncatingRemainder(dividingBy: 5)
                if phase < 1 { try await Task.sleep(for: .milliseconds(Int((1 - phase) * 1000))) }
                return .json("{\"status\":\"ok\"}")
            })
        } else {
            router.add("GET", "/healthz", .inline { _ in .json("{\"status\":\"ok\"}") })
        }
        var config = HTTPServerConfiguration(listeners: [ListenerConfiguration(host: "127.0.0.1", port: 0, tls: nil)])
        config.loopCount = 1
        var logger = Logger(label: "bench-target")
        logger.logLevel = .critical
        server = HTTPServer(configuration: config, router: router, logger: logger)
        url = "http://127.0.0.1:\(try server.start()[0])"
    }

    /// Seconds until the next stall begins.
    var untilNextStall: Double { 5 - (ContinuousClock.now - started).seconds.truncatingRemainder(dividingBy: 5) }

    func target(connections: Int = 64) -> Target {
        var config = HTTPClientConfiguration()
        config.maxConnectionsPerOrigin = connections
        return Target(baseURL: url, client: HTTPClient(configuration: config), mix: ScenarioMix([(Scenarios.healthz, 1)]),
                      requestTimeout: .seconds(5))!
    }

    func stop() { server.shutdown(grace: .seconds(1)) }
}

final class HarnessTests: XCTestCase {
    /// The coordinated-omission check: the same stalling server seen open-loop (each
    /// latency from its intended send time) and closed-loop (from the actual send).
    func testOpenLoopShowsStallsThatClosedLoopHides() throws {
        let s = try BenchTarget(stalls: true)
        defer { s.stop() }
        Thread.sleep(forTimeInterval: s.untilNextStall - 0.5)
        let (open, _) = LoadRun.open(s.target(), name: "open", schedule: .constant(200), duration: 10, warmup: 0)
        let (closed, _) = LoadRun.closed(s.target(connections: 8), name: "closed", connections: 8, duration: 10, warmup: 0)
        XCTAssertGreaterThanOrEqual(open.latencyMs.p99, 500, "open loop must show the 1 s stalls in p99")
        XCTAssertLessThan(closed.latencyMs.p99, 500, "closed loop hides them: that is coordinated omission")
        XCTAssertGreaterThan(closed.latencyMs.max, 500, "the stall is there, only outside p99")
        XCTAssertFalse(open.coordinatedOmission)
        XCTAssertTrue(closed.coordinatedOmission)
    }

    func testAchievedRateTracksOfferedOnAFastServer() throws {
        let s = try BenchTarget(stalls: false)
        defer { s.stop() }
        let (r, _) = LoadRun.open(s.target(), name: "open", schedule: .constant(2000), duration: 3, warmup: 0.5)
        let offered = try XCTUnwrap(r.offeredRate)
        XCTAssertEqual(offered, 2000, accuracy: 40)
        XCTAssertEqual(r.achievedRate / offered, 1, accuracy: 0.02)
        XCTAssertEqual(r.errors.total, 0)
        XCTAssertEqual(r.droppedSends, 0)
    }

    func testSchedules() {
        XCTAssertEqual(Schedule.constant(100).sendTimes(duration: 2).count, 200)
        XCTAssertEqual(Schedule("step:100:400:4")!.sendTimes(duration: 4).count, 1000, accuracy: 4)
        XCTAssertEqual(Schedule("ramp:100:300")!.sendTimes(duration: 2).count, 400, accuracy: 4)
        XCTAssertNil(Schedule("step:1:2"))
        XCTAssertNil(Schedule("-5"))
    }

    func testSaturationPoint() {
        func stage(_ name: String, offered: Double, achieved: Double, p99: Double) -> StageResult {
            StageResult(name: name, mode: "open", coordinatedOmission: false, schedule: nil, offeredRate: offered,
                        achievedRate: achieved, durationSeconds: 1, requests: Int(achieved), errors: .init(), errorRate: 0,
                        lateSends: 0, droppedSends: 0,
                        latencyMs: .init(p50: 1, p90: 1, p99: p99, p999: p99, p9999: p99, max: p99, mean: 1),
                        server: nil, machine: nil, histogramFile: "")
        }
        let stages = [stage("a", offered: 100, achieved: 100, p99: 2), stage("b", offered: 200, achieved: 199, p99: 60),
                      stage("c", offered: 300, achieved: 250, p99: 2)]
        XCTAssertTrue(Sweep.saturation(stages, sloP99Ms: 50)?.hasPrefix("b ") ?? false)
        XCTAssertTrue(Sweep.saturation(stages, sloP99Ms: 100)?.hasPrefix("c ") ?? false)
        XCTAssertNil(Sweep.saturation(Array(stages.prefix(1)), sloP99Ms: 50))
        XCTAssertEqual(Sweep.saturatedStage(stages, sloP99Ms: 50)?.offeredRate, 200)
    }

    /// The node's quantiles come from its histogram's difference over the run: the bucket
    /// where each quantile's count is first reached, in ms; past the last bound, -1.
    func testServerLatencyFromTheHistogramDelta() {
        func key(_ le: String) -> String { "gateway_http_request_duration_seconds_bucket{le=\"\(le)\"}" }
        var delta: [String: Double] = [key("0.0005"): 10, key("0.001"): 50, key("0.005"): 99, key("0.1"): 100, key("+Inf"): 100,
                     "gateway_http_request_duration_seconds_count": 100, "gateway_http_requests_total": 100]
        XCTAssertEqual(PrometheusText.serverLatency(delta), .init(requests: 100, p50: 1, p99: 5, p999: 100))
        delta[key("+Inf")] = 1000
        XCTAssertEqual(PrometheusText.serverLatency(delta), .init(requests: 1000, p50: -1, p99: -1, p999: -1))
        XCTAssertNil(PrometheusText.serverLatency(["gateway_http_requests_total": 3]))
        XCTAssertNil(PrometheusText.serverLatency([key("+Inf"): 0]))
    }

    /// Steal comes from the aggregate `cpu` line; guest time is inside user time already.
    func testMachineTimesFromProcStat() throws {
        let before = try XCTUnwrap(CPUTimes(statLine: "cpu  100 0 50 800 20 0 30 0 7 0"))
        let after = try XCTUnwrap(CPUTimes(statLine: "cpu  160 0 70 860 20 0 40 30 9 0"))
        XCTAssertEqual(before, CPUTimes(statLine: "cpu 100 0 50 800 20 0 30 0"))
        let m = try XCTUnwrap(after.since(before))
        XCTAssertEqual(m.busyPercent, 50, accuracy: 1e-9, "user, system and softirq: 90 of 180 ticks")
        XCTAssertEqual(m.stealPercent, 100.0 / 6, accuracy: 1e-9, "30 of 180 ticks")
        XCTAssertNil(CPUTimes(statLine: "cpu0 1 2 3 4 5 6 7 8"), "a single CPU's line")
        XCTAssertNil(CPUTimes(statLine: "cpu 1 2 3"), "a kernel without steal")
        XCTAssertNil(before.since(before), "no time passed")
    }

    /// The summary says which stages the host took time from, and only those.
    func testTheSummaryFlagsStagesWithSteal() {
        func stage(_ name: String, steal: Double) -> StageResult {
            StageResult(name: name, mode: "closed", coordinatedOmission: true, schedule: nil, offeredRate: nil,
                        achievedRate: 100, durationSeconds: 1, requests: 100, errors: .init(), errorRate: 0,
                        lateSends: 0, droppedSends: 0, latencyMs: .init(p50: 1, p90: 1, p99: 1, p999: 1, p9999: 1, max: 1, mean: 1),
                        server: nil, machine: .init(busyPercent: 90, stealPercent: steal), histogramFile: "")
        }
        let environment = RunReport.Environment.current(targetURL: "https://127.0.0.1:1", arguments: ["test"])
        let calm = RunReport(target: "https://127.0.0.1:1", scenario: "healthz:1", mode: "closed", environment: environment,
                             stages: [stage("peak", steal: 0.4)], sloP99Ms: nil)
        XCTAssertFalse(calm.summary.contains("The host took"), calm.summary)
        let stolen = RunReport(target: "https://127.0.0.1:1", scenario: "healthz:1", mode: "closed", environment: environment,
                               stages: [stage("calm", steal: 0.4), stage("peak", steal: 12.5)], sloP99Ms: nil)
        XCTAssertTrue(stolen.summary.contains("The host took CPU time from this machine"), stolen.summary)
        XCTAssertTrue(stolen.summary.contains("peak (12.5 %)"), stolen.summary)
        XCTAssertFalse(stolen.summary.contains("calm ("), stolen.summary)
    }

    func testLoopbackGuard() {
        XCTAssertTrue(Loopback.isLoopback(host: "127.0.0.1:8443"))
        XCTAssertTrue(Loopback.isLoopback(host: "[::1]:8443"))
        XCTAssertTrue(Loopback.isLoopback(host: "localhost"))
        XCTAssertFalse(Loopback.isLoopback(host: "10.0.0.5:8443"))
        XCTAssertFalse(Loopback.isLoopback(host: "example.org"))
    }

    /// A real report, validated against the published schema by Python's jsonschema, and
    /// SVGs parsed as XML with one path per stage.
    func testReportValidatesAndPlotsAreWellFormed() throws {
        let s = try BenchTarget(stalls: false)
        defer { s.stop() }
        let t = s.target()
        let a = LoadRun.open(t, name: "sweep-010", schedule: .constant(300), duration: 1, warmup: 0.2,
                             sampler: ProcessSampler(pid: getpid()))
        let b = LoadRun.open(t, name: "sweep-020", schedule: .constant(600), duration: 1, warmup: 0.2)
        let c = LoadRun.closed(t, name: "peak", connections: 4, duration: 1, warmup: 0.2)
        var report = RunReport(target: s.url, scenario: "healthz:1", mode: "sweep",
                               environment: .current(targetURL: s.url, arguments: ["test"]),
                               stages: [a.0, b.0, c.0], sloP99Ms: 50)
        report.saturation = Sweep.saturation(report.stages, sloP99Ms: 50)
        report.saturationRate = 600
        report.serverMetricsDelta = ["gateway_http_requests_total": 42]
        report.serverLatencyMs = .init(requests: 42, p50: 1, p99: 5, p999: -1)
        let dir = Scratch.path("bench-report")
        try report.write(to: dir, histograms: [a, b, c].map { ($0.0.name, $0.1.histogram) })
        XCTAssertTrue(a.0.server.map { $0.rssKiBMax > 0 } ?? false, "sampled this process")
        XCTAssertTrue(c.0.machine.map { $0.busyPercent > 0 } ?? false, "sampled this machine")

        let venv = repoRoot + "/.venv/bin/python3"
        let validate = try ChildProcess.run(FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/python3", ["-c", """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1])); doc = json.load(open(sys.argv[2]))
            jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
            bad = dict(doc); bad["mode"] = "sideways"
            try:
                jsonschema.validate(bad, schema); sys.exit(3)
            except jsonschema.ValidationError:
                pass
            """, repoRoot + "/Benchmarks/results.schema.json", dir + "/results.json"])
        XCTAssertEqual(validate.status, 0, validate.stderr)

        XCTAssertEqual(try pathCount(dir + "/spectrum.svg"), 3, "one path per stage")
        XCTAssertEqual(try pathCount(dir + "/latency-throughput.svg"), 2, "p50 and p99")
        let hgrm = try String(contentsOfFile: dir + "/sweep-010.hgrm", encoding: .utf8)
        XCTAssertTrue(hgrm.contains("Percentile"), hgrm)
        let summary = try String(contentsOfFile: dir + "/summary.md", encoding: .utf8)
        XCTAssertTrue(summary.contains("coordinated omission"), summary)
    }

    private func pathCount(_ file: String) throws -> Int {
        final class Counter: NSObject, XMLParserDelegate {
            var paths = 0
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                        qualifiedName: String?, attributes: [String: String] = [:]) {
                if name == "path" { paths += 1 }
            }
        }
        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: file)))
        let counter = Counter()
        parser.delegate = counter
        XCTAssertTrue(parser.parse(), "\(file) is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "")")
        return counter.paths
    }
}
