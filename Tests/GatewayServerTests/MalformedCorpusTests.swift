import Foundation
import XCTest

/// More than 200 malformed requests from an independent client (Python's ssl and socket,
/// Tests/clients/malformed_corpus.py), each on its own connection: every one gets a 4xx
/// and the node keeps serving.
final class MalformedCorpusTests: XCTestCase {
    func testEveryMalformedRequestGetsA4xxAndTheNodeStaysUp() throws {
        let python = TestNode.repoRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { return XCTFail("run .ci/setup.sh first") }
        let node = try TestNode { $0.tokens.service = true }
        defer { node.stop() }
        let result = TestProcess.run(python, [TestNode.repoRoot + "/Tests/clients/malformed_corpus.py", "--port", String(node.port),
                                              "--ca", node.certs + "/ca.pem", "--cert", node.certs + "/hospital.pem",
                                              "--key", node.certs + "/hospital-key.pem"])
        XCTAssertEqual(result.status, 0, result.output)
        let count = Int(result.output.split(separator: " ").first ?? "") ?? 0
        XCTAssertGreaterThanOrEqual(count, 200, result.output)
    }
}
