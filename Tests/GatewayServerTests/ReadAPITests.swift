import Foundation
import GatewayServer
import TestScratch
import XCTest

/// The read queue over HTTP with curl: UPS-RS and /v1/reads status codes, leases and
/// dead letters, the in-node AI stage, a second clinic that sees none of the first's work,
/// and a restart. Certificates from Certs/make-dev-certs.sh plus one leaf for clinic B.
final class ReadAPITests: XCTestCase {
    static let org = "91610000MA6TG0001A"
    static let otherClinic = "91610000MA6TG0002B"
    var certs = ""
    var nodes: [TestNode] = []

    override func setUpWithError() throws {
        certs = Scratch.path("read-certs")
        let made = TestProcess.run("/bin/bash", [TestNode.repoRoot + "/Certs/make-dev-certs.sh", certs, Self.org])
        XCTAssertEqual(made.status, 0, made.output)
        let issued = TestProcess.run("/bin/bash", ["-c", """
            set -e; cd "\(certs)"
            openssl ecparam -name prime256v1 -genkey -noout -out clinic-b-key.pem
            openssl req -new -key clinic-b-key.pem -subj "/CN=dev clinic b" -out clinic-b.csr
            printf 'subjectAltName=URI:urn:imaging-gateway:clinic:\(Self.otherClinic)\\nextendedKeyUsage=clientAuth\\n' > b.ext
            openssl x509 -req -in clinic-b.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile b.ext -out clinic-b.pem
            """])
        XCTAssertEqual(issued.status, 0, issued.output)
    }

    override func tearDown() {
        nodes.forEach { $0.stop() }
    }

    func start(data: String? = nil, _ configure: (inout GatewayConfig) -> Void = { _ in }) throws -> TestNode {
        let node = try TestNode { [certs] config in
            config.tls.certificate = certs + "/node.pem"
            config.tls.privateKey = certs + "/node-key.pem"
            config.tls.clientCA = certs + "/ca.pem"
            config.reads.aiStage = "external"
            if let data { config.dataDirectory = data }
            configure(&config)
        }
        nodes.append(node)
        return node
    }

    func curl(_ node: TestNode, _ role: String, _ method: String, _ path: String, _ body: String? = nil,
              type: String = "application/json") -> (status: Int, body: String, json: [String: Any]) {
        var args = ["-X", method]
        if let body { args += ["-H", "Content-Type: \(type)", "--data-binary", body] }
        let r = TestProcess.curl(certs: certs, role, args + [node.baseURL + path])
        return (r.status, r.body, ((try? JSONSerialization.jsonObject(with: Data(r.body.utf8))) as? [String: Any]) ?? [:])
    }

    func index(_ node: TestNode, _ uids: [String]) {
        let lines = uids.map {
            "{\"patientToken\":\"v1:\(String(repeating: "B", count: 42))Q\",\"studyInstanceUID\":\"\($0)\",\"studyDate\":\"20241105\","
                + "\"modalitiesInStudy\":[\"CT\"],\"bodyPartExamined\":\"CHEST\",\"storageUnit\":\"\(Self.org)\","
                + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
        }
        let r = curl(node, "hospital", "POST", "/v1/index/studies", lines.joined(separator: "\n"), type: "application/x-ndjson")
        XCTAssertEqual(r.status, 200, r.body)
    }

    static func create(_ study: String, priority: String = "MEDIUM") -> String {
        "{\"00741200\":{\"vr\":\"CS\",\"Value\":[\"\(priority)\"]},\"00404021\":{\"vr\":\"SQ\",\"Value\":[{\"0020000D\":"
            + "{\"vr\":\"UI\",\"Value\":[\"\(study)\"]}}]}}"
    }

    static func state(_ state: String, _ txn: String) -> String {
        "{\"00741000\":{\"vr\":\"CS\",\"Value\":[\"\(state)\"]},\"00081195\":{\"vr\":\"UI\",\"Value\":[\"\(txn)\"]}}"
    }

    func code(_ r: (status: Int, body: String, json: [String: Any])) -> String {
        "\(r.status) \((r.json["error"] as? [String: Any])?["code"] as? String ?? (r.json["code"] as? String) ?? "")"
    }

    func createRead(_ node: TestNode, _ study: String, priority: String = "MEDIUM") -> String {
        let r = curl(node, "clinic", "POST", "/dicomweb/workitems", Self.create(study, priority: priority), type: "application/dicom+json")
        XCTAssertEqual(r.status, 201, r.body)
        return ((r.json["00080018"] as? [String: Any])?["Value"] as? [String])?.first ?? "none"
    }

    /// Every allowed and refused transition of the state table, with its status code.
    func testTheStateTableOverHTTP() throws {
        let node = try start()
        index(node, ["1.2.156.60.1", "1.2.156.60.2"])
        let dicom = "application/dicom+json"
        XCTAssertEqual(code(curl(node, "clinic", "POST", "/dicomweb/workitems", Self.create("1.2.156.60.9"), type: dicom)), "404 study_not_found")
        XCTAssertEqual(curl(node, "clinic", "POST", "/dicomweb/workitems", "{}", type: dicom).status, 400)
        XCTAssertEqual(curl(node, "clinic", "POST", "/dicomweb/workitems", Self.create("1.2.156.60.1"), type: "text/plain").status, 415)
        XCTAssertEqual(curl(node, "hospital", "POST", "/dicomweb/workitems", Self.create("1.2.156.60.1"), type: dicom).status, 403)
        let uid = createRead(node, "1.2.156.60.1")
        XCTAssertEqual(code(curl(node, "clinic", "POST", "/dicomweb/workitems?\(uid)", Self.create("1.2.156.60.1"), type: dicom)),
                       "409 workitem_exists")

        // Clinic B sees nothing of clinic A's and cannot cancel it.
        XCTAssertEqual(curl(node, "clinic", "GET", "/dicomweb/workitems/\(uid)").status, 200)
        XCTAssertEqual(code(curl(node, "clinic-b", "GET", "/dicomweb/workitems/\(uid)")), "404 workitem_not_found")
        XCTAssertEqual(curl(node, "clinic-b", "GET", "/dicomweb/workitems").status, 204)
        XCTAssertEqual(code(curl(node, "clinic-b", "POST", "/dicomweb/workitems/\(uid)/cancelrequest")), "404 workitem_not_found")

        // Waiting for AI: readers cannot claim it; the ai-worker takes it and posts a result.
        let reader1 = "1.2.826.0.1.1", reader2 = "1.2.826.0.1.2"
        XCTAssertEqual(code(curl(node, "reader", "PUT", "/dicomweb/workitems/\(uid)/state", Self.state("IN PROGRESS", reader1))), "409 wrong_state")
        XCTAssertEqual(curl(node, "reader", "POST", "/v1/reads/next").status, 204)
        XCTAssertEqual(code(curl(node, "reader", "GET", "/v1/reads/next")), "405 method_not_allowed",
                       "the literal route owns the path; it is not a workitem called 'next'")
        XCTAssertEqual(code(curl(node, "reader", "POST", "/v1/reads/next?label=a,,b")), "400 invalid_label")
        let ai = curl(node, "ai-worker", "POST", "/v1/reads/next")
        XCTAssertEqual(ai.status, 200, ai.body)
        XCTAssertEqual(ai.json["uid"] as? String, uid)
        let aiTxn = ai.json["transactionUID"] as? String ?? ""
        XCTAssertEqual(code(curl(node, "ai-worker", "POST", "/v1/reads/\(uid)/ai-result", "{\"transactionUID\":\"1.2.3\",\"urgency\":0.9}")),
                       "400 wrong_transaction_uid")
        XCTAssertEqual(curl(node, "ai-worker", "POST", "/v1/reads/\(uid)/ai-result", "{\"transactionUID\":\"\(aiTxn)\",\"urgency\":7}").status, 400)
        let triaged = curl(node, "ai-worker", "POST", "/v1/reads/\(uid)/ai-result",
                           "{\"transactionUID\":\"\(aiTxn)\",\"urgency\":0.9,\"result\":{\"finding\":\"nodule\"}}")
        XCTAssertEqual(triaged.status, 200, triaged.body)
        XCTAssertEqual(triaged.json["readPriority"] as? String, "HIGH", "urgency 0.9 triages to HIGH")
        XCTAssertEqual((triaged.json["aiResult"] as? [String: Any])?["finding"] as? String, "nodule")

        // One reader holds it; a second claimant is 409; wrong Transaction UIDs are 400.
        let path = "/dicomweb/workitems/\(uid)/state"
        let claimed = curl(node, "reader", "PUT", path, Self.state("IN PROGRESS", reader1))
        XCTAssertEqual(claimed.status, 200, claimed.body)
        XCTAssertEqual(claimed.json["state"] as? String, "IN PROGRESS")
        XCTAssertEqual(code(curl(node, "reader", "PUT", path, Self.state("IN PROGRESS", reader2))), "409 wrong_state")
        XCTAssertEqual(code(curl(node, "reader", "POST", "/v1/reads/\(uid)/heartbeat", "{\"transactionUID\":\"\(reader2)\"}")),
                       "400 wrong_transaction_uid")
        XCTAssertEqual(curl(node, "reader", "POST", "/v1/reads/\(uid)/heartbeat", "{\"transactionUID\":\"\(reader1)\"}").status, 200)
        XCTAssertEqual(code(curl(node, "reader", "PUT", path, Self.state("COMPLETED", reader2))), "400 wrong_transaction_uid")
        XCTAssertEqual(code(curl(node, "ai-worker", "PUT", path, Self.state("COMPLETED", reader1))), "409 wrong_state")
        XCTAssertEqual(curl(node, "reader", "PUT", path, Self.state("COMPLETED", reader1)).status, 200)

        // A repeated final state is 200 with a Warning; any other change is refused.
        let args = ["-X", "PUT", "-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/dicom+json",
                    "--data-binary", Self.state("COMPLETED", reader1), node.baseURL + path]
        let again = TestProcess.curl(certs: certs, "reader", args)
        XCTAssertEqual(again.status, 200)
        XCTAssertTrue(again.body.lowercased().contains("warning: 299"), again.body)
        XCTAssertEqual(code(curl(node, "reader", "PUT", path, Self.state("CANCELED", reader1))), "409 wrong_state")
        XCTAssertEqual(code(curl(node, "clinic", "POST", "/dicomweb/workitems/\(uid)/cancelrequest")), "409 wrong_state")
        XCTAssertEqual(code(curl(node, "reader", "PUT", "/dicomweb/workitems/1.2.3.4/state", Self.state("IN PROGRESS", reader1))),
                       "404 workitem_not_found")

        // A cancel request on a waiting item cancels it; searches find it by state.
        let second = createRead(node, "1.2.156.60.2", priority: "LOW")
        XCTAssertEqual(curl(node, "clinic", "POST", "/dicomweb/workitems/\(second)/cancelrequest").status, 202)
        let canceled = curl(node, "operator", "GET", "/dicomweb/workitems?ProcedureStepState=CANCELED")
        XCTAssertEqual(canceled.status, 200)
        XCTAssertTrue(canceled.body.contains(second) && !canceled.body.contains(uid), canceled.body)
        XCTAssertEqual(curl(node, "clinic", "GET", "/dicomweb/workitems?ProcedureStepState=COMPLETED").status, 200)
        XCTAssertEqual(code(curl(node, "clinic", "GET", "/dicomweb/workitems?ProcedureStepState=DONE")), "400 invalid_state")
        XCTAssertEqual(code(curl(node, "clinic", "GET", "/dicomweb/workitems?PatientName=x")), "400 unsupported_parameter")
    }

    /// A reader that stops heartbeating loses the item to the next; after maxAttempts it
    /// is dead-lettered, shows to the operator, and a re-drive makes a new item.
    func testLeasesExpireThenDeadLetterThenRedrive() throws {
        let node = try start {
            $0.reads.aiStage = "off"
            $0.reads.leaseSeconds = 0.5
            $0.reads.maxAttempts = 2
        }
        index(node, ["1.2.156.61.1"])
        let uid = createRead(node, "1.2.156.61.1")
        let first = curl(node, "reader", "POST", "/v1/reads/next")
        XCTAssertEqual(first.json["uid"] as? String, uid)
        let stale = first.json["transactionUID"] as? String ?? ""
        Thread.sleep(forTimeInterval: 0.9)
        let second = curl(node, "reader", "POST", "/v1/reads/next")
        XCTAssertEqual(second.json["uid"] as? String, uid, "the expired lease returned it to the ready set")
        XCTAssertEqual(second.json["attempts"] as? Int, 1, "one lease expired")
        XCTAssertEqual(code(curl(node, "reader", "POST", "/v1/reads/\(uid)/heartbeat", "{\"transactionUID\":\"\(stale)\"}")),
                       "400 wrong_transaction_uid")
        Thread.sleep(forTimeInterval: 0.9)
        XCTAssertEqual(curl(node, "reader", "POST", "/v1/reads/next").status, 204)
        let dead = curl(node, "operator", "GET", "/v1/reads/dead-letters")
        XCTAssertEqual(dead.json["count"] as? Int, 1, dead.body)
        XCTAssertEqual(curl(node, "reader", "GET", "/v1/reads/dead-letters").status, 403)
        let redriven = curl(node, "operator", "POST", "/v1/reads/\(uid)/redrive")
        XCTAssertEqual(redriven.status, 201, redriven.body)
        XCTAssertEqual(redriven.json["redriveOf"] as? String, uid)
        let again = curl(node, "reader", "POST", "/v1/reads/next")
        XCTAssertEqual(again.json["uid"] as? String, redriven.json["uid"] as? String)
    }

    /// The in-node AI stage with the stub engine triages by itself; with every inference
    /// failing, the item is dead-lettered after maxAIAttempts. A restart keeps both.
    func testTheInNodeAIStageAndARestart() throws {
        let data = Scratch.path("gw-reads")
        var node = try start(data: data) { $0.reads.aiStage = "node" }
        index(node, ["1.2.156.62.1"])
        let uid = createRead(node, "1.2.156.62.1")
        let ready = wait(node, uid) { $0["stage"] as? String == "ready" }
        XCTAssertNotNil(ready["aiResult"] as? [String: Any])
        XCTAssertNotNil(ready["triagePriority"] as? String)
        node.stop()
        nodes.removeAll()

        node = try start(data: data) {
            $0.reads.aiStage = "node"
            $0.reads.engine.failureRate = 1
            $0.reads.maxAIAttempts = 2
        }
        XCTAssertEqual(curl(node, "clinic", "GET", "/v1/reads/\(uid)").json["stage"] as? String, "ready", "kept across the restart")
        index(node, ["1.2.156.62.2"])
        let failing = createRead(node, "1.2.156.62.2")
        let dead = wait(node, failing) { $0["stage"] as? String == "dead-letter" }
        XCTAssertEqual(dead["aiAttempts"] as? Int, 2)
        XCTAssertNotNil(dead["reason"] as? String)
        let all = curl(node, "operator", "GET", "/dicomweb/workitems")
        XCTAssertEqual(all.body.components(separatedBy: "\"00080018\"").count - 1, 2, "no workitem lost or duplicated")
    }

    private func wait(_ node: TestNode, _ uid: String, until done: ([String: Any]) -> Bool) -> [String: Any] {
        let due = Date().addingTimeInterval(10)
        var last = curl(node, "clinic", "GET", "/v1/reads/\(uid)")
        while !done(last.json) {
            guard Date() < due else {
                XCTFail("not reached in 10 s: \(last.body)")
                break
            }
            Thread.sleep(forTimeInterval: 0.1)
            last = curl(node, "clinic", "GET", "/v1/reads/\(uid)")
        }
        return last.json
    }
}
