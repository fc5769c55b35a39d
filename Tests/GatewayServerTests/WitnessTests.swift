import Foundation
import GatewayServer
import TestScratch
import XCTest

/// A regional node offers its signed checkpoints to the national node it gathers to; the
/// national node keeps the latest it could prove consistent, and refuses (and keeps, and
/// counts) one that is not: here, the regional node restarted on an older copy of its
/// data directory, whose log is a rollback of the one already witnessed.
final class WitnessTests: XCTestCase {
    static let token = "v1:" + String(repeating: "W", count: 42) + "Q"
    static let origin = "imaging-gateway/610000"

    private func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    func testTheNationalNodeWitnessesARegionalLogAndCatchesItsRollback() async throws {
        let port = TestNode.fixedPortBase()
        let national = try TestNode { c in
            c.region = "100000"
            c.role = "national"
            c.listen = ["127.0.0.1:\(port)"]
        }
        defer { national.stop() }
        let certs = national.certs
        func regional(_ data: String) throws -> TestNode {
            try TestNode { c in
                c.region = "610000"
                c.dataDirectory = data
                c.tls.certificate = certs + "/node.pem"
                c.tls.privateKey = certs + "/node-key.pem"
                c.tls.clientCA = certs + "/ca.pem"
                c.federation.gatherTo = "https://localhost:\(port)"
                c.audit.checkpointSeconds = 1
            }
        }
        let regionalData = Scratch.path("gw-witnessed")
        var node = try regional(regionalData)
        func lookups(_ n: Int) {
            for _ in 0..<n {
                let answer = national.curl("clinic", ["\(node.baseURL)/v1/patients/\(Self.token)/studies?purpose=TREAT&scope=local"])
                XCTAssertEqual(answer.status, 200, answer.body)
            }
        }
        func witnessed() -> (size: Int?, conflicts: [[String: Any]]) {
            let answer = national.curl("operator", ["\(national.baseURL)/v1/audit/witness?origin=\(Self.origin)"])
            let held = json(answer.body)
            return ((held["witnessed"] as? [String: Any])?["treeSize"] as? Int, held["conflicts"] as? [[String: Any]] ?? [])
        }
        func regionalSize() -> Int {
            let answer = national.curl("operator", ["\(node.baseURL)/v1/audit/checkpoint"])
            return (json(answer.body)["checkpoint"] as? [String: Any])?["treeSize"] as? Int ?? -1
        }
        func witnessedSize(reaches size: Int) async throws -> Int? {
            for _ in 0..<100 {
                if let held = witnessed().size, held >= size { return held }
                try await Task.sleep(for: .milliseconds(100))
            }
            return witnessed().size
        }

        lookups(3)
        let first = regionalSize()
        XCTAssertGreaterThanOrEqual(first, 3)
        let held = try await witnessedSize(reaches: first)
        XCTAssertEqual(held, first, "the first checkpoint is witnessed as it was signed")

        node.stop()
        let older = Scratch.path("gw-witnessed-copy")
        try FileManager.default.copyItem(atPath: regionalData, toPath: older)
        node = try regional(regionalData)
        lookups(5)
        let grown = regionalSize()
        let extended = try await witnessedSize(reaches: grown)
        XCTAssertEqual(extended, grown, "a larger tree is accepted with its consistency proof")
        XCTAssertEqual(witnessed().conflicts.count, 0)
        // The regional node learns of the acceptance when the answer arrives, a moment after
        // the witness committed it.
        let line = "gateway_audit_witnessed_tree_size{witness=\"https://localhost:\(port)\"} \(grown)"
        var known = ""
        for _ in 0..<20 where !known.contains(line) {
            known = national.curl("operator", ["\(node.baseURL)/metrics"]).body
            if !known.contains(line) { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertTrue(known.contains(line), known)

        node.stop()
        node = try regional(older)
        defer { node.stop() }
        lookups(1)
        XCTAssertLessThan(regionalSize(), grown, "the copy's log is shorter than the one witnessed")
        var conflicts: [[String: Any]] = []
        for _ in 0..<100 where conflicts.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            conflicts = witnessed().conflicts
        }
        XCTAssertEqual(conflicts.count, 1, "the rolled-back log is refused once and kept as evidence")
        XCTAssertEqual(conflicts.first?["actor"] as? String, "urn:imaging-gateway:node:\(try nodeOrganization(certs))")
        XCTAssertTrue((conflicts.first?["reason"] as? String ?? "").contains("leaves offered after one of \(grown)"),
                      "\(conflicts)")
        XCTAssertEqual(witnessed().size, grown, "the witness keeps what it held")
        let metrics = national.curl("operator", ["\(national.baseURL)/metrics"]).body
        XCTAssertTrue(metrics.contains("gateway_audit_witness_conflicts_total 1"), metrics)

        // The national node's operator, the cause known (a restore), forgets the held
        // checkpoint; the regional node offers again after its refusal's wait (ten
        // periods) and the restored log is witnessed from there, the conflict still kept.
        let reset = ["-X", "DELETE", "\(national.baseURL)/v1/audit/witness?origin=\(Self.origin)"]
        XCTAssertEqual(national.curl("node", reset).status, 403)
        XCTAssertEqual(national.curl("operator", reset).status, 200)
        XCTAssertEqual(national.curl("operator", reset).status, 404)
        lookups(1)
        let restored = regionalSize()
        var again: Int?
        for _ in 0..<200 where again == nil {
            try await Task.sleep(for: .milliseconds(100))
            again = witnessed().size
        }
        XCTAssertNotNil(again)
        XCTAssertLessThanOrEqual(again ?? 0, restored)
        XCTAssertEqual(witnessed().conflicts.count, 1)
    }

    func testOffersThatAreNotCheckpointsAreRefusedWithAReason() throws {
        let node = try TestNode()
        defer { node.stop() }
        let url = node.baseURL + "/v1/audit/witness"
        func post(_ role: String, _ body: String) -> (status: Int, code: String?) {
            let answer = node.curl(role, ["-H", "Content-Type: application/json", "--data-binary", body, url])
            return (answer.status, (json(answer.body)["error"] as? [String: Any])?["code"] as? String)
        }
        XCTAssertEqual(post("clinic", "{}").status, 403)
        XCTAssertEqual(post("node", "{}").code, "invalid_witness_offer")
        XCTAssertEqual(post("node", "not json").code, "invalid_witness_offer")
        let checkpoint = "{\"origin\":\"\(Self.origin)\",\"treeSize\":3,\"rootHash\":\"\(Data(count: 32).base64EncodedString())\","
            + "\"time\":\"2026-12-04T00:00:00Z\",\"signature\":\"AAAA\"}"
        let key = "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n"
        XCTAssertEqual(post("node", "{\"checkpoint\":\(checkpoint),\"publicKey\":\"\(key)\",\"from\":0,\"consistency\":[]}").code,
                       "invalid_signature")
        XCTAssertEqual(post("node", "{\"checkpoint\":\(checkpoint),\"publicKey\":\"\(key)\",\"from\":0,\"consistency\":[\"AA==\"]}").code,
                       "invalid_witness_offer", "a proof hash is 32 bytes")
        XCTAssertEqual(post("node", "{\"checkpoint\":\(checkpoint.replacingOccurrences(of: Self.origin, with: "patient 110101199003074512")),"
                            + "\"publicKey\":\"\(key)\",\"from\":0,\"consistency\":[]}").code,
                       "invalid_witness_offer", "an origin is a node's, never free text to keep or log")
        XCTAssertEqual(node.curl("operator", ["\(node.baseURL)/v1/audit/witness?origin=imaging-gateway/440000"]).status, 404)
        XCTAssertEqual(node.curl("operator", ["\(node.baseURL)/v1/audit/witness?origin=nobody"]).status, 400)
        XCTAssertEqual(node.curl("operator", ["\(node.baseURL)/v1/audit/witness"]).status, 400)
    }

    /// The organization code in the development `node` certificate's SAN.
    private func nodeOrganization(_ certs: String) throws -> String {
        let out = TestProcess.run("/usr/bin/openssl", ["x509", "-in", certs + "/node.pem", "-noout", "-ext", "subjectAltName"]).output
        guard let range = out.range(of: "urn:imaging-gateway:node:") else { throw XCTSkip("no node SAN in \(out)") }
        return String(out[range.upperBound...].prefix { $0.isLetter || $0.isNumber })
    }
}
