import ChildProcess
import Foundation
import TestScratch
import XCTest

/// The four real processes of Benchmarks/dev-cluster.sh: an upload in one region is found
/// from another through each lookup interface; with the national node stopped (SIGSTOP)
/// a lookup answers with the local part within the deadline and says `timeout`.
final class DevClusterTests: XCTestCase {
    func testUploadInOneRegionFoundFromAnotherAndAStalledNationalNode() throws {
        let dir = Scratch.path("gw-cluster")
        let script = TestNode.repoRoot + "/Benchmarks/dev-cluster.sh"
        let env = ["DIR=\(dir)", "BIN=\(TestProcess.built("imaging-gateway"))"]
        let started = TestProcess.run("/usr/bin/env", env + ["bash", script, "start"])
        defer { _ = TestProcess.run("/usr/bin/env", env + ["bash", script, "stop"]) }
        XCTAssertEqual(started.status, 0, started.output)
        let certs = dir + "/national/dev-certs"
        func curl(_ role: String, _ args: [String]) -> (status: Int, body: String) {
            TestProcess.curl(certs: certs, role, ["--max-time", "10"] + args)
        }
        XCTAssertTrue(curl("clinic", ["https://localhost:9443/healthz"]).body.contains("\"role\":\"national\""))
        let token = "v1:" + String(repeating: "D", count: 42) + "Q"
        let record = "{\"patientToken\":\"\(token)\",\"studyInstanceUID\":\"1.2.156.11.1\",\"studyDate\":\"20241101\","
            + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
            + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
        XCTAssertEqual(curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", record,
                                         "https://localhost:9444/v1/index/studies"]).status, 200)
        var found = false
        for _ in 0..<50 where !found {
            Thread.sleep(forTimeInterval: 0.1)
            found = curl("clinic", ["https://localhost:9445/v1/patients/\(token)/studies?purpose=TREAT"]).body.contains("1.2.156.11.1")
        }
        XCTAssertTrue(found, "gathered to the national node and found from region 110000")
        XCTAssertTrue(curl("clinic", ["https://localhost:9446/dicomweb/studies?PatientID=\(token)&purpose=TREAT"]).body
            .contains("1.2.156.11.1"), "through QIDO-RS from region 440000")
        XCTAssertTrue(curl("reader", ["https://localhost:9445/fhir/ImagingStudy?subject:identifier=\(token)&purpose=TREAT"]).body
            .contains("1.2.156.11.1"), "through FHIR")

        let national = try String(contentsOfFile: dir + "/national.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(kill(pid_t(national)!, SIGSTOP), 0)
        defer { kill(pid_t(national)!, SIGCONT) }
        let begun = Date()
        let local = curl("clinic", ["https://localhost:9444/v1/patients/\(token)/studies?purpose=TREAT"])
        let elapsed = Date().timeIntervalSince(begun)
        XCTAssertEqual(local.status, 200, local.body)
        XCTAssertTrue(local.body.contains("\"region\":\"100000\",\"status\":\"timeout\""), local.body)
        XCTAssertTrue(local.body.contains("1.2.156.11.1"), "the local part")
        // 800 ms deadline + 50 ms, plus curl's own start and handshake on a busy machine.
        XCTAssertLessThan(elapsed, 0.85 + 0.4, "answered within the deadline")
    }

    /// SIGKILL of the regional node in the middle of a stream of uploads: after it is
    /// started again, the national node holds exactly what the regional node stored.
    func testKilledRegionalNodeLosesNoOutboxRecord() throws {
        let dir = Scratch.path("gw-cluster")
        let script = TestNode.repoRoot + "/Benchmarks/dev-cluster.sh"
        let binary = TestProcess.built("imaging-gateway")
        let env = ["DIR=\(dir)", "BIN=\(binary)"]
        XCTAssertEqual(TestProcess.run("/usr/bin/env", env + ["bash", script, "start"]).status, 0)
        defer { _ = TestProcess.run("/usr/bin/env", env + ["bash", script, "stop"]) }
        let certs = dir + "/national/dev-certs"
        func curl(_ role: String, _ args: [String]) -> (status: Int, body: String) {
            TestProcess.curl(certs: certs, role, ["--max-time", "10"] + args)
        }
        let token = "v1:" + String(repeating: "K", count: 42) + "Q"
        func upload(_ batch: Int) -> Int {
            let lines = (0..<200).map { i in
                "{\"patientToken\":\"\(token)\",\"studyInstanceUID\":\"1.2.156.12.\(batch).\(i)\",\"studyDate\":\"20241101\","
                    + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
                    + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
            }.joined(separator: "\n")
            let file = dir + "/batch-\(batch)"
            try? lines.write(toFile: file, atomically: true, encoding: .utf8)
            return curl("hospital", ["-H", "Content-Type: application/x-ndjson", "-H", "Idempotency-Key: k\(batch)",
                                     "--data-binary", "@" + file, "https://localhost:9444/v1/index/studies"]).status
        }
        func count(at port: Int) -> Int {
            var total = 0
            while true {
                let page = curl("clinic", ["https://localhost:\(port)/v1/patients/\(token)/studies?purpose=TREAT&scope=local&limit=1000&offset=\(total)"])
                let n = (try? JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any])?["count"] as? Int ?? 0
                total += n
                if n < 1000 { return total }
            }
        }
        for batch in 0..<10 { XCTAssertEqual(upload(batch), 200) }
        let regionalPID = pid_t(try String(contentsOfFile: dir + "/610000.pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines))!
        XCTAssertEqual(kill(regionalPID, SIGKILL), 0, "killed while its outbox is still sending")
        XCTAssertTrue(Self.waitUntilGone(regionalPID, seconds: 120), "the killed node went away")
        let restarted = try ChildProcess(binary, ["serve", "--config", dir + "/610000.json"], stdout: .discard, stderr: .discard)
        defer { restarted.terminate(); restarted.wait() }
        var up = false
        for _ in 0..<100 where !up {
            Thread.sleep(forTimeInterval: 0.1)
            up = curl("clinic", ["https://localhost:9444/healthz"]).status == 200
        }
        XCTAssertTrue(up)
        for batch in 10..<20 { XCTAssertEqual(upload(batch), 200) }
        var national = 0
        for _ in 0..<150 where national < 4_000 {
            Thread.sleep(forTimeInterval: 0.2)
            national = count(at: 9443)
        }
        XCTAssertEqual(count(at: 9444), 4_000, "the regional node kept every acknowledged upload")
        XCTAssertEqual(national, 4_000, "the national node holds exactly what the region stored")
    }

    /// A SIGKILLed process is not gone at once: it lingers while one of its threads
    /// finishes a system call the kernel does not interrupt (an `fdatasync` on a busy disk),
    /// its data directory still locked and its port still open. Once every thread has
    /// exited both are released. Seen in CI: the restart, started the moment `kill`
    /// returned, found the directory still locked and refused to start, and was never tried
    /// again; and again (session 26) when only the main thread was checked: it shows `Z`
    /// as soon as it has exited itself, while another thread may still be in its sync and
    /// the process's files, the lock among them, still open.
    static func waitUntilGone(_ pid: pid_t, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return true }
            let running = threads.contains { thread in
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/stat", encoding: .utf8),
                      let name = stat.lastIndex(of: ")") else { return false }
                return stat[name...].dropFirst(2).first != "Z"
            }
            if !running { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }
}
