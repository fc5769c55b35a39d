import Foundation
import XCTest

/// sslyze's check against Mozilla's "modern" TLS configuration, with a client
/// certificate, on a node with development certificates. The one deviation allowed is the
/// development leaves' 397-day lifespan (Protocols/SECURITY.md); any other fails the test.
final class TLSScanTests: XCTestCase {
    func testSslyzeModernFindsOnlyTheDevelopmentCertificateLifespan() throws {
        let python = TestNode.repoRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { return XCTFail("run .ci/setup.sh first") }
        let node = try TestNode()
        defer { node.stop() }
        let scan = TestProcess.run(python, ["-m", "sslyze", "--cert", node.certs + "/clinic.pem", "--key", node.certs + "/clinic-key.pem",
                                            "--certinfo_ca_file", node.certs + "/ca.pem",
                                            "--mozilla_config", "modern", "localhost:\(node.port)"])
        guard let compliance = scan.output.range(of: "COMPLIANCE AGAINST TLS CONFIGURATION") else {
            return XCTFail("sslyze did not reach its compliance check:\n\(scan.output.suffix(2000))")
        }
        let report = scan.output[compliance.upperBound...]
        let deviations = report.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("* ") }
        XCTAssertEqual(deviations.count, 1, deviations.joined(separator: "\n"))
        XCTAssertTrue(deviations.first?.hasPrefix("* maximum_certificate_lifespan:") == true, deviations.joined(separator: "\n"))
        XCTAssertTrue(scan.output.contains("TLS_AES_256_GCM_SHA384"), "TLS 1.3 suites offered")
        XCTAssertTrue(scan.output.contains("OK - Compression disabled"), String(report.prefix(500)))
    }
}
