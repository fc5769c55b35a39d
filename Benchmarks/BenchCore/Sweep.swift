/// The sweep's stages and its verdict.
public enum Sweep {
    /// Offered rates as fractions of the measured peak.
    public static let fractions = [0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5]

    /// The first stage where the server no longer keeps up: achieved < 0.95 × offered,
    /// p99 over the SLO, or more than 0.1 % errors.
    public static func saturatedStage(_ stages: [StageResult], sloP99Ms: Double) -> StageResult? {
        stages.first { s in
            guard let offered = s.offeredRate, offered > 0 else { return false }
            return s.achievedRate < 0.95 * offered || s.latencyMs.p99 > sloP99Ms || s.errorRate > 0.001
        }
    }

    public static func saturation(_ stages: [StageResult], sloP99Ms: Double) -> String? {
        saturatedStage(stages, sloP99Ms: sloP99Ms)
            .map { "\($0.name) (offered \(Int($0.offeredRate ?? 0))/s, achieved \(Int($0.achievedRate))/s, p99 \(fmt($0.latencyMs.p99)) ms)" }
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

    /// The node's own view of the run, from the difference in its request-duration
    /// histogram: for each quantile, the upper bound of the bucket it falls in (so "p99 ≤
    /// 25 ms"). Nil when the node exposes no such histogram or answered nothing.
    public static func serverLatency(_ delta: [String: Double],
                                     histogram: String = "gateway_http_request_duration_seconds") -> RunReport.ServerLatency? {
        let prefix = histogram + "_bucket{le=\""
        let buckets = delta.compactMap { key, count -> (bound: Double, count: Double)? in
            guard key.hasPrefix(prefix), key.hasSuffix("\"}") else { return nil }
            let bound = key.dropFirst(prefix.count).dropLast(2)
            return (bound == "+Inf" ? .infinity : Double(bound) ?? .nan, count)
        }.filter { !$0.bound.isNaN }.sorted { $0.bound < $1.bound }
        guard let total = buckets.last?.count, total > 0 else { return nil }
        func quantile(_ q: Double) -> Double {
            let bound = buckets.first { $0.count >= q * total }?.bound ?? .infinity
            return bound.isFinite ? bound * 1000 : -1
        }
        return RunReport.ServerLatency(requests: Int(total), p50: quantile(0.5), p99: quantile(0.99), p999: quantile(0.999))
    }
}
