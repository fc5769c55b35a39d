import ChildProcess
import Foundation
import TestScratch
import XCTest

/// The real binary: first start makes dev certificates, the operational routes answer
/// real clients, SIGTERM stops it cleanly.
final class ServeTests: XCTestCase {
    /// The executable built beside the test bundle (swift test builds every product).
    private var binary: String {
        let here = Bundle(for: Self.self).bundleURL
        return [here, here.deletingLastPathComponent()].map { $0.appendingPathComponent("imaging-gateway").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "imaging-gateway-not-built"
    }

    private func freePort() -> Int { TestNode.fixedPortBase() }

    private func curl(_ args: [String]) -> (status: Int32, out: String) {
        let r = try! ChildProcess.run("/usr/bin/env", ["curl", "-sS", "--http1.1", "-w", "\n%{http_code}"] + args)
        return (r.status, r.stdout)
    }

    /// `imaging-gateway serve` with these arguments and a plain listener on `plainPort`,
    /// once its `/readyz` answers there.
    private func serve(_ arguments: [String], plainPort: Int) throws -> ChildProcess {
        let p = try ChildProcess(binary, ["serve"] + arguments + ["--plain-listen", "127.0.0.1:\(plainPort)"], stderr: .pipe)
        var up = false
        for _ in 0..<100 where !up {
            Thread.sleep(forTimeInterval: 0.1)
            up = curl(["http://127.0.0.1:\(plainPort)/readyz"]).status == 0
        }
        XCTAssertTrue(up, "the node did not come up")
        return p
    }

    func testFirstStartServesAndStopsOnSIGTERM() throws {
        let data = Scratch.path("gw-serve")
        let tlsPort = freePort(), plainPort = tlsPort + 1
        let p = try serve(["--data-dir", data, "--listen", "127.0.0.1:\(tlsPort),[::1]:\(tlsPort)", "--region", "610000"],
                          plainPort: plainPort)
        let certs = data + "/dev-certs"
        for role in ["ca", "node", "hospital", "clinic", "reader", "ai-worker", "operator", "token-client"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(certs)/\(role).pem"), role)
        }
        let keyMode = try FileManager.default.attributesOfItem(atPath: certs + "/clinic-key.pem")[.posixPermissions] as? Int
        XCTAssertEqual(keyMode, 0o600)

        let health = curl(["--cacert", certs + "/ca.pem", "https://localhost:\(tlsPort)/healthz"])
        XCTAssertTrue(health.out.contains("\"region\":\"610000\""), health.out)
        XCTAssertTrue(health.out.hasSuffix("200"))
        let v6 = curl(["--cacert", certs + "/ca.pem", "https://[::1]:\(tlsPort)/healthz"])
        XCTAssertTrue(v6.out.hasSuffix("200"), "IPv6 listener: \(v6.out)")
        let asOperator = curl(["--cacert", certs + "/ca.pem", "--cert", certs + "/operator.pem", "--key",
                               certs + "/operator-key.pem", "https://localhost:\(tlsPort)/metrics"])
        XCTAssertTrue(asOperator.out.contains("gateway_http_requests_total"), asOperator.out)
        let asClinic = curl(["--cacert", certs + "/ca.pem", "--cert", certs + "/clinic.pem", "--key",
                             certs + "/clinic-key.pem", "https://localhost:\(tlsPort)/metrics"])
        XCTAssertTrue(asClinic.out.hasSuffix("403"), asClinic.out)
        let plain = curl(["http://127.0.0.1:\(plainPort)/metrics"])
        XCTAssertTrue(plain.out.contains("gateway_connections_open"), plain.out)
        let missing = curl(["http://127.0.0.1:\(plainPort)/nope"])
        XCTAssertEqual(missing.out, "{\"error\":{\"code\":\"not_found\",\"message\":\"No resource at this path.\"}}\n404")

        p.terminate()
        let stopped = Date()
        let status = p.wait()
        XCTAssertLessThan(Date().timeIntervalSince(stopped), 5)
        XCTAssertEqual(status, 0)
        let output = String(decoding: p.stderr!.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(output.contains("development certificates"), output)
        XCTAssertTrue(output.contains("stopped"), output)
    }

    /// While a node serves a data directory, a second node and the offline commands that
    /// open its store refuse it, naming the node's pid; once it has stopped they run. The
    /// audit commands read beside it without opening the store.
    func testARunningNodeOwnsItsDataDirectory() throws {
        let data = Scratch.path("gw-lock")
        let port = freePort()
        let node = try serve(["--data-dir", data, "--listen", "127.0.0.1:\(port)"], plainPort: port + 1)
        let config = data + "/gathering.json"
        try "{\"dataDirectory\":\"\(data)\",\"federation\":{\"gatherTo\":\"https://localhost:9\"}}"
            .write(toFile: config, atomically: true, encoding: .utf8)
        for args in [["keys", "create", "--data-dir", data], ["keys", "rotate", "--data-dir", data],
                     ["keys", "retire", "--data-dir", data, "--version", "1"]] {
            XCTAssertEqual(try ChildProcess.run(binary, args).status, 0, "\(args) works beside a running node")
        }
        let refused = "\(data) is in use by process \(node.pid)"
        let second = try ChildProcess(binary, ["serve", "--data-dir", data, "--listen", "127.0.0.1:\(port + 2)"], stderr: .pipe)
        for _ in 0..<100 where second.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(second.isRunning, "a second node serves the same directory")
        second.terminate()
        XCTAssertEqual(second.wait(), 1)
        let secondOutput = String(decoding: second.stderr!.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(secondOutput.contains(refused), secondOutput)
        let storeCommands = [["keys", "purge", "--data-dir", data, "--version", "1"],
                             ["gather", "requeue", "--config", config, "--storage-unit", "91610000MA6TG0001A"]]
        for args in storeCommands {
            let r = try ChildProcess.run(binary, args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(refused), "\(args): \(r.stderr)")
        }
        let certs = data + "/dev-certs"
        let token = "v1:" + String(repeating: "A", count: 43)
        let lookup = curl(["--cacert", certs + "/ca.pem", "--cert", certs + "/clinic.pem", "--key", certs + "/clinic-key.pem",
                           "https://localhost:\(port)/v1/patients/\(token)/studies?purpose=TREAT"])
        XCTAssertTrue(lookup.out.hasSuffix("200"), lookup.out)
        let verifyLive = try ChildProcess.run(binary, ["audit", "verify", "--data-dir", data])
        XCTAssertEqual(verifyLive.status, 0, "verify reads beside a running node: \(verifyLive.stdout) \(verifyLive.stderr)")
        XCTAssertTrue(verifyLive.stdout.hasPrefix("ok: "), verifyLive.stdout)
        XCTAssertFalse(verifyLive.stdout.hasPrefix("ok: 0 events"), "the lookup's leaf is committed before its answer")
        let exported = data + "/export.jsonl"
        let exportLive = try ChildProcess.run(binary, ["audit", "export", "--data-dir", data, "--from", "2000-01-01",
                                                       "--to", "2999-12-31", "--output", exported])
        XCTAssertEqual(exportLive.status, 0, exportLive.stderr)
        let lines = try String(contentsOfFile: exported, encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.contains("\"resourceType\":\"AuditEvent\"") && $0.contains("\"code\":\"TREAT\"") }, "\(lines)")

        node.terminate()
        XCTAssertEqual(node.wait(), 0)
        let purgeAfter = try ChildProcess.run(binary, ["keys", "purge", "--data-dir", data, "--version", "1"])
        XCTAssertEqual(purgeAfter.status, 0, purgeAfter.stderr)
        XCTAssertTrue(purgeAfter.stdout.contains("deleted 0 studies"), purgeAfter.stdout)
        let requeueAfter = try ChildProcess.run(binary, ["gather", "requeue", "--config", config, "--storage-unit", "91610000MA6TG0001A"])
        XCTAssertEqual(requeueAfter.status, 0, requeueAfter.stderr)
        XCTAssertTrue(requeueAfter.stdout.contains("queued 0 studies"), requeueAfter.stdout)
        let verifyAfter = try ChildProcess.run(binary, ["audit", "verify", "--data-dir", data])
        XCTAssertEqual(verifyAfter.status, 0, verifyAfter.stdout + verifyAfter.stderr)
        XCTAssertTrue(verifyAfter.stdout.hasPrefix("ok: "), verifyAfter.stdout)
    }

    func testBadConfigExitsWithAClearMessage() throws {
        let r = try ChildProcess.run(binary, ["serve", "--region", "abc"])
        XCTAssertNotEqual(r.status, 0)
        let text = r.stderr
        XCTAssertTrue(text.contains("six-digit region code"), text)
    }
}
