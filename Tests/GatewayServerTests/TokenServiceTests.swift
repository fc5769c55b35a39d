import Foundation
import GatewayAgent
import GatewayServer
import PatientTokens
import TestScratch
import XCTest

/// The token service over mTLS: the agent's library against a real node, curl for the
/// refusals, key rotation and retirement as the index sees them.
final class TokenServiceTests: XCTestCase {
    static func agentConfig(_ node: TestNode, role: String = "clinic", pinned: [String: String] = [:]) -> AgentConfig {
        var config = AgentConfig(node: node.baseURL, certificate: "\(node.certs)/\(role).pem",
                                 privateKey: "\(node.certs)/\(role)-key.pem", trustedCA: "\(node.certs)/ca.pem",
                                 pinnedKeys: pinned)
        config.tokenCertificate = "\(node.certs)/token-client.pem"
        config.tokenPrivateKey = "\(node.certs)/token-client-key.pem"
        config.tokenBatch = 100
        return config
    }

    static func pinnedConfig(_ node: TestNode, role: String = "clinic") async throws -> AgentConfig {
        var config = agentConfig(node, role: role)
        config.pinnedKeys = try await TokenKeyFetch.current(config)
        return config
    }

    static func residentIDs(_ count: Int) -> [TokenInput] {
        (0..<count).map { i in
            let seventeen = String(format: "610102198%01d%02d%02d%03d", i % 10, i % 12 + 1, i % 28 + 1, i % 1000)
            let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
            let sum = zip(seventeen, weights).reduce(0) { $0 + Int(String($1.0))! * $1.1 }
            return try! TokenInput.residentID(seventeen + String(Array("10X98765432")[sum % 11]))
        }
    }

    func testTokensAreDeterministicPerKeyAndDistinctPerPatient() async throws {
        let node = try TestNode { $0.tokens.service = true }
        defer { node.stop() }
        let client = try TokenClient(config: try await Self.pinnedConfig(node))
        let inputs = Self.residentIDs(250)
        let first = try await client.tokenize(inputs, version: 1)
        let again = try await client.tokenize(Array(inputs.reversed()), version: 1)
        XCTAssertEqual(first, again.reversed(), "the same identifier gives the same token, across batches")
        XCTAssertEqual(Set(first).count, Set(inputs.map(\.normalized)).count)
        XCTAssertTrue(first.allSatisfy { $0.keyVersion == 1 })
        let otherKind = try await client.tokenize([try TokenInput.personCode(String(repeating: "1", count: 26))], version: 1)
        XCTAssertFalse(first.contains(otherKind[0]))
    }

    func testAProofFromAnotherKeyIsRefused() async throws {
        let honest = try TestNode { $0.tokens.service = true }
        let impostor = try TestNode { $0.tokens.service = true }
        defer { honest.stop(); impostor.stop() }
        // The agent trusts the honest service's key but is pointed at a service holding another.
        var config = Self.agentConfig(impostor)
        config.pinnedKeys = try await TokenKeyFetch.current(try await Self.pinnedConfig(honest))
        let client = try TokenClient(config: config)
        do {
            _ = try await client.tokenize(Self.residentIDs(3), version: 1)
            XCTFail("tokens from an unpinned key were accepted")
        } catch {
            XCTAssertEqual(error, .proofRejected(version: 1))
        }
        do {
            _ = try await client.usableVersions()
            XCTFail("an unpinned active key was used")
        } catch {
            XCTAssertEqual(error, .keyNotPinned(version: 1))
        }
    }

    func testServiceRefusals() throws {
        let node = try TestNode { $0.tokens.service = true; $0.tokens.maxBatch = 10 }
        defer { node.stop() }
        let url = node.baseURL + "/v1/tokens/evaluate"
        func post(_ body: String, role: String = "token-client", type: String = "application/json") -> (status: Int, body: String) {
            node.curl(role, ["-H", "Content-Type: \(type)", "--data-binary", body, url])
        }
        let point = "A6tWKUDj-ovWbmKwZcLlgRu75ccr5bNqd3mXOpIV2M8M"
        XCTAssertEqual(post("{\"blindedElements\":[\"\(point)\"]}", role: "hospital").status, 403)
        XCTAssertEqual(post("{\"blindedElements\":[\"\(point)\"]}", type: "text/plain").status, 415)
        let cases: [(String, Int, String)] = [
            ("not json", 400, "invalid_json"),
            ("{\"blindedElements\":[]}", 400, "empty_batch"),
            ("{\"blindedElements\":[\"AAAA\"]}", 400, "invalid_element"),
            ("{\"blindedElements\":[\"A\(String(repeating: "A", count: 43))\"]}", 400, "invalid_element"),
            ("{\"blindedElements\":[\(Array(repeating: "\"\(point)\"", count: 11).joined(separator: ","))]}", 413, "batch_too_large"),
            ("{\"keyVersion\":9,\"blindedElements\":[\"\(point)\"]}", 404, "unknown_key_version"),
        ]
        for (body, status, code) in cases {
            let answer = post(body)
            XCTAssertEqual(answer.status, status, body.prefix(60) + " → " + answer.body)
            XCTAssertTrue(answer.body.contains("\"code\":\"\(code)\""), answer.body)
        }
        let keys = node.curl("clinic", [node.baseURL + "/v1/tokens/keys"])
        XCTAssertEqual(keys.status, 200)
        XCTAssertTrue(keys.body.contains("\"suite\":\"P256-SHA256\""), keys.body)
        XCTAssertFalse(keys.body.contains("secret"), keys.body)
        XCTAssertEqual(node.curl("clinic", [url, "-H", "Content-Type: application/json", "--data-binary", "{}"]).status, 403)
    }

    func testRotationOverlapThenRetirement() async throws {
        let node = try TestNode { $0.tokens.service = true }
        defer { node.stop() }
        let keyFile = node.gateway.config.tokenKeyFile
        var file = try TokenKeyFile.load(path: keyFile)
        let v1Client = try TokenClient(config: try await Self.pinnedConfig(node))
        let patient = Self.residentIDs(1)
        let v1 = try await v1Client.tokenize(patient, version: 1)[0]
        XCTAssertEqual(upload(node, token: v1, uid: "1.2.156.9.1").status, 200)

        try file.rotate()
        try file.save(path: keyFile)
        try await Task.sleep(for: .milliseconds(1_200))
        let both = try TokenClient(config: try await Self.pinnedConfig(node))
        let versions = try await both.usableVersions()
        XCTAssertEqual(versions.active, 2)
        XCTAssertEqual(versions.all, [1, 2])
        let v2 = try await both.tokenize(patient, version: 2)[0]
        XCTAssertNotEqual(v1, v2)
        XCTAssertEqual(upload(node, token: v2, uid: "1.2.156.9.2").status, 200)
        let lookup = PatientLookup(config: try await Self.pinnedConfig(node))
        let during = try await lookup.studies(of: patient[0])
        XCTAssertEqual(Set(during.map(\.studyInstanceUID)), ["1.2.156.9.1", "1.2.156.9.2"], "the overlap matches either version")

        try file.retire(version: 1)
        try file.save(path: keyFile)
        try await Task.sleep(for: .milliseconds(1_200))
        let refused = upload(node, token: v1, uid: "1.2.156.9.3")
        XCTAssertEqual(refused.status, 202)
        XCTAssertTrue(refused.body.contains("token-key-retired"), refused.body)
        let old = node.curl("clinic", [node.baseURL + "/v1/patients/\(v1)/studies?purpose=TREAT"])
        XCTAssertEqual(old.status, 410, old.body)
        let after = try await lookup.studies(of: patient[0])
        XCTAssertEqual(after.map(\.studyInstanceUID), ["1.2.156.9.2"], "only the active version is looked up")
        let evaluate = node.curl("token-client", ["-H", "Content-Type: application/json", "--data-binary",
                                                  "{\"keyVersion\":1,\"blindedElements\":[\"A6tWKUDj-ovWbmKwZcLlgRu75ccr5bNqd3mXOpIV2M8M\"]}",
                                                  node.baseURL + "/v1/tokens/evaluate"])
        XCTAssertEqual(evaluate.status, 410, evaluate.body)
    }

    private func upload(_ node: TestNode, token: PatientToken, uid: String) -> (status: Int, body: String) {
        let record = "{\"patientToken\":\"\(token)\",\"studyInstanceUID\":\"\(uid)\",\"studyDate\":\"20241101\","
            + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
            + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
        return node.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", record,
                                      node.baseURL + "/v1/index/studies"])
    }
}

/// The agent's upload after a crash between the node's answer and the progress file:
/// the rerun sends the unrecorded batches again, the node replays its first answers, and
/// nothing is stored twice.
final class AgentResumeTests: XCTestCase {
    func testRerunAfterALostProgressRecordStoresNothingTwice() async throws {
        let node = try TestNode { $0.tokens.service = true }
        defer { node.stop() }
        var config = try await TokenServiceTests.pinnedConfig(node, role: "hospital")
        config.uploadBatch = 10
        let ids = TokenServiceTests.residentIDs(25)
        var csv = "residentId,studyInstanceUID,studyDate,modalitiesInStudy,storageUnit,retrieveURL,region\n"
        for i in 0..<50 {
            csv += "\(ids[i % 25].normalized),1.2.156.800.\(i + 1),20240\(i % 9 + 1)01,CT,91610000MA6TG0001A,"
                + "https://pacs.example/dicomweb,610100\n"
        }
        let input = Scratch.path("resume") + ".csv"
        try csv.write(toFile: input, atomically: true, encoding: .utf8)
        let job = UploadJob(config: config, input: input)
        let first = try await job.run()
        XCTAssertEqual(first.accepted, 50)

        // As if the agent died after batch 3 was acknowledged but before it was recorded.
        var progress = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: job.progressPath))) as! [String: Any]
        var summary = progress["summary"] as! [String: Any]
        progress["batchesDone"] = 2
        summary["accepted"] = 20
        progress["summary"] = summary
        try JSONSerialization.data(withJSONObject: progress).write(to: URL(fileURLWithPath: job.progressPath))

        let again = try await job.run()
        XCTAssertEqual(again.batchesResumed, 2)
        XCTAssertEqual(again.accepted, 50, "replayed batches report their first answers")
        XCTAssertEqual(again.updated, 0)
        let count = node.curl("operator", ["\(node.baseURL)/dicomweb/studies?StudyDate=20240101-20241231&purpose=HSYSADMIN&limit=1000"])
        XCTAssertEqual(count.status, 200, count.body)
        let studies = try JSONSerialization.jsonObject(with: Data(count.body.utf8)) as? [Any]
        XCTAssertEqual(studies?.count, 50, "50 studies, none twice")
        let done = try await job.run()
        XCTAssertEqual(done.batchesResumed, 5, "a finished upload sends nothing")
    }
}
