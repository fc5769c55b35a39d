import ChildProcess
import Foundation
import GatewayNet
import ImagingIndex
import IndexStore
import TestScratch
import XCTest

/// Nothing acknowledged is lost: a node killed with SIGKILL in the middle of a stream of
/// uploads has, after restart, every record it answered 200 for, in a sound database.
final class DurabilityTests: XCTestCase {
    private var binary: String {
        let here = Bundle(for: Self.self).bundleURL
        return [here, here.deletingLastPathComponent()].map { $0.appendingPathComponent("imaging-gateway").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "imaging-gateway-not-built"
    }

    private func start(_ data: String, port: Int) throws -> ChildProcess {
        try ChildProcess(binary, ["serve", "--data-dir", data, "--listen", "127.0.0.1:\(port)", "--log-level", "error"],
                         stderr: .discard)
    }

    func testSIGKILLDuringUploadsLosesNothingAcknowledged() async throws {
        let data = Scratch.path("gw-kill")
        let port = TestNode.fixedPortBase()
        var server = try start(data, port: port)
        let certs = data + "/dev-certs"
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: certs + "/hospital-key.pem") { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(300))
        let tls = try TLSContext(configuration: TLSConfiguration(certificateChainPath: certs + "/hospital.pem",
                                                                 privateKeyPath: certs + "/hospital-key.pem",
                                                                 trustedCAPath: certs + "/ca.pem"), server: false)
        let client = HTTPClient(configuration: HTTPClientConfiguration(tls: tls))
        let url = "https://localhost:\(port)/v1/index/studies"
        let acknowledged = Acknowledged()

        let uploaders = (0..<4).map { worker in
            Task {
                var batch = 0
                while !Task.isCancelled {
                    batch += 1
                    let uids = (0..<50).map { "1.2.156.9.\(worker).\(batch).\($0)" }
                    let body = uids.map { uid in
                        "{\"patientToken\":\"v1:\(String(repeating: "B", count: 42))A\",\"studyInstanceUID\":\"\(uid)\","
                            + "\"studyDate\":\"20241122\",\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
                            + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
                    }.joined(separator: "\n")
                    let request = HTTPRequest(method: "POST", target: "/",
                                              headers: HTTPHeaders([("Content-Type", "application/x-ndjson")]), body: Array(body.utf8))
                    guard let response = try? await client.execute(request, url: url, deadline: .now + .seconds(5)) else { return }
                    if response.status == 200 { acknowledged.add(uids) }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(1500))
        server.signal(SIGKILL)
        server.wait()
        uploaders.forEach { $0.cancel() }
        for u in uploaders { await u.value }
        let acked = acknowledged.all
        XCTAssertGreaterThan(acked.count, 500, "the stream was running when the node died")

        server = try start(data, port: port)
        defer { server.terminate(); server.wait() }
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertTrue(server.isRunning, "the node restarts on the database it was killed over")
        let store = try SQLiteIndexStore(path: data + "/index.sqlite", readers: 1)
        let integrity = try await store.integrityCheck()
        XCTAssertEqual(integrity, "ok")
        var missing = 0
        for chunk in stride(from: 0, to: acked.count, by: 500) {
            var q = StudyQuery()
            q.studyInstanceUIDs = Array(acked[chunk..<min(chunk + 500, acked.count)])
            q.limit = 1000
            let found = try await store.query(q)
            missing += q.studyInstanceUIDs.count - found.count
        }
        XCTAssertEqual(missing, 0, "every acknowledged record survives SIGKILL")
    }
}

final class Acknowledged: @unchecked Sendable {
    private let lock = NSLock()
    private var uids: [String] = []

    func add(_ more: [String]) { lock.withLock { uids += more } }
    var all: [String] { lock.withLock { uids } }
}
