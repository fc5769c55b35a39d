import ChildProcess
import Foundation
import GatewayServer
import Logging
import TestScratch
import XCTest

/// The native index API over mTLS with curl: upload as a hospital, look up as a clinic.
final class IndexAPITests: XCTestCase {
    nonisolated(unsafe) static var node: TestNode!
    static var port: Int { node.port }
    static var certs: String { node.certs }
    static let org = "91610000MA6TG0001A"
    static func token(_ seed: Int) -> String {
        "v1:" + Data((0..<32).map { UInt8(($0 * 5 + seed) % 256) }).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
    static let token = token(0)
    /// The lookup test's own patient, so other tests' uploads don't show up in it.
    static let looked = token(1)

    override class func setUp() { node = try! TestNode { $0.index.maxBatchRecords = 50 } }
    override class func tearDown() { node.stop() }

    static func record(_ n: Int, storage: String = org, extra: String = "", patient: String = token) -> String {
        "{\"patientToken\":\"\(patient)\",\"studyInstanceUID\":\"1.2.156.7.\(n)\",\"studyDate\":\"2024110\(n % 9 + 1)\","
            + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"\(storage)\",\"retrieveURL\":\"https://pacs.example/dicomweb\","
            + "\"region\":\"610100\"\(extra)}"
    }

    private func curl(_ role: String, _ args: [String]) -> (status: Int, body: String) {
        Self.node.curl(role, args)
    }

    private func upload(_ body: String, role: String = "hospital", type: String = "application/x-ndjson",
                        headers: [String] = [], gzip: Bool = false) throws -> (status: Int, body: String) {
        let file = Scratch.path("upload")
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        var args = ["-H", "Content-Type: \(type)"] + headers.flatMap { ["-H", $0] }
        if gzip {
            XCTAssertEqual(try ChildProcess.run("/usr/bin/env", ["gzip", "-f", file]).status, 0)
            args += ["-H", "Content-Encoding: gzip", "--data-binary", "@\(file).gz"]
        } else {
            args += ["--data-binary", "@\(file)"]
        }
        return curl(role, args + ["https://localhost:\(Self.port)/v1/index/studies"])
    }

    private func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    func testUploadGzipNDJSONWithPerRecordResultsThenLookUp() throws {
        let p = Self.looked
        let lines = [Self.record(1, patient: p), Self.record(2, patient: p),
                     Self.record(3, extra: ",\"PatientName\":\"张三\"", patient: p),
                     Self.record(4, storage: "12610000435200100J", patient: p), "not json", Self.record(5, patient: p)]
        let r = try upload(lines.joined(separator: "\n"), gzip: true)
        XCTAssertEqual(r.status, 202, r.body)
        let body = json(r.body)
        XCTAssertEqual(body["stored"] as? Int, 3)
        XCTAssertEqual(body["rejected"] as? Int, 3)
        let results = body["results"] as? [[String: Any]] ?? []
        XCTAssertEqual(results.map { $0["status"] as? String }, ["accepted", "accepted", "rejected", "rejected", "rejected", "accepted"])
        let codes = results.map { (($0["errors"] as? [[String: Any]])?.first?["code"] as? String) ?? "" }
        XCTAssertEqual(codes, ["", "", "plain-identifier", "forbidden-storage-unit", "invalid-json", ""])
        XCTAssertFalse(r.body.contains("张三"), "an identifier is never echoed")

        let again = try upload(Self.record(1, patient: p))
        XCTAssertEqual(again.status, 200)
        XCTAssertTrue(again.body.contains("\"updated\""), again.body)

        let found = curl("clinic", ["https://localhost:\(Self.port)/v1/patients/\(p)/studies?purpose=TREAT&modality=CT"])
        XCTAssertEqual(found.status, 200, found.body)
        let studies = json(found.body)["studies"] as? [[String: Any]] ?? []
        XCTAssertEqual(Set(studies.compactMap { $0["studyInstanceUID"] as? String }), ["1.2.156.7.1", "1.2.156.7.2", "1.2.156.7.5"])
        let ranged = curl("clinic", ["https://localhost:\(Self.port)/v1/patients/\(p)/studies?purpose=TREAT&from=2024-11-03&to=20241130"])
        XCTAssertEqual((json(ranged.body)["studies"] as? [Any])?.count, 2, ranged.body)
    }

    /// With auditing off a lookup is answered on its connection's loop without a task
    /// (`IndexRoutes.patientStudiesAtOnce`): byte for byte what an audited node answers,
    /// refusals included.
    func testAnUnauditedNodeAnswersLookupsAsAnAuditedOneDoes() throws {
        let quiet = try TestNode { $0.audit.enabled = false }
        defer { quiet.stop() }
        let p = Self.token(7)
        let file = Scratch.path("upload")
        try (71...73).map { Self.record($0, patient: p) }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        for node in [Self.node!, quiet] {
            let r = node.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@\(file)",
                                           "\(node.baseURL)/v1/index/studies"])
            XCTAssertEqual(r.status, 200, r.body)
        }
        for path in ["\(p)/studies?purpose=TREAT", "\(p)/studies?purpose=TREAT&limit=2&offset=1", "\(p)/studies?purpose=TREAT&modality=MR",
                     "\(p)/studies?purpose=TREAT&from=2024-11-02", "nope/studies?purpose=TREAT", "\(p)/studies"] {
            let audited = Self.node.curl("clinic", ["\(Self.node.baseURL)/v1/patients/\(path)"])
            let unaudited = quiet.curl("clinic", ["\(quiet.baseURL)/v1/patients/\(path)"])
            XCTAssertEqual(unaudited.status, audited.status, path)
            XCTAssertEqual(unaudited.body, audited.body, path)
        }
    }

    func testIdempotencyKeyMakesARetryANoOp() throws {
        let key = "batch-\(UUID().uuidString)"
        let first = try upload(Self.record(7), headers: ["Idempotency-Key: \(key)"])
        XCTAssertEqual(first.status, 200)
        XCTAssertTrue(first.body.contains("\"accepted\""), first.body)
        let retry = try upload(Self.record(7), headers: ["Idempotency-Key: \(key)"])
        XCTAssertEqual(retry.status, 200)
        XCTAssertEqual(retry.body, first.body, "the same answer, not 'updated'")
        let other = try upload(Self.record(9), headers: ["Idempotency-Key: \(key)"])
        XCTAssertEqual(other.status, 422, "the same key for another batch is refused")
        XCTAssertTrue(other.body.contains("idempotency_key_reused"), other.body)
    }

    func testBadRequestsAreRefusedWhole() throws {
        XCTAssertEqual(try upload(Self.record(1), role: "clinic").status, 403)
        XCTAssertEqual(try upload("[1,", type: "application/json").status, 400)
        XCTAssertEqual(try upload(Self.record(1), type: "text/csv").status, 415)
        XCTAssertEqual(try upload("\n\n").status, 400)
        let big = (0..<51).map { Self.record($0) }.joined(separator: "\n")
        let tooMany = try upload(big)
        XCTAssertEqual(tooMany.status, 413)
        XCTAssertTrue(tooMany.body.contains("batch_too_large"))
        let array = try upload("[" + Self.record(8) + "]", type: "application/json")
        XCTAssertEqual(array.status, 200, array.body)
    }

    func testQidoRefusesWhatItDoesNotSupport() {
        let base = "https://localhost:\(Self.port)/dicomweb/studies"
        func code(_ query: String) -> String {
            let r = curl("clinic", [base + "?" + query])
            return "\(r.status) " + ((json(r.body)["error"] as? [String: Any])?["code"] as? String ?? "")
        }
        XCTAssertEqual(code("PatientID=\(Self.token)"), "400 purpose_required")
        XCTAssertEqual(code("PatientName=Zhang*&purpose=TREAT"), "400 unsupported_key")
        XCTAssertEqual(code("PatientID=v1:*&purpose=TREAT"), "400 wildcard_not_supported")
        XCTAssertEqual(code("ModalitiesInStudy=CT&purpose=TREAT"), "400 search_too_broad")
        XCTAssertEqual(code("StudyDate=20241101-&ModalitiesInStudy=CT&purpose=TREAT"), "400 search_too_broad")
        XCTAssertEqual(code("StudyDate=2024110&purpose=TREAT&PatientID=\(Self.token)"), "400 invalid_date")
        XCTAssertEqual(code("PatientID=\(Self.token)&fuzzymatching=true&purpose=TREAT"), "400 fuzzymatching_not_supported")
        XCTAssertEqual(code("PatientID=\(Self.token)&includefield=00100010x&purpose=TREAT"), "400 unsupported_includefield")
        // A name the node does not know is quoted back only when it cannot be an identifier.
        let named = curl("clinic", [base + "?Modality=CT&purpose=TREAT"])
        XCTAssertTrue(named.body.contains("'Modality' is not a supported match key"), named.body)
        for query in ["110101199003077777=1&purpose=TREAT", "PatientID=\(Self.token)&includefield=11010119900307777X&purpose=TREAT"] {
            let r = curl("clinic", [base + "?" + query])
            XCTAssertEqual(r.status, 400)
            XCTAssertFalse(r.body.contains("1101011990030777"), r.body)
            XCTAssertTrue(r.body.contains("(a name not shown)"), r.body)
        }
        let empty = curl("clinic", [base + "?PatientID=v1:" + String(repeating: "A", count: 43) + "&purpose=TREAT"])
        XCTAssertEqual(empty.status, 204)
        XCTAssertEqual(empty.body, "")
        let tagForm = curl("clinic", [base + "?00100020=\(Self.token)&purpose=TREAT&limit=1"])
        XCTAssertEqual(tagForm.status, 200, tagForm.body)
        XCTAssertEqual((try? JSONSerialization.jsonObject(with: Data(tagForm.body.utf8)) as? [Any])?.count, 1)
    }

    /// A PatientID search this node answers alone: a page as long as the limit may not be
    /// all, and a `Warning` says this region's answer is partial; a shorter page says
    /// nothing; a region the node does not know is 404.
    func testQidoByPatientSaysWhenThisRegionsPageIsPartial() throws {
        let p = Self.token(2)
        let r = try upload((11...13).map { Self.record($0, patient: p) }.joined(separator: "\n"))
        XCTAssertEqual(r.status, 200, r.body)
        let base = "https://localhost:\(Self.port)/dicomweb/studies?PatientID=\(p)&purpose=TREAT"
        let full = curl("clinic", ["-D", "-", base + "&limit=2"])
        XCTAssertTrue(full.body.contains("Warning: 299 imaging-gateway \"region 000000: partial\""), full.body)
        XCTAssertEqual(full.body.components(separatedBy: "\"0020000D\"").count - 1, 2, full.body)
        let all = curl("clinic", ["-D", "-", base])
        XCTAssertTrue(all.body.hasPrefix("HTTP/1.1 200"), all.body)
        XCTAssertFalse(all.body.contains("Warning:"), all.body)
        XCTAssertEqual(all.body.components(separatedBy: "\"0020000D\"").count - 1, 3, all.body)
        XCTAssertEqual(curl("clinic", [base + "&scope=region:999999"]).status, 404)
    }

    func testLookupNeedsPurposeValidTokenAndRole() {
        let base = "https://localhost:\(Self.port)/v1/patients/\(Self.token)/studies"
        let noPurpose = curl("clinic", [base])
        XCTAssertEqual(noPurpose.status, 400)
        XCTAssertTrue(noPurpose.body.contains("purpose_required"), noPurpose.body)
        XCTAssertEqual(curl("clinic", ["https://localhost:\(Self.port)/v1/patients/11010519491231002X/studies?purpose=TREAT"]).status, 400)
        XCTAssertEqual(curl("clinic", [base + "?purpose=TREAT&colour=red"]).status, 400)
        XCTAssertEqual(curl("clinic", [base + "?purpose=TREAT&from=2024-02-30"]).status, 400)
        XCTAssertEqual(curl("hospital", [base + "?purpose=TREAT"]).status, 403)
        XCTAssertEqual(curl("reader", [base + "?purpose=TREAT"]).status, 200)
    }
}
