import Foundation
import GatewayServer
import Synchronization
import TestScratch
import XCTest

/// `imaging-gateway backup` beside a node taking uploads: the copy starts a node that has
/// every study acknowledged before the backup began, passes `audit verify`, keeps the
/// keys as they were, and has a new outbox epoch.
final class BackupTests: XCTestCase {
    static let token = "v1:" + String(repeating: "B", count: 42) + "Q"

    private static func upload(_ node: TestNode, batch: Int, count: Int) -> Int {
        let lines = (0..<count).map { i in
            "{\"patientToken\":\"\(Self.token)\",\"studyInstanceUID\":\"1.2.156.9.\(batch).\(i)\",\"studyDate\":\"20241101\","
                + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
                + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
        }.joined(separator: "\n")
        let file = Scratch.path("backup-batch")
        try? lines.write(toFile: file, atomically: true, encoding: .utf8)
        return node.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + file,
                                      "\(node.baseURL)/v1/index/studies"]).status
    }

    private func python(_ script: String, _ arguments: [String]) -> String {
        TestProcess.run("/usr/bin/python3", ["-c", script] + arguments).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func epoch(_ data: String) -> String {
        python("import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT value FROM node_meta WHERE key = 'outbox_epoch'\").fetchone()[0])",
               [data + "/index.sqlite"])
    }

    func testACopyTakenWhileUploadsGoOnStartsANodeWithEverythingAcknowledgedBefore() throws {
        let node = try TestNode()
        let data = node.gateway.config.dataDirectory
        for batch in 0..<3 { XCTAssertEqual(Self.upload(node, batch: batch, count: 100), 200) }
        XCTAssertEqual(node.curl("clinic", ["\(node.baseURL)/v1/patients/\(Self.token)/studies?purpose=TREAT"]).status, 200)
        let stop = Atomic(false)
        let acknowledged = Atomic(300)
        let uploading = DispatchGroup()
        DispatchQueue.global().async(group: uploading) {
            for batch in 3..<15 where !stop.load(ordering: .relaxed) {
                if Self.upload(node, batch: batch, count: 50) == 200 { acknowledged.add(50, ordering: .relaxed) }
            }
        }
        while acknowledged.load(ordering: .relaxed) < 400 { usleep(1_000) }
        // What `serve` holds while it runs (the node here runs inside the test process).
        let lock = open(data + "/node.lock", O_RDWR | O_CREAT, 0o600)
        XCTAssertEqual(flock(lock, LOCK_EX | LOCK_NB), 0)
        let copy = Scratch.path("gw-backup")
        let gateway = TestProcess.built("imaging-gateway")
        let before = acknowledged.load(ordering: .relaxed)
        let backup = TestProcess.run(gateway, ["backup", "--data-dir", data, "--to", copy])
        stop.store(true, ordering: .relaxed)
        uploading.wait()
        close(lock)
        node.stop()
        XCTAssertEqual(backup.status, 0, backup.output)
        XCTAssertTrue(backup.output.contains("from the running node"), backup.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: copy + ".partial"))
        let again = TestProcess.run(gateway, ["backup", "--data-dir", data, "--to", copy])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("exists"), again.output)

        XCTAssertNotEqual(epoch(copy), epoch(data), "a restored node's batches must not reuse the original's idempotency keys")
        XCTAssertEqual(epoch(copy).count, 16)
        for key in ["audit-key.pem", "dev-certs/ca.pem", "dev-certs/node-key.pem"] {
            XCTAssertEqual(FileManager.default.contents(atPath: copy + "/" + key), FileManager.default.contents(atPath: data + "/" + key), key)
        }
        let mode = try FileManager.default.attributesOfItem(atPath: copy + "/audit-key.pem")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)

        let verify = TestProcess.run(gateway, ["audit", "verify", "--data-dir", copy])
        XCTAssertEqual(verify.status, 0, verify.output)
        let restored = try TestNode { $0.dataDirectory = copy }
        defer { restored.stop() }
        let found = restored.curl("clinic", ["\(restored.baseURL)/v1/patients/\(Self.token)/studies?purpose=TREAT&limit=1000"])
        XCTAssertEqual(found.status, 200)
        let studies = (try JSONSerialization.jsonObject(with: Data(found.body.utf8)) as? [String: Any])?["studies"] as? [Any]
        XCTAssertGreaterThanOrEqual(studies?.count ?? 0, before, "every study acknowledged before the backup began")
        XCTAssertTrue(backup.output.contains("into \(copy): \(studies?.count ?? 0) studies"), backup.output)

        // With the node stopped the command holds the directory's lock while it copies.
        let stopped = TestProcess.run(gateway, ["backup", "--data-dir", data, "--to", Scratch.path("gw-backup-stopped")])
        XCTAssertEqual(stopped.status, 0, stopped.output)
        XCTAssertFalse(stopped.output.contains("running"), stopped.output)
    }
}
