/// The sweep's stages and its verdict.
public enum Sweep {
    /// Offered rates as fractions of the measured peak.
    public static let fractions = [0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5]

    /// The first stage where the server no longer keeps up: achieved < 0.95 × offered,
    /// p99 over the SLO, or more than 0.1 % errors.
    public static func saturation(_ stages: [StageResult], sloP99Ms: Double) -> String? {
        stages.first { s in
            guard let offered = s.offeredRate, offered > 0 else { return false }
            return s.achievedRate < 0.95 * offered || s.latencyMs.p99 > sloP99Ms || s.errorRate > 0.001
        }.map { "\($0.name) (offered \(Int($0.offeredRate ?? 0))/s, achieved \(Int($0.achievedRate))/s, p99 \(fmt($0.latencyMs.p99)) ms)" }
    }
}

/// Prometheus text samples (`name{labels} value`), for the before/after difference a
/// report carries.
public enum PrometheusText {
    public static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = v
        }
        return out
    }

    public static func delta(before: [String: Double], after: [String: Double]) -> [String: Double] {
        after.reduce(into: [:]) { out, kv in out[kv.key] = kv.value - (before[kv.key] ?? 0) }
    }
}
