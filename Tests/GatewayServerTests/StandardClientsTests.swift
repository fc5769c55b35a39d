import ChildProcess
import Foundation
import GatewayServer
import Logging
import XCTest

/// QIDO-RS and FHIR answers read by independent clients: Python's dicomweb-client (into
/// pydicom datasets) and fhir.resources (R4B models), from the venv .ci/setup.sh makes.
final class StandardClientsTests: XCTestCase {
    func testDicomwebClientAndFHIRResourcesReadOurAnswers() throws {
        let root = TestNode.repoRoot
        let python = root + "/.venv/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            return XCTFail("run .ci/setup.sh first: it makes .venv with the test clients")
        }
        let node = try TestNode()
        defer { node.stop() }
        let (port, certs) = (node.port, node.certs)
        let token = "v1:" + String(repeating: "Q", count: 42) + "E"
        let study = "1.2.156.112605.66.20241122.1"
        let series = "1.2.156.112605.66.20241122.1.1"
        let storage = "91610000MA6TG0001A"
        let first = """
            {"patientToken":"\(token)","studyInstanceUID":"\(study)","accessionNumber":"CT001","studyDate":"20241122",\
            "studyTime":"143015","timezoneOffset":"+0800","modalitiesInStudy":["CT","SR"],"studyDescription":"胸部CT平扫",\
            "numberOfStudyRelatedInstances":412,"storageUnit":"\(storage)","retrieveURL":"https://pacs.example/dicomweb",\
            "region":"610100","series":[{"seriesInstanceUID":"\(series)","modality":"CT","seriesNumber":2,\
            "numberOfSeriesRelatedInstances":410},{"seriesInstanceUID":"\(series).2","modality":"SR","seriesNumber":3}]}
            """
        let second = """
            {"patientToken":"\(token)","studyInstanceUID":"1.2.156.112605.66.20230301.9","studyDate":"20230301",\
            "modalitiesInStudy":["MR"],"storageUnit":"\(storage)","retrieveURL":"https://pacs.example/dicomweb","region":"610100"}
            """
        let upload = try run("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certs + "/ca.pem",
                                               "--cert", certs + "/hospital.pem", "--key", certs + "/hospital-key.pem",
                                               "-H", "Content-Type: application/x-ndjson", "--data-binary", first + "\n" + second,
                                               "https://localhost:\(port)/v1/index/studies"])
        XCTAssertEqual(upload.out, "200", upload.err)
        let check = try run(python, [root + "/Tests/clients/check_qido_fhir.py", "--base", "https://localhost:\(port)",
                                     "--ca", certs + "/ca.pem", "--cert", certs + "/clinic.pem", "--key", certs + "/clinic-key.pem",
                                     "--token", token, "--study", study, "--series", series])
        XCTAssertEqual(check.status, 0, check.err + check.out)
    }

    /// schemathesis generates requests from Protocols/openapi.yaml against a live node and
    /// checks every answer against the spec; once as an operator (lookups; uploads 403),
    /// once as a hospital (uploads; lookups 403), once as a token client (evaluations),
    /// once each as a reader and an ai-worker (the read queue), once as a peer node (batched
    /// lookups, uploads of any storage unit).
    func testSchemathesisFindsNoFailures() throws {
        let root = TestNode.repoRoot
        let tool = root + "/.venv/bin/schemathesis"
        guard FileManager.default.isExecutableFile(atPath: tool) else { return XCTFail("run .ci/setup.sh first") }
        let node = try TestNode { $0.tokens.service = true }
        defer { node.stop() }
        let (port, certs) = (node.port, node.certs)
        for role in ["operator", "hospital", "token-client", "reader", "ai-worker", "node"] {
            let r = try run(tool, ["--config-file", root + "/Tests/clients/schemathesis.toml", "run", root + "/Protocols/openapi.yaml",
                                   "--url", "https://localhost:\(port)", "--tls-verify", certs + "/ca.pem",
                                   "--request-cert", "\(certs)/\(role).pem", "--request-cert-key", "\(certs)/\(role)-key.pem",
                                   "-n", "30", "--checks", "all", "--no-color"])
            XCTAssertEqual(r.status, 0, "as \(role):\n" + r.out.suffix(3000))
        }
    }

    private func run(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let r = try ChildProcess.run(tool, args)
        return (r.status, r.stdout, r.stderr)
    }
}
