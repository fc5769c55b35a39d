import ChildProcess
import Foundation
import ImagingIndex
import RecordFixtures
import TestScratch
import XCTest

/// The table of bad records (`BadRecords.cases`, one bad field each) uploaded in one batch
/// with good records between them, over mTLS with curl: each bad record is refused with its
/// own code on its own field, and every good one is stored and found.
final class ValidationBatchTests: XCTestCase {
    func testEveryBadRecordIsRefusedWithItsCodeWhileTheGoodOnesInTheBatchAreStored() throws {
        let node = try TestNode()
        defer { node.stop() }
        XCTAssertGreaterThanOrEqual(BadRecords.cases.count, 40)
        var lines: [[String: JSONValue]] = []
        var expected: [(field: String, code: String)?] = []
        var goodUIDs: [String] = []
        for (i, (field, value, code)) in BadRecords.cases.enumerated() {
            var bad = BadRecords.good
            bad[field] = value
            lines.append(bad)
            expected.append((field, code))
            if i % 8 == 0 {
                var good = BadRecords.good
                let uid = "1.2.156.8.\(i + 1)"
                good["studyInstanceUID"] = .string(uid)
                lines.append(good)
                expected.append(nil)
                goodUIDs.append(uid)
            }
        }
        let encoder = JSONEncoder()
        let body = try lines.map { String(decoding: try encoder.encode($0), as: UTF8.self) }.joined(separator: "\n")
        let file = Scratch.path("bad-records")
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        let r = node.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@\(file)",
                                       "https://localhost:\(node.port)/v1/index/studies"])
        XCTAssertEqual(r.status, 202, r.body)
        let answer = (try? JSONSerialization.jsonObject(with: Data(r.body.utf8))) as? [String: Any] ?? [:]
        XCTAssertEqual(answer["stored"] as? Int, goodUIDs.count)
        XCTAssertEqual(answer["rejected"] as? Int, BadRecords.cases.count)
        let results = answer["results"] as? [[String: Any]] ?? []
        XCTAssertEqual(results.count, expected.count)
        for (result, want) in zip(results, expected) {
            let errors = result["errors"] as? [[String: Any]] ?? []
            if let want {
                XCTAssertEqual(result["status"] as? String, "rejected", "\(want)")
                XCTAssertEqual(errors.map { $0["code"] as? String }, [want.code], "\(want)")
                XCTAssertEqual(errors.first?["field"] as? String, want.field)
            } else {
                XCTAssertEqual(result["status"] as? String, "accepted", "\(result)")
            }
        }
        XCTAssertFalse(r.body.contains("张三"), "an identifier is never echoed")

        let found = node.curl("clinic", ["https://localhost:\(node.port)/v1/patients/\(BadRecords.token)/studies?purpose=TREAT"])
        XCTAssertEqual(found.status, 200, found.body)
        let studies = ((try? JSONSerialization.jsonObject(with: Data(found.body.utf8))) as? [String: Any])?["studies"] as? [[String: Any]]
        XCTAssertEqual(Set(studies?.compactMap { $0["studyInstanceUID"] as? String } ?? []), Set(goodUIDs))
    }
}
