import Foundation
import GatewayServer
import IndexStore
import TestScratch
import XCTest

/// A regional node gathers every stored record to the national node through its outbox:
/// all of them arrive, exactly once; while the national node is down the outbox holds
/// them and /readyz says how far behind it is; when it returns, they drain by themselves.
final class GatheringTests: XCTestCase {
    static let token = "v1:" + String(repeating: "G", count: 42) + "Q"

    func testEveryStoredRecordReachesTheNationalNodeOnceEvenAcrossItsRestart() async throws {
        let port = TestNode.fixedPortBase()
        let nationalData = Scratch.path("gw-national")
        func national() throws -> TestNode { try Self.national(port: port, data: nationalData) }
        var top = try national()
        let certs = top.certs
        let regional = try Self.regional(certs: certs, gatheringTo: port)
        defer { regional.stop() }
        func upload(_ batch: Int, count: Int, instances: Int = 1) {
            let lines = (0..<count).map { i in
                "{\"patientToken\":\"\(Self.token)\",\"studyInstanceUID\":\"1.2.156.2.\(batch).\(i)\",\"studyDate\":\"20241101\","
                    + "\"numberOfStudyRelatedInstances\":\(instances),"
                    + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
                    + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
            }.joined(separator: "\n")
            let file = Scratch.path("gather")
            try? lines.write(toFile: file, atomically: true, encoding: .utf8)
            let answer = top.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + file,
                                               "https://localhost:\(regional.port)/v1/index/studies"])
            XCTAssertEqual(answer.status, 200, answer.body)
        }
        let nationalStore = try SQLiteIndexStore(path: nationalData + "/index.sqlite", readers: 1)
        func nationalCount(reaches n: Int, within seconds: Double) async throws -> Int {
            let deadline = Date().addingTimeInterval(seconds)
            var count = 0
            while Date() < deadline {
                count = try await nationalStore.count()
                if count >= n { return count }
                try await Task.sleep(for: .milliseconds(100))
            }
            return count
        }
        func lag() -> Int {
            let ready = top.curl("operator", ["https://localhost:\(regional.port)/readyz"]).body
            let gathering = (try? JSONSerialization.jsonObject(with: Data(ready.utf8)) as? [String: Any])?["gathering"]
            return (gathering as? [String: Any])?["lagRecords"] as? Int ?? -1
        }

        upload(1, count: 1_000)
        upload(2, count: 1_000)
        upload(3, count: 500)
        let gathered = try await nationalCount(reaches: 2_500, within: 15)
        XCTAssertEqual(gathered, 2_500)

        top.stop()
        upload(4, count: 700)
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertEqual(lag(), 700, "the outbox holds what the national node has not acknowledged")
        top = try national()
        defer { top.stop() }
        let after = try await nationalCount(reaches: 3_200, within: 40)
        XCTAssertEqual(after, 3_200, "drained by itself after the restart")
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(lag(), 0)
        let final = try await nationalStore.count()
        XCTAssertEqual(final, 3_200, "nothing twice")

        // Four versions of the same 1 000 studies wait in the outbox and drain with
        // several batches travelling at once: the national node ends with the last
        // version of every study. (That two versions never travel together is what keeps
        // this true when a later batch overtakes an earlier one; loopback rarely makes
        // that race happen, so this checks the end state, not the race.)
        top.stop()
        for version in 1...4 { upload(5, count: 1_000, instances: version) }
        top = try national()
        let versions = try await nationalCount(reaches: 4_200, within: 40)
        XCTAssertEqual(versions, 4_200)
        for _ in 0..<100 where lag() != 0 { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertEqual(lag(), 0)
        var latest = StudyQuery()
        latest.studyInstanceUIDs = (0..<1_000).map { "1.2.156.2.5.\($0)" }
        latest.limit = 1_000
        let kept = try await nationalStore.query(latest)
        XCTAssertEqual(kept.count, 1_000)
        XCTAssertEqual(Set(kept.map(\.numberOfStudyRelatedInstances)), [4], "every study as last updated")
    }

    /// A national node that takes smaller batches than the gatherer sends answers 413;
    /// the gatherer halves its batches until they fit, and every record still arrives.
    func testANationalNodeWithASmallerBatchLimitStillReceivesEverything() async throws {
        let port = TestNode.fixedPortBase()
        let nationalData = Scratch.path("gw-national")
        let top = try Self.national(port: port, data: nationalData) { $0.index.maxBatchRecords = 300 }
        defer { top.stop() }
        let certs = top.certs
        let regional = try Self.regional(certs: certs, gatheringTo: port)
        defer { regional.stop() }
        let lines = (0..<1_000).map { i in
            "{\"patientToken\":\"\(Self.token)\",\"studyInstanceUID\":\"1.2.156.3.\(i)\",\"studyDate\":\"20241101\","
                + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
                + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
        }.joined(separator: "\n")
        let file = Scratch.path("gather")
        try lines.write(toFile: file, atomically: true, encoding: .utf8)
        let answer = top.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + file,
                                           "https://localhost:\(regional.port)/v1/index/studies"])
        XCTAssertEqual(answer.status, 200, answer.body)
        let nationalStore = try SQLiteIndexStore(path: nationalData + "/index.sqlite", readers: 1)
        var count = 0
        for _ in 0..<150 {
            count = try await nationalStore.count()
            if count >= 1_000 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertEqual(count, 1_000, "every record arrives in batches the national node takes")
    }

    /// A national node that lost studies is not refilled by a resend (a study sent again
    /// unchanged queues nothing), but by `imaging-gateway gather requeue` run at the
    /// region with its node stopped: every study of the unit arrives again.
    func testARequeuedStorageUnitRefillsANationalNodeThatLostIt() async throws {
        let port = TestNode.fixedPortBase()
        let nationalData = Scratch.path("gw-national")
        func national() throws -> TestNode { try Self.national(port: port, data: nationalData) }
        var top = try national()
        let certs = top.certs
        var regional = try Self.regional(certs: certs, gatheringTo: port)
        let regionalData = regional.gateway.config.dataDirectory
        let unit = "91610000MA6TG0001A"
        let file = Scratch.path("gather")
        try (0..<200).map { i in
            "{\"patientToken\":\"\(Self.token)\",\"studyInstanceUID\":\"1.2.156.4.\(i)\",\"studyDate\":\"20241101\","
                + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"\(unit)\","
                + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
        }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        func upload() -> (status: Int, body: String) {
            top.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + file,
                                  "https://localhost:\(regional.port)/v1/index/studies"])
        }
        let nationalStore = try SQLiteIndexStore(path: nationalData + "/index.sqlite", readers: 1)
        func nationalCount(reaches n: Int) async throws -> Int {
            var count = 0
            for _ in 0..<200 {
                count = try await nationalStore.count()
                if count >= n { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            return count
        }
        XCTAssertEqual(upload().status, 200)
        let gathered = try await nationalCount(reaches: 200)
        XCTAssertEqual(gathered, 200)

        top.stop()
        let lost = try await nationalStore.purgeTokens(keyVersion: 1)
        XCTAssertEqual(lost, 200, "the national node lost every study")
        top = try national()
        defer { top.stop() }
        let resent = upload()
        XCTAssertEqual(resent.status, 200, resent.body)
        XCTAssertTrue(resent.body.contains("\"updated\""), resent.body)
        try await Task.sleep(for: .seconds(1))
        let afterResend = try await nationalStore.count()
        XCTAssertEqual(afterResend, 0, "studies sent again unchanged are not queued again")

        regional.stop()
        let config = Scratch.path("gw-regional") + ".json"
        try "{\"region\":\"610000\",\"role\":\"regional\",\"dataDirectory\":\"\(regionalData)\",\"federation\":{\"gatherTo\":\"https://localhost:\(port)\"}}"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let requeue = TestProcess.run(TestProcess.built("imaging-gateway"),
                                      ["gather", "requeue", "--config", config, "--storage-unit", unit])
        XCTAssertEqual(requeue.status, 0, requeue.output)
        XCTAssertTrue(requeue.output.contains("queued 200 studies of \(unit)"), requeue.output)
        regional = try Self.regional(certs: certs, gatheringTo: port, dataDirectory: regionalData)
        defer { regional.stop() }
        let refilled = try await nationalCount(reaches: 200)
        XCTAssertEqual(refilled, 200, "every study of the unit arrived again")
    }

    /// The national node on `port`, its data in `data` (kept across restarts).
    private static func national(port: Int, data: String, configure: (inout GatewayConfig) -> Void = { _ in }) throws -> TestNode {
        try TestNode { c in
            c.region = "100000"
            c.role = "national"
            c.dataDirectory = data
            c.listen = ["127.0.0.1:\(port)"]
            configure(&c)
        }
    }

    /// A node of region 610000 with the national node's certificates, gathering to `port`.
    private static func regional(certs: String, gatheringTo port: Int, dataDirectory: String? = nil) throws -> TestNode {
        try TestNode { c in
            if let dataDirectory { c.dataDirectory = dataDirectory }
            c.region = "610000"
            c.tls.certificate = certs + "/node.pem"
            c.tls.privateKey = certs + "/node-key.pem"
            c.tls.clientCA = certs + "/ca.pem"
            c.federation.gatherTo = "https://localhost:\(port)"
        }
    }
}
