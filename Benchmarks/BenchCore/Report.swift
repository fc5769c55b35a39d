import ChildProcess
import Foundation
import Histogram

/// A run's report: what ran, where, and what each stage measured.
public struct RunReport: Codable, Sendable {
    public static let schemaVersion = 1
    /// Steal from which a stage's figures are flagged in the summary (MachineSampler).
    static let stealWarningPercent = 3.0

    public struct Environment: Codable, Sendable {
        public var gitCommit: String
        public var build: String
        public var swiftVersion: String
        public var cpuModel: String
        public var cores: Int
        public var kernel: String
        /// True when the target is on this host (loopback): client and server then share CPUs.
        public var sameHost: Bool
        public var arguments: [String]
        public var startedAt: String
    }

    public struct Comparison: Codable, Sendable {
        public var reference: String
        public var achievedRateRatio: Double
        public var p99Ratio: Double

        public init(reference: String, achievedRateRatio: Double, p99Ratio: Double) {
            self.reference = reference
            self.achievedRateRatio = achievedRateRatio
            self.p99Ratio = p99Ratio
        }
    }

    /// The node's own request durations over the run (`PrometheusText.serverLatency`): each
    /// figure is the upper bound, in ms, of the bucket its quantile fell in; -1 when it fell
    /// past the last finite bound.
    public struct ServerLatency: Codable, Sendable, Equatable {
        public var requests: Int
        public var p50: Double
        public var p99: Double
        public var p999: Double
    }

    public var schemaVersion = RunReport.schemaVersion
    public var tool = "gateway-bench"
    public var target: String
    public var scenario: String
    public var mode: String
    public var environment: Environment
    public var stages: [StageResult]
    /// Sweeps: the first stage where achieved < 0.95 × offered, p99 > SLO, or errors > 0.1 %.
    public var saturation: String?
    /// That stage's offered rate, for scripts that load a node at a fraction of its
    /// saturation (soak-bench.sh).
    public var saturationRate: Double?
    public var sloP99Ms: Double?
    /// Differences in the server's /metrics samples from before to after the run.
    public var serverMetricsDelta: [String: Double]?
    public var serverLatencyMs: ServerLatency?
    public var reference: [StageResult]?
    public var comparison: [Comparison]?

    public init(target: String, scenario: String, mode: String, environment: Environment, stages: [StageResult],
                saturation: String? = nil, sloP99Ms: Double? = nil) {
        self.target = target
        self.scenario = scenario
        self.mode = mode
        self.environment = environment
        self.stages = stages
        self.saturation = saturation
        self.sloP99Ms = sloP99Ms
    }

    /// Writes results.json, summary.md, one .hgrm per stage and the SVG plots into `dir`.
    public func write(to dir: String, histograms: [(name: String, histogram: Histogram<UInt64>)],
                      referenceHistograms: [(name: String, histogram: Histogram<UInt64>)] = []) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: dir + "/results.json"))
        try summary.write(toFile: dir + "/summary.md", atomically: true, encoding: .utf8)
        for (name, h) in histograms { try h.hgrm.write(toFile: "\(dir)/\(name).hgrm", atomically: true, encoding: .utf8) }
        for (name, h) in referenceHistograms {
            try h.hgrm.write(toFile: "\(dir)/reference-\(name).hgrm", atomically: true, encoding: .utf8)
        }
        try SVGPlot.spectrum(histograms + referenceHistograms.map { ("reference-\($0.name)", $0.histogram) }, title: "Latency by percentile — \(scenario) (\(mode))")
            .write(toFile: dir + "/spectrum.svg", atomically: true, encoding: .utf8)
        if mode == "sweep" {
            try SVGPlot.latencyVsThroughput(stages, title: "Latency vs throughput — \(scenario)")
                .write(toFile: dir + "/latency-throughput.svg", atomically: true, encoding: .utf8)
        }
    }

    public var summary: String {
        var s = "# gateway-bench: \(scenario), \(mode)\n\n"
        s += "Target `\(target)`, commit `\(environment.gitCommit)`, \(environment.build) build, \(environment.cpuModel), "
        s += "\(environment.cores) cores, kernel \(environment.kernel), same host: \(environment.sameHost).\n\n"
        if stages.contains(where: \.coordinatedOmission) {
            s += "Closed-loop stages are subject to coordinated omission: their latencies understate stalls; "
            s += "read them for peak throughput only.\n\n"
        }
        s += "| stage | mode | offered/s | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | p99.99 ms | max ms | errors | late | dropped | server CPU % | server RSS KiB | machine busy % | steal % |\n"
        s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for r in stages {
            let l = r.latencyMs
            s += "| \(r.name) | \(r.mode) | \(r.offeredRate.map { fmt($0, 0) } ?? "—") | \(fmt(r.achievedRate, 0)) | "
            s += "\(fmt(l.p50)) | \(fmt(l.p90)) | \(fmt(l.p99)) | \(fmt(l.p999)) | \(fmt(l.p9999)) | \(fmt(l.max)) | "
            s += "\(r.errors.total) | \(r.lateSends) | \(r.droppedSends) | "
            s += "\(r.server.map { fmt($0.cpuPercent, 0) } ?? "—") | \(r.server.map { "\($0.rssKiBMax)" } ?? "—") | "
            s += "\(r.machine.map { fmt($0.busyPercent, 0) } ?? "—") | \(r.machine.map { fmt($0.stealPercent, 1) } ?? "—") |\n"
        }
        let stolen = stages.filter { ($0.machine?.stealPercent ?? 0) >= Self.stealWarningPercent }
        if !stolen.isEmpty {
            s += "\n**The host took CPU time from this machine** (steal ≥ \(fmt(Self.stealWarningPercent, 0)) %) in "
            s += stolen.map { "\($0.name) (\(fmt($0.machine?.stealPercent ?? 0, 1)) %)" }.joined(separator: ", ")
            s += ": their rates understate the server, and their tails may be the host's pauses. Run them again.\n"
        }
        if let l = serverLatencyMs {
            s += "\nThe node's own durations (its /metrics histogram, bucket upper bounds) over \(l.requests) requests: "
            s += "p50 ≤ \(fmt(l.p50)) ms, p99 ≤ \(fmt(l.p99)) ms, p99.9 ≤ \(fmt(l.p999)) ms.\n"
        }
        if let saturation { s += "\nSaturation: **\(saturation)** (SLO p99 ≤ \(fmt(sloP99Ms ?? 0)) ms).\n" }
        if mode == "sweep", saturation == nil { s += "\nNo stage saturated.\n" }
        if let comparison {
            s += "\n| stage | achieved ratio (target/reference) | p99 ratio |\n|---|---|---|\n"
            for c in comparison { s += "| \(c.reference) | \(fmt(c.achievedRateRatio)) | \(fmt(c.p99Ratio)) |\n" }
        }
        return s
    }
}

func fmt(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }

extension RunReport.Environment {
    /// Facts about this machine and build, read at run time.
    public static func current(targetURL: String, arguments: [String]) -> Self {
        var uts = utsname()
        uname(&uts)
        let kernel = withUnsafeBytes(of: uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown"
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        let host = targetURL.split(separator: "/").dropFirst(1).first.map(String.init) ?? ""
        return .init(gitCommit: command("git", ["rev-parse", "--short=12", "HEAD"]) ?? "unknown", build: build,
                     swiftVersion: command("swift", ["--version"])?.split(separator: "\n").first.map(String.init) ?? "unknown",
                     cpuModel: cpu, cores: ProcessInfo.processInfo.activeProcessorCount, kernel: kernel,
                     sameHost: Loopback.isLoopback(host: host), arguments: arguments,
                     startedAt: ISO8601DateFormatter().string(from: Date()))
    }

    /// A tool's standard output, or nil (ChildProcess: Foundation's Process crashed here).
    private static func command(_ tool: String, _ args: [String]) -> String? {
        guard let r = try? ChildProcess.run("/usr/bin/env", [tool] + args), r.status == 0 else { return nil }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Only loopback targets unless the operator says otherwise: a load test aimed at the
/// wrong address is an attack.
public enum Loopback {
    public static func isLoopback(host: String) -> Bool {
        var h = host
        if h.hasPrefix("[") { h = String(h.dropFirst().prefix { $0 != "]" }) } else if let c = h.lastIndex(of: ":") {
            h = String(h[..<c])
        }
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }
}
