/// How fast an open-loop stage offers requests over its duration.
public enum Schedule: Sendable, Equatable, CustomStringConvertible {
    case constant(Double)
    /// From `from` to `to` in `steps` equal steps of equal length.
    case step(from: Double, to: Double, steps: Int)
    /// Linearly from `from` to `to`.
    case ramp(from: Double, to: Double)

    /// Parses `5000`, `step:1000:5000:5`, `ramp:1000:5000`.
    public init?(_ text: String) {
        let p = text.split(separator: ":").map(String.init)
        switch (p.first, p.count) {
        case (_, 1): guard let r = Double(p[0]), r > 0 else { return nil }; self = .constant(r)
        case ("step", 4):
            guard let a = Double(p[1]), let b = Double(p[2]), let n = Int(p[3]), a > 0, b > 0, n > 0 else { return nil }
            self = .step(from: a, to: b, steps: n)
        case ("ramp", 3):
            guard let a = Double(p[1]), let b = Double(p[2]), a > 0, b > 0 else { return nil }
            self = .ramp(from: a, to: b)
        default: return nil
        }
    }

    /// Requests per second at `t` seconds into a stage of `duration` seconds.
    public func rate(at t: Double, duration: Double) -> Double {
        switch self {
        case .constant(let r): return r
        case let .step(a, b, n):
            let i = min(n - 1, Int(t / (duration / Double(n))))
            return n == 1 ? a : a + (b - a) * Double(i) / Double(n - 1)
        case let .ramp(a, b): return a + (b - a) * min(1, max(0, t / duration))
        }
    }

    /// The intended send times (seconds from the stage's start) of every request.
    public func sendTimes(duration: Double) -> [Double] {
        var times: [Double] = []
        var t = 0.0
        while t < duration {
            times.append(t)
            t += 1 / rate(at: t, duration: duration)
        }
        return times
    }

    public var description: String {
        switch self {
        case .constant(let r): return "\(Int(r))/s"
        case let .step(a, b, n): return "step \(Int(a))→\(Int(b))/s in \(n)"
        case let .ramp(a, b): return "ramp \(Int(a))→\(Int(b))/s"
        }
    }
}
