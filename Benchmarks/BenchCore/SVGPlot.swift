import Foundation
import Histogram

/// Plots drawn by the harness itself, as plain SVG: no plotting stack to install.
/// Each series is one `<path>`, so a reader (or a test) can count them.
enum SVGPlot {
    private static let width = 760.0, height = 440.0
    private static let left = 70.0, right = 170.0, top = 40.0, bottom = 50.0
    private static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                                 "#7f7f7f", "#bcbd22", "#17becf"]

    /// Latency (log scale) against percentile, spaced as 1/(1-p) from 0 to 99.999 %: one
    /// path per stage.
    static func spectrum(_ series: [(name: String, histogram: Histogram<UInt64>)], title: String) -> String {
        let steps = 0...50
        let points = series.map { s in
            steps.map { k -> (Double, Double) in
                let p = 100 * (1 - pow(10, -Double(k) / 10))
                return (Double(k) / 10, max(0.001, Double(s.histogram.valueAtPercentile(p)) / 1000))
            }
        }
        let ys = points.flatMap { $0.map(\.1) }
        let (yMin, yMax) = logBounds(ys)
        var svg = header(title)
        svg += axes(xLabel: "percentile", yLabel: "latency (ms, log scale)")
        for (i, label) in ["0", "90", "99", "99.9", "99.99", "99.999"].enumerated() {
            let x = xPos(Double(i), 0, 5)
            svg += "<text x=\"\(f(x))\" y=\"\(f(height - bottom + 18))\" text-anchor=\"middle\">\(label)%</text>\n"
        }
        svg += logTicks(yMin, yMax)
        for (i, pts) in points.enumerated() {
            let d = pts.enumerated().map { j, p in
                "\(j == 0 ? "M" : "L")\(f(xPos(p.0, 0, 5))),\(f(yLog(p.1, yMin, yMax)))"
            }.joined(separator: " ")
            svg += path(d, color: colors[i % colors.count], name: series[i].name)
            svg += legend(i, series[i].name)
        }
        return svg + "</svg>\n"
    }

    /// p50 and p99 (log scale) against achieved throughput, one point per open-loop stage
    /// (a closed-loop peak is not a point of the same curve: its latency omits queueing).
    static func latencyVsThroughput(_ all: [StageResult], title: String) -> String {
        let stages = all.filter { !$0.coordinatedOmission }
        let xs = stages.map(\.achievedRate)
        let xMax = max(1, (xs.max() ?? 1) * 1.05)
        let (yMin, yMax) = logBounds(stages.flatMap { [$0.latencyMs.p50, $0.latencyMs.p99] }.map { max($0, 0.001) })
        var svg = header(title)
        svg += axes(xLabel: "achieved requests/s", yLabel: "latency (ms, log scale)")
        for i in 0...4 {
            let v = xMax * Double(i) / 4
            svg += "<text x=\"\(f(xPos(v, 0, xMax)))\" y=\"\(f(height - bottom + 18))\" text-anchor=\"middle\">\(Int(v))</text>\n"
        }
        svg += logTicks(yMin, yMax)
        for (i, (name, value)) in [("p50", \StageResult.latencyMs.p50), ("p99", \StageResult.latencyMs.p99)].enumerated() {
            let pts = stages.map { (xPos($0.achievedRate, 0, xMax), yLog(max($0[keyPath: value], 0.001), yMin, yMax)) }
            let d = pts.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(f($0.element.0)),\(f($0.element.1))" }.joined(separator: " ")
            svg += path(d, color: colors[i], name: name)
            for p in pts { svg += "<circle cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"3\" fill=\"\(colors[i])\"/>\n" }
            svg += legend(i, name)
        }
        return svg + "</svg>\n"
    }

    private static func header(_ title: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            + "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
            + "<text x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
    }

    private static func axes(xLabel: String, yLabel: String) -> String {
        let x0 = left, x1 = width - right, y0 = height - bottom, y1 = top
        return "<g stroke=\"#333\" fill=\"none\"><line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x1))\" y2=\"\(f(y0))\"/>"
            + "<line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x0))\" y2=\"\(f(y1))\"/></g>\n"
            + "<text x=\"\(f((x0 + x1) / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
            + "<text x=\"16\" y=\"\(f((y0 + y1) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(f((y0 + y1) / 2)))\">\(escape(yLabel))</text>\n"
    }

    private static func logTicks(_ yMin: Double, _ yMax: Double) -> String {
        var out = ""
        var v = yMin
        while v <= yMax * 1.0001 {
            let y = yLog(v, yMin, yMax)
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(width - right))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(v < 1 ? String(format: "%g", v) : String(Int(v)))</text>\n"
            v *= 10
        }
        return out
    }

    private static func path(_ d: String, color: String, name: String) -> String {
        "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"><title>\(escape(name))</title></path>\n"
    }

    private static func legend(_ i: Int, _ name: String) -> String {
        let y = top + 10 + Double(i) * 18, x = width - right + 14
        return "<line x1=\"\(f(x))\" y1=\"\(f(y))\" x2=\"\(f(x + 18))\" y2=\"\(f(y))\" stroke=\"\(colors[i % colors.count])\" stroke-width=\"3\"/>"
            + "<text x=\"\(f(x + 24))\" y=\"\(f(y + 4))\">\(escape(name))</text>\n"
    }

    private static func logBounds(_ values: [Double]) -> (Double, Double) {
        let lo = values.min() ?? 0.01, hi = values.max() ?? 1
        return (pow(10, floor(log10(max(lo, 0.001)))), pow(10, ceil(log10(max(hi, lo * 10, 0.01)))))
    }

    private static func xPos(_ v: Double, _ lo: Double, _ hi: Double) -> Double {
        left + (width - left - right) * (v - lo) / (hi - lo)
    }

    private static func yLog(_ v: Double, _ lo: Double, _ hi: Double) -> Double {
        (height - bottom) - (height - bottom - top) * (log10(v) - log10(lo)) / (log10(hi) - log10(lo))
    }

    private static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
