import Foundation
import GatewayNet
import XCTest

/// The server's own request durations: each answered request lands in the bucket of the
/// time it was held, and the exposition is a Prometheus histogram.
final class RequestDurationsTests: XCTestCase {
    func testEachRequestIsCountedInTheBucketOfItsDuration() throws {
        let s = try TestServer()
        defer { s.stop() }
        for _ in 0..<3 {
            XCTAssertEqual(runTool("curl", ["-sS", "http://127.0.0.1:\(s.plainPort)/hello"]).status, 0)
        }
        XCTAssertEqual(runTool("curl", ["-sS", "http://127.0.0.1:\(s.plainPort)/slow"]).stdout, "{\"slow\":true}")
        let snapshot = s.server.statistics.durations.snapshot
        let bound = { (seconds: Double) in snapshot.cumulative[RequestDurations.bounds.firstIndex(of: seconds)!] }
        XCTAssertEqual(snapshot.count, 4)
        XCTAssertEqual(bound(0.5), 3, "the three quick requests, not the 600 ms one")
        XCTAssertEqual(bound(1), 4)
        XCTAssertEqual(snapshot.cumulative.count, RequestDurations.bounds.count + 1)
        XCTAssertGreaterThanOrEqual(snapshot.sumSeconds, 0.6)
        XCTAssertLessThan(snapshot.sumSeconds, 5)
    }

    func testTheExpositionIsACumulativeHistogram() {
        let counts = [1, 2] + Array(repeating: 3, count: RequestDurations.bounds.count - 1)
        let text = RequestDurations.exposition(.init(cumulative: counts, sumSeconds: 1.25), name: "d", help: "Held.")
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "# HELP d Held.")
        XCTAssertEqual(lines[1], "# TYPE d histogram")
        XCTAssertEqual(lines[2], "d_bucket{le=\"0.0005\"} 1")
        XCTAssertEqual(lines[3], "d_bucket{le=\"0.001\"} 2")
        XCTAssertEqual(lines[lines.count - 3], "d_bucket{le=\"+Inf\"} 3")
        XCTAssertEqual(lines[lines.count - 2], "d_sum 1.25")
        XCTAssertEqual(lines[lines.count - 1], "d_count 3")
    }
}
