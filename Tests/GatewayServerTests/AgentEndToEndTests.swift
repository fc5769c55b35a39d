import ChildProcess
import Foundation
import GatewayAgent
import PatientTokens
import TestScratch
import XCTest

/// The binaries as a hospital and a clinic run them: `imaging-gateway serve --token-service`
/// and `gateway-agent`. 1 000 studies of 300 synthetic patients go up; each patient is found
/// by ID; then no ID, name or birth date is anywhere in the node's data directory — the
/// database, its WAL, the key file, the certificates, the server's debug log with its
/// access log of the token service.
final class AgentEndToEndTests: XCTestCase {
    private func built(_ name: String) -> String { TestProcess.built(name) }

    struct Patient {
        let residentID: String
        let name: String
        let birthDate: String
        let sex: String
    }

    /// Names from characters that appear nowhere else in the fixture, so a hit is a leak.
    static func patients(_ count: Int) -> [Patient] {
        let surnames = Array("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
        let given = Array("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华")
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        return (0..<count).map { i in
            let born = String(format: "19%02d%02d%02d", 40 + i % 50, i % 12 + 1, i % 28 + 1)
            let sequence = String(format: "%03d", (i * 7) % 1000)
            let seventeen = "610113" + born + sequence
            let sum = zip(seventeen, weights).reduce(0) { $0 + Int(String($1.0))! * $1.1 }
            let name = String(surnames[i % surnames.count]) + String(given[i % given.count])
                + (i % 3 == 0 ? String(given[(i / 3) % given.count]) : "")
            let male = (Int(String(sequence.last!))! % 2) == 1
            return Patient(residentID: seventeen + String(Array("10X98765432")[sum % 11]), name: name,
                           birthDate: born, sex: male ? "M" : "F")
        }
    }

    func testUploadAndLookupLeaveNoIdentifierOnTheNode() async throws {
        let work = Scratch.path("gw-agent-e2e")
        let data = work + "/node"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let port = TestNode.fixedPortBase()
        let server = try ChildProcess(built("imaging-gateway"), ["serve", "--data-dir", data, "--listen", "127.0.0.1:\(port)",
                                                                 "--plain-listen", "127.0.0.1:\(port + 1)", "--token-service",
                                                                 "--log-level", "debug"],
                                      stdout: .file(data + "/server.log"), stderr: .sameAsStdout)
        defer { if server.isRunning { server.terminate(); server.wait() } }
        XCTAssertTrue(waitReady(port + 1), "the node did not come up")

        let patients = Self.patients(300)
        var csv = "residentId,name,birthDate,sex,studyInstanceUID,studyDate,modalitiesInStudy,bodyPartExamined,"
            + "storageUnit,retrieveURL,region,institutionName\n"
        var expected: [Int: Set<String>] = [:]
        for i in 0..<1000 {
            let p = i % 300
            let date = String(format: "20%02d%02d%02d", 16 + i % 9, i % 12 + 1, i % 28 + 1)
            let uid = "1.2.156.600.\(i + 1)"
            expected[p, default: []].insert(uid)
            let patient = patients[p]
            csv += "\(patient.residentID),\(patient.name),\(patient.birthDate),\(patient.sex),\(uid),\(date),"
                + "\(["CT", "MR", "DX"][i % 3]),CHEST,91610000MA6TG0001A,https://pacs.example/dicomweb,610100,西安交通大学附属医院\n"
        }
        try csv.write(toFile: work + "/studies.csv", atomically: true, encoding: .utf8)

        let certs = data + "/dev-certs"
        for role in ["hospital", "clinic", "reader"] {
            let initialized = run(built("gateway-agent"), ["init", "--node", "https://127.0.0.1:\(port)",
                                  "--certificate", "\(certs)/\(role).pem", "--private-key", "\(certs)/\(role)-key.pem",
                                  "--trusted-ca", "\(certs)/ca.pem", "--token-certificate", "\(certs)/token-client.pem",
                                  "--token-private-key", "\(certs)/token-client-key.pem", "--output", "\(work)/\(role).json"])
            XCTAssertEqual(initialized.status, 0, initialized.output)
        }
        let upload = run(built("gateway-agent"), ["upload", "--config", work + "/hospital.json", work + "/studies.csv", "--json"])
        XCTAssertEqual(upload.status, 0, upload.output)
        let summary = try JSONDecoder().decode(UploadSummary.self, from: Data(upload.output.utf8))
        XCTAssertEqual(summary.accepted, 1000, upload.output)
        XCTAssertEqual(summary.rejected, 0)
        let rerun = run(built("gateway-agent"), ["upload", "--config", work + "/hospital.json", work + "/studies.csv", "--json"])
        XCTAssertEqual(try JSONDecoder().decode(UploadSummary.self, from: Data(rerun.output.utf8)).batchesResumed, 1,
                       "a rerun resumes after the acknowledged batch")

        let byCLI = run(built("gateway-agent"), ["lookup", "--config", work + "/clinic.json", "--resident-id",
                                                  patients[7].residentID, "--json"])
        XCTAssertEqual(byCLI.status, 0, byCLI.output)
        XCTAssertEqual(byCLI.output.components(separatedBy: "\"studyInstanceUID\"").count - 1, expected[7]!.count)
        let lookup = PatientLookup(config: try AgentConfig.load(path: work + "/clinic.json"))
        for (p, patient) in patients.enumerated() {
            let found = try await lookup.studies(of: try TokenInput.residentID(patient.residentID))
            XCTAssertEqual(Set(found.map(\.studyInstanceUID)), expected[p], "patient \(p)")
        }

        let agent = built("gateway-agent")
        // The repeat-examination check: patient 7 had four chest MRs in the last ten years, no CT.
        let repeatMR = run(agent, ["priors", "--config", work + "/clinic.json", "--resident-id", patients[7].residentID,
                                   "--modality", "MR", "--body-part", "chest", "--days", "3650", "--json"])
        XCTAssertEqual(repeatMR.status, 4, repeatMR.output)
        XCTAssertEqual(repeatMR.output.components(separatedBy: "\"studyInstanceUID\"").count - 1, expected[7]!.count, repeatMR.output)
        let noCT = run(agent, ["priors", "--config", work + "/clinic.json", "--resident-id", patients[7].residentID, "--modality", "CT"])
        XCTAssertEqual(noCT.status, 0, noCT.output)
        XCTAssertTrue(noCT.output.hasPrefix("none: 0 matching studies within 30 days"), noCT.output)

        // A remote read through the agent: requested by the clinic, taken by a reader
        // once the in-node AI stage has triaged it, kept alive, completed.
        let requested = run(agent, ["request-read", "--config", work + "/clinic.json", "1.2.156.600.8", "--priority", "HIGH",
                                    "--label", "chest", "--resident-id", patients[7].residentID])
        XCTAssertEqual(requested.status, 0, requested.output)
        let readUID = (try? JSONSerialization.jsonObject(with: Data(requested.output.utf8)) as? [String: Any])?["uid"] as? String ?? ""
        let unknown = run(agent, ["request-read", "--config", work + "/clinic.json", "1.2.156.600.99999"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.output.contains("study_not_found"), unknown.output)
        var claimed = run(agent, ["reads", "next", "--config", work + "/reader.json", "--label", "chest"])
        for _ in 0..<50 where claimed.status == 3 {
            try await Task.sleep(for: .milliseconds(100))
            claimed = run(agent, ["reads", "next", "--config", work + "/reader.json", "--label", "chest"])
        }
        XCTAssertEqual(claimed.status, 0, claimed.output)
        let held = (try? JSONSerialization.jsonObject(with: Data(claimed.output.utf8)) as? [String: Any]) ?? [:]
        XCTAssertEqual(held["uid"] as? String, readUID)
        let txn = held["transactionUID"] as? String ?? ""
        XCTAssertEqual(run(agent, ["reads", "heartbeat", "--config", work + "/reader.json", readUID, "--transaction", txn]).status, 0)
        let wrong = run(agent, ["reads", "heartbeat", "--config", work + "/reader.json", readUID, "--transaction", "1.2.3"])
        XCTAssertTrue(wrong.status == 2 && wrong.output.contains("wrong_transaction_uid"), wrong.output)
        let completed = run(agent, ["reads", "complete", "--config", work + "/reader.json", readUID, "--transaction", txn,
                                    "--report", "https://ris.example/reports/1"])
        XCTAssertEqual(completed.status, 0, completed.output)
        XCTAssertTrue(completed.output.contains("\"COMPLETED\"") && completed.output.contains("ris.example"), completed.output)
        XCTAssertEqual(run(agent, ["reads", "next", "--config", work + "/reader.json"]).status, 3, "nothing else waits")

        var needles: [String] = []
        for p in patients {
            let b = p.birthDate
            needles += [p.residentID, p.name, b, "\(b.prefix(4))-\(b.dropFirst(4).prefix(2))-\(b.suffix(2))"]
        }
        try needles.joined(separator: "\n").write(toFile: work + "/needles", atomically: true, encoding: .utf8)
        XCTAssertGreaterThan(grep(needles: work + "/needles", in: work + "/studies.csv").count, 0,
                             "the search finds identifiers where they are")
        XCTAssertEqual(grep(needles: work + "/needles", in: data), [], "identifiers on the running node")
        server.terminate()
        server.wait()
        let logText = try String(contentsOfFile: data + "/server.log", encoding: .utf8)
        XCTAssertTrue(logText.contains("/v1/tokens/evaluate"), "the access log saw the token service")
        XCTAssertEqual(grep(needles: work + "/needles", in: data), [], "identifiers on the stopped node")
    }

    /// Files under `path` holding any needle (grep -F, binary files as text).
    private func grep(needles: String, in path: String) -> [String] {
        let found = run("/usr/bin/env", ["grep", "-r", "-a", "-l", "-F", "-f", needles, path])
        return found.output.split(separator: "\n").map(String.init)
    }

    private func waitReady(_ plainPort: Int) -> Bool {
        for _ in 0..<100 {
            if run("/usr/bin/env", ["curl", "-sf", "http://127.0.0.1:\(plainPort)/readyz"]).status == 0 { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    private func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
        TestProcess.run(executable, arguments)
    }
}
