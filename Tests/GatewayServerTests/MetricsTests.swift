import Foundation
import TestScratch
import XCTest

/// /metrics as a Prometheus scraper reads it: the client library's own parser takes the
/// whole page, and the request-duration histogram counts the requests answered.
final class MetricsTests: XCTestCase {
    func testTheRequestDurationHistogramParsesAndCountsRequests() throws {
        let node = try TestNode()
        defer { node.stop() }
        for _ in 0..<5 { XCTAssertEqual(node.curl("clinic", [node.baseURL + "/healthz"]).status, 200) }
        XCTAssertEqual(node.curl("clinic", [node.baseURL + "/v1/patients/nope/studies"]).status, 400)
        let scrape = node.curl("operator", [node.baseURL + "/metrics"])
        XCTAssertEqual(scrape.status, 200)
        let file = Scratch.path("metrics") + ".txt"
        try scrape.body.write(toFile: file, atomically: true, encoding: .utf8)
        let python = TestNode.repoRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { return XCTFail("run .ci/setup.sh first") }
        let checked = TestProcess.run(python, [TestNode.repoRoot + "/Tests/clients/check_metrics.py", file])
        XCTAssertEqual(checked.status, 0, checked.output)
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(checked.output.utf8)) as? [String: Any],
                                    checked.output)
        XCTAssertEqual(summary["type"] as? String, "histogram")
        XCTAssertEqual(summary["buckets"] as? Int, 22)
        XCTAssertEqual(summary["lastBound"] as? String, "+Inf")
        XCTAssertEqual(summary["cumulative"] as? Bool, true)
        XCTAssertEqual(summary["infEqualsCount"] as? Bool, true)
        XCTAssertEqual(summary["sumPositive"] as? Bool, true)
        // The six requests above; the scrape itself is counted once its answer is queued.
        XCTAssertEqual(summary["count"] as? Double, 6, checked.output)
    }
}
