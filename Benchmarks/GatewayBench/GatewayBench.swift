import ArgumentParser
import BenchCore
import CommandExit
import Foundation
import GatewayNet

@main
struct GatewayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway-bench",
        abstract: "Load benchmarks for ImagingGateway nodes, with latency measured honestly.",
        subcommands: [Run.self, Seed.self, ReadCyclesCommand.self, ListScenarios.self], defaultSubcommand: Run.self)

    /// Leaves by `_exit` once the command is done (CommandExit says why): its HTTP client
    /// loops may still be closing TLS connections when a run ends.
    static func main() async { await runThenExit() }
}

struct ListScenarios: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scenarios", abstract: "List the scenarios.")
    func run() { for s in Scenarios.all { print("\(s.name)\t\(s.summary)") } }
}

struct Seed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a node with deterministic synthetic studies, as fast as it takes them.",
        discussion: "Uses a node certificate (role node may upload for every storage unit). Studies [from, from+count).")

    @Argument(help: "Base URL of the node.") var url: String
    @Option(help: "Studies to upload.") var count = 1_000_000
    @Option(help: "First study number (extend a node: --from 1000000).") var from = 0
    @Option(help: "Records per batch.") var batch = 1000
    @Option(help: "Uploads in flight.") var connections = 4
    @Option(help: "CA bundle.") var ca: String
    @Option(help: "Client certificate (role node).") var cert: String
    @Option(help: "Client key.") var key: String
    @Flag(help: "Allow a target that is not on loopback.") var allowRemote = false

    func run() throws {
        let host = url.split(separator: "/").dropFirst(1).first.map(String.init) ?? ""
        guard allowRemote || Loopback.isLoopback(host: host) else {
            throw ValidationError("\(url) is not on loopback; pass --allow-remote to load another host")
        }
        guard let endpoint = HTTPEndpoint(url) else { throw ValidationError("\(url) is not an http(s) URL") }
        let tls = try TLSContext(configuration: TLSConfiguration(certificateChainPath: cert, privateKeyPath: key,
                                                                 trustedCAPath: ca), server: false)
        var config = HTTPClientConfiguration(tls: tls)
        config.acceptGzip = false
        let client = HTTPClient(configuration: config)
        let total = count
        let outcome = Seeder.run(client: client, endpoint: endpoint, from: from, count: count, batchSize: batch,
                                 connections: connections) { done, seconds in
            let fraction = Double(done) / Double(max(total, 1))
            let bar = String(repeating: "#", count: Int(fraction * 30)) + String(repeating: ".", count: 30 - Int(fraction * 30))
            let rate = seconds > 0 ? Double(done) / seconds : 0
            let eta = rate > 0 ? Double(total - done) / rate : 0
            FileHandle.standardError.write(Data(String(format: "\r[%@] %d/%d studies  %.0f/s  ETA %.0f s ", bar, done, total, rate, eta).utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        print(String(format: "seeded %d studies in %.1f s: %.0f studies/s; %d batches failed", outcome.stored, outcome.seconds,
                     outcome.rate, outcome.failedBatches))
        if outcome.failedBatches > 0 { throw ExitCode(1) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark and write results.json, summary.md, .hgrm files and SVG plots.",
        discussion: """
        open:   constant rate (--rate) or --schedule step:FROM:TO:STEPS | ramp:FROM:TO; latency from each \
        request's intended send time; late and dropped sends counted.
        closed: --connections N, each sending when the last answer came; subject to coordinated omission, \
        for peak throughput only.
        sweep:  open-loop stages from 10 % to 150 % of a peak (--peak, or measured closed first); reports \
        the saturation point.
        """)

    @Argument(help: "Base URL of the target, e.g. https://127.0.0.1:8443") var url: String
    @Option(help: "open, closed or sweep.") var mode = "open"
    @Option(help: "Scenario mix, e.g. healthz or healthz:3,other:1.") var scenario = "healthz"
    @Option(help: "Open loop: requests per second.") var rate: Double = 1000
    @Option(help: "Open loop: step:FROM:TO:STEPS or ramp:FROM:TO (overrides --rate).") var schedule: String?
    @Option(help: "Closed loop and sweep peak: connections.") var connections = 64
    @Option(help: "Seconds measured per stage (after warm-up).") var duration: Double = 10
    @Option(help: "Warm-up seconds per stage, not measured.") var warmup: Double = 2
    @Option(help: "Sweep: peak requests/s (measured closed-loop when absent).") var peak: Double?
    @Option(help: "Sweep: p99 SLO in ms.") var sloMs: Double = 50
    @Option(help: "Request deadline in seconds.") var timeout: Double = 10
    @Option(help: "Open loop: most requests waiting at once; beyond it sends are dropped.") var maxInFlight = 20_000
    @Option(help: "CA bundle for https targets.") var ca: String?
    @Option(help: "Client certificate (mTLS).") var cert: String?
    @Option(help: "Client key (mTLS).") var key: String?
    @Option(help: "Client event loops.") var loops = 1
    @Option(help: "Sample this server process's CPU and RSS.") var serverPid: Int32?
    @Option(help: "Scrape this Prometheus URL before and after.") var metricsURL: String?
    @Option(help: "Also run against this reference URL and print ratios.") var compare: String?
    @Option(help: "Output directory.") var out = "Benchmarks/out/run"
    @Flag(help: "Allow a target that is not on loopback.") var allowRemote = false

    func validate() throws {
        for u in [url] + (compare.map { [$0] } ?? []) {
            let host = u.split(separator: "/").dropFirst(1).first.map(String.init) ?? ""
            if !allowRemote && !Loopback.isLoopback(host: host) {
                throw ValidationError("\(u) is not on loopback; pass --allow-remote to load another host")
            }
        }
        guard ["open", "closed", "sweep"].contains(mode) else { throw ValidationError("--mode is open, closed or sweep") }
        if let schedule, Schedule(schedule) == nil { throw ValidationError("bad --schedule '\(schedule)'") }
        guard duration > 0, duration <= 3600, warmup >= 0 else { throw ValidationError("--duration must be 0–3600 s") }
    }

    func run() throws {
        let mix = try ScenarioMix.parse(scenario)
        var tlsContext: TLSContext?
        if let ca {
            tlsContext = try TLSContext(configuration: TLSConfiguration(certificateChainPath: cert, privateKeyPath: key,
                                                                        trustedCAPath: ca), server: false)
        }
        let sampler = serverPid.map { ProcessSampler(pid: $0) }
        let before = metricsURL.flatMap { scrape($0, tls: tlsContext) }
        let (stages, histograms) = try runStages(at: url, mix: mix, tls: tlsContext, sampler: sampler)
        var report = RunReport(target: url, scenario: mix.name, mode: mode,
                               environment: .current(targetURL: url, arguments: CommandLine.arguments),
                               stages: stages, saturation: nil, sloP99Ms: mode == "sweep" ? sloMs : nil)
        if mode == "sweep" {
            report.saturation = Sweep.saturation(stages, sloP99Ms: sloMs)
            report.saturationRate = Sweep.saturatedStage(stages, sloP99Ms: sloMs)?.offeredRate
        }
        if let metricsURL, let before, let after = scrape(metricsURL, tls: tlsContext) {
            report.serverMetricsDelta = PrometheusText.delta(before: PrometheusText.samples(before),
                                                             after: PrometheusText.samples(after))
            report.serverLatencyMs = report.serverMetricsDelta.flatMap { PrometheusText.serverLatency($0) }
        }
        var referenceHistograms: [(name: String, histogram: Histogram)] = []
        if let compare {
            let (refStages, refHistograms) = try runStages(at: compare, mix: mix, tls: tlsContext, sampler: nil)
            report.reference = refStages
            referenceHistograms = refHistograms
            report.comparison = zip(stages, refStages).map {
                .init(reference: $0.name, achievedRateRatio: $0.achievedRate / max($1.achievedRate, 1e-9),
                      p99Ratio: $0.latencyMs.p99 / max($1.latencyMs.p99, 1e-9))
            }
        }
        try report.write(to: out, histograms: histograms, referenceHistograms: referenceHistograms)
        print(report.summary)
        print("written to \(out)/")
    }

    typealias Histogram = BenchCore.LatencyHistogram

    private func runStages(at base: String, mix: ScenarioMix, tls: TLSContext?, sampler: ProcessSampler?) throws
        -> ([StageResult], [(name: String, histogram: Histogram)]) {
        var config = HTTPClientConfiguration(tls: tls)
        config.maxConnectionsPerOrigin = max(connections, 64)
        config.acceptGzip = false
        let client = HTTPClient(configuration: config, group: EventLoopGroup(count: loops))
        guard let target = Target(baseURL: base, client: client, mix: mix, requestTimeout: .milliseconds(Int(timeout * 1000))) else {
            throw ValidationError("\(base) is not an http(s) URL")
        }
        var results: [StageResult] = []
        var histograms: [(name: String, histogram: Histogram)] = []
        func keep(_ r: (StageResult, Recorder)) {
            results.append(r.0)
            histograms.append((r.0.name, r.1.histogram))
            FileHandle.standardError.write(Data("\(r.0.name): \(Int(r.0.achievedRate))/s p99 \(r.0.latencyMs.p99) ms\n".utf8))
        }
        switch mode {
        case "closed":
            keep(LoadRun.closed(target, name: "closed-\(connections)c", connections: connections, duration: duration,
                                warmup: warmup, sampler: sampler))
        case "open":
            let s = schedule.flatMap(Schedule.init) ?? .constant(rate)
            keep(LoadRun.open(target, name: "open", schedule: s, duration: duration, warmup: warmup,
                              maxInFlight: maxInFlight, sampler: sampler))
        default:
            var peakRate = peak ?? 0
            if peak == nil {
                let measured = LoadRun.closed(target, name: "peak-closed-\(connections)c", connections: connections,
                                              duration: duration, warmup: warmup, sampler: sampler)
                keep(measured)
                peakRate = measured.0.achievedRate
            }
            for f in Sweep.fractions {
                keep(LoadRun.open(target, name: String(format: "sweep-%03d", Int(f * 100)), schedule: .constant(peakRate * f),
                                  duration: duration, warmup: warmup, maxInFlight: maxInFlight, sampler: sampler))
            }
        }
        return (results, histograms)
    }

    private func scrape(_ url: String, tls: TLSContext?) -> String? {
        var config = HTTPClientConfiguration(tls: tls)
        config.requestTimeout = .seconds(5)
        let client = HTTPClient(configuration: config)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var text: String?
        client.execute(HTTPRequest(method: "GET", target: "/"), url: url) { result in
            if case .success(let r) = result, r.status == 200 { text = String(decoding: r.body, as: UTF8.self) }
            done.signal()
        }
        done.wait()
        return text
    }
}
