import Foundation
import GatewayServer
import ImagingIndex
import XCTest

/// The repeat-examination check over two regional nodes in this process: priors found
/// across regions, windows per modality, body part and exam item, `none`; the FHIR form;
/// then the supervision statistics with a suppressed small cell, as JSON and CSV.
final class PriorsAPITests: XCTestCase {
    static func token(_ p: Int) -> String { "v1:" + String(repeating: "P", count: 41) + "\(p % 10)" + "A" }

    var nodes: [TestNode] = []

    override func tearDown() {
        nodes.forEach { $0.stop() }
    }

    func day(_ daysAgo: Int) -> String {
        CivilDay(ImagingIndexToday.value)!.adding(days: -daysAgo).text
    }

    func record(_ p: Int, uid: String, modality: String, daysAgo: Int, bodyPart: String, region: String,
                examItem: String? = nil) -> String {
        "{\"patientToken\":\"\(Self.token(p))\",\"studyInstanceUID\":\"\(uid)\",\"studyDate\":\"\(day(daysAgo))\","
            + "\"modalitiesInStudy\":[\"\(modality)\"],\"bodyPartExamined\":\"\(bodyPart)\",\"storageUnit\":\"91610000MA6TG0001A\","
            + "\"retrieveURL\":\"https://pacs-\(region).example/dicomweb\",\"region\":\"\(region)\",\"institutionName\":\"H \(region)\""
            + (examItem.map { ",\"examItemCode\":\"\($0)\"" } ?? "") + "}"
    }

    func upload(_ node: TestNode, certs: TestNode, _ lines: [String]) {
        let r = certs.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", lines.joined(separator: "\n"),
                                        "https://localhost:\(node.port)/v1/index/studies"])
        XCTAssertEqual(r.status, 200, r.body)
    }

    func check(_ node: TestNode, _ p: Int, _ query: String, role: String = "clinic") -> [String: Any] {
        let r = node.curl(role, ["https://localhost:\(node.port)/v1/patients/\(Self.token(p))/priors?purpose=TREAT&\(query)"])
        XCTAssertEqual(r.status, 200, r.body)
        return (try? JSONSerialization.jsonObject(with: Data(r.body.utf8))) as? [String: Any] ?? [:]
    }

    func priorUIDs(_ answer: [String: Any]) -> [String] {
        ((answer["priors"] as? [[String: Any]]) ?? []).compactMap { ($0["study"] as? [String: Any])?["studyInstanceUID"] as? String }
    }

    func testPriorsAcrossRegionsThenTheSupervisionStatistics() throws {
        let base = TestNode.fixedPortBase()
        let a = try TestNode { c in
            c.region = "610000"
            c.listen = ["127.0.0.1:\(base)"]
            c.federation.peers = [GatewayConfig.PeerSettings(region: "110000", url: "https://localhost:\(base + 1)")]
        }
        nodes.append(a)
        let b = try TestNode { [certs = a.certs] c in
            c.region = "110000"
            c.listen = ["127.0.0.1:\(base + 1)"]
            c.tls.certificate = certs + "/node.pem"
            c.tls.privateKey = certs + "/node-key.pem"
            c.tls.clientCA = certs + "/ca.pem"
            c.federation.peers = [GatewayConfig.PeerSettings(region: "610000", url: "https://localhost:\(base)")]
        }
        nodes.append(b)

        // Patient 0: CT chest 12 days ago in region B and 40 days ago in A; MR head 50 days
        // ago; DX chest 20 days ago; CT abdomen 5 days ago with an exam item code.
        upload(b, certs: a, [record(0, uid: "1.2.156.80.1", modality: "CT", daysAgo: 12, bodyPart: "CHEST", region: "110100")])
        upload(a, certs: a, [record(0, uid: "1.2.156.80.2", modality: "CT", daysAgo: 40, bodyPart: "CHEST", region: "610100"),
                             record(0, uid: "1.2.156.80.3", modality: "MR", daysAgo: 50, bodyPart: "HEAD", region: "610100"),
                             record(0, uid: "1.2.156.80.4", modality: "DX", daysAgo: 20, bodyPart: "CHEST", region: "610100"),
                             record(0, uid: "1.2.156.80.5", modality: "CT", daysAgo: 5, bodyPart: "ABDOMEN", region: "610100",
                                    examItem: "250301001")])

        let ct = check(a, 0, "modality=CT&bodyPart=CHEST")
        XCTAssertEqual(ct["verdict"] as? String, "repeat-candidate")
        XCTAssertEqual(priorUIDs(ct), ["1.2.156.80.1"], "the 40-day-old CT is outside CT's 30 days")
        let prior = (ct["priors"] as? [[String: Any]])?.first
        XCTAssertEqual(prior?["ageDays"] as? Int, 12)
        XCTAssertEqual((prior?["study"] as? [String: Any])?["region"] as? String, "110100", "held in the other region")
        XCTAssertEqual((prior?["study"] as? [String: Any])?["retrieveURL"] as? String, "https://pacs-110100.example/dicomweb")
        XCTAssertEqual((ct["rule"] as? [String: Any])?["windowDays"] as? Int, 30)
        XCTAssertEqual(priorUIDs(check(a, 0, "modality=CT&bodyPart=CHEST&days=45")), ["1.2.156.80.1", "1.2.156.80.2"], "newest first")
        XCTAssertEqual(check(a, 0, "modality=CT&bodyPart=HEAD")["verdict"] as? String, "none")
        XCTAssertEqual(priorUIDs(check(a, 0, "modality=CT&bodyPart=HEAD&examItem=250301001")), ["1.2.156.80.5"])
        XCTAssertEqual(priorUIDs(check(a, 0, "modality=MR&bodyPart=HEAD")), ["1.2.156.80.3"], "MR's window is 60 days")
        XCTAssertEqual(check(a, 0, "modality=DX&bodyPart=CHEST")["verdict"] as? String, "none", "DX's window is 14 days")
        XCTAssertEqual(priorUIDs(check(a, 0, "modality=CT&bodyPart=CHEST&scope=local")), [], "scope local: not B's")
        XCTAssertEqual(check(a, 0, "modality=CT&bodyPart=CHEST", role: "hospital")["verdict"] as? String, "repeat-candidate")

        // Refusals.
        let path = "https://localhost:\(a.port)/v1/patients/\(Self.token(0))/priors"
        XCTAssertEqual(a.curl("clinic", [path + "?modality=CT"]).status, 400, "purpose required")
        XCTAssertEqual(a.curl("clinic", [path + "?purpose=TREAT"]).status, 400, "modality required")
        XCTAssertEqual(a.curl("clinic", [path + "?purpose=TREAT&modality=CT,MR"]).status, 400, "one modality")
        XCTAssertEqual(a.curl("clinic", [path + "?purpose=TREAT&modality=CT&days=0"]).status, 400)
        XCTAssertEqual(a.curl("operator", [path + "?purpose=TREAT&modality=CT"]).status, 403)

        // The FHIR form of the same check.
        let fhir = a.curl("clinic", ["https://localhost:\(a.port)/fhir/ImagingStudy?subject:identifier=\(Self.token(0))"
                                     + "&modality=CT&bodysite=CHEST&started=ge\(dashed(day(30)))&purpose=TREAT"])
        XCTAssertEqual(fhir.status, 200, fhir.body)
        XCTAssertTrue(fhir.body.contains("1.2.156.80.1") && !fhir.body.contains("1.2.156.80.2") && !fhir.body.contains("1.2.156.80.5"),
                      fhir.body)

        // Supervision: patients 1–6 each had a CT chest 10 days ago at A; all are checked
        // (six candidates), and five of them are scanned again today: a repeat each.
        // Patient 7 has nothing (none). Two patients' studies 90 days ago make a small cell.
        upload(a, certs: a, (1...6).map { record($0, uid: "1.2.156.81.\($0)", modality: "CT", daysAgo: 10, bodyPart: "CHEST", region: "610100") }
               + (8...9).map { record($0, uid: "1.2.156.83.\($0)", modality: "US", daysAgo: 90, bodyPart: "ABDOMEN", region: "610100") })
        for p in 1...6 { XCTAssertEqual(check(a, p, "modality=CT&bodyPart=CHEST")["verdict"] as? String, "repeat-candidate") }
        XCTAssertEqual(check(a, 7, "modality=CT&bodyPart=CHEST")["verdict"] as? String, "none")
        upload(a, certs: a, (1...5).map { record($0, uid: "1.2.156.82.\($0)", modality: "CT", daysAgo: 0, bodyPart: "CHEST", region: "610100") })

        let month = String(day(0).prefix(6)), old = String(day(90).prefix(6))
        let range = "from=\(old.prefix(4))-\(old.suffix(2))&to=\(month.prefix(4))-\(month.suffix(2))"
        let stats = a.curl("operator", ["https://localhost:\(a.port)/v1/supervision/repeats?\(range)"])
        XCTAssertEqual(stats.status, 200, stats.body)
        let rows = ((try? JSONSerialization.jsonObject(with: Data(stats.body.utf8))) as? [String: Any])?["rows"] as? [[String: Any]] ?? []
        let now = rows.first { $0["month"] as? String == "\(month.prefix(4))-\(month.suffix(2))" } ?? [:]
        XCTAssertEqual(now["priorChecks"] as? Int, 15, "eight checks of patient 0, six of 1–6, one of 7: \(stats.body)")
        XCTAssertEqual(now["repeatCandidates"] as? Int, 11, "five of patient 0's checks, six of 1–6: \(stats.body)")
        XCTAssertEqual(now["repeatStudies"] as? Int, 5, stats.body)
        let small = rows.first { $0["month"] as? String == "\(old.prefix(4))-\(old.suffix(2))" } ?? [:]
        XCTAssertEqual(small["studiesIndexed"] as? String, "<5", "two patients: suppressed. \(stats.body)")

        let csv = a.curl("operator", ["https://localhost:\(a.port)/v1/supervision/repeats?\(range)&format=csv"])
        XCTAssertEqual(csv.status, 200)
        let lines = csv.body.split(whereSeparator: \.isNewline).map(String.init)
        XCTAssertEqual(lines.first, "institution,month,studiesIndexed,priorChecks,repeatCandidates,repeatStudies")
        let fromJSON = rows.map { r in
            ["institution", "month", "studiesIndexed", "priorChecks", "repeatCandidates", "repeatStudies"]
                .map { "\(r[$0].map { "\($0)" } ?? "")" }.joined(separator: ",")
        }
        XCTAssertEqual(Array(lines.dropFirst()), fromJSON, "CSV and JSON agree")
        XCTAssertEqual(a.curl("clinic", ["https://localhost:\(a.port)/v1/supervision/repeats?\(range)"]).status, 403)
        XCTAssertEqual(a.curl("operator", ["https://localhost:\(a.port)/v1/supervision/repeats?from=2026-13&to=2026-12"]).status, 400)
    }

    private func dashed(_ d: String) -> String { "\(d.prefix(4))-\(d.dropFirst(4).prefix(2))-\(d.suffix(2))" }
}

/// Today as the node computes it (its local time zone): this process is the node's.
enum ImagingIndexToday {
    static var value: String {
        var now = time(nil)
        var t = tm()
        localtime_r(&now, &t)
        return CivilDay(year: Int(t.tm_year) + 1900, month: Int(t.tm_mon) + 1, day: Int(t.tm_mday)).text
    }
}
