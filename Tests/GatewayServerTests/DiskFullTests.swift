import Foundation
import TestScratch
import XCTest

/// The data directory on a small tmpfs made by the test: when it fills, uploads get 507
/// and nothing acknowledged is lost, lookups keep working, and uploads succeed again by
/// themselves once space returns. Needs permission to mount (CI runs as root).
final class DiskFullTests: XCTestCase {
    func testA507WhenFullLookupsMeanwhileAndRecoveryWhenSpaceReturns() throws {
        let mountPoint = Scratch.path("gw-full")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = TestProcess.run("/usr/bin/env", ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mountPoint])
        guard mounted.status == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(mounted.output)") }
        defer { _ = TestProcess.run("/usr/bin/env", ["umount", "-l", mountPoint]) }
        let node = try TestNode { $0.dataDirectory = mountPoint + "/data" }
        defer { node.stop() }
        let token = "v1:" + String(repeating: "B", count: 42) + "Q"
        func batch(_ n: Int) -> String {
            (0..<200).map { i in
                "{\"patientToken\":\"\(token)\",\"studyInstanceUID\":\"1.2.156.8.\(n).\(i)\",\"studyDate\":\"20241101\","
                    + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\",\"studyDescription\":\""
                    + String(repeating: "x", count: 60) + "\",\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610100\"}"
            }.joined(separator: "\n")
        }
        let batches = Scratch.path("full-batch")
        func upload(_ n: Int) -> (status: Int, body: String) {
            let file = batches + "-\(n)"
            try? batch(n).write(toFile: file, atomically: true, encoding: .utf8)
            return node.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + file,
                                          node.baseURL + "/v1/index/studies"])
        }
        // Leave a few MiB, then upload until the disk refuses.
        let filler = mountPoint + "/filler"
        let free = try (FileManager.default.attributesOfFileSystem(forPath: mountPoint)[.systemFreeSize] as! NSNumber).intValue
        _ = FileManager.default.createFile(atPath: filler, contents: Data(count: max(0, free - (3 << 20))))
        var acknowledged = 0, refused: (status: Int, body: String)?
        for n in 0..<200 {
            let answer = upload(n)
            if answer.status == 200 { acknowledged += 200; continue }
            refused = answer
            break
        }
        guard let refused else { return XCTFail("the disk never filled") }
        XCTAssertEqual(refused.status, 507, refused.body)
        XCTAssertTrue(refused.body.contains("insufficient_storage"), refused.body)
        XCTAssertGreaterThan(acknowledged, 0)

        let lookup = node.curl("clinic", [node.baseURL + "/dicomweb/studies?PatientID=\(token)&limit=1000&purpose=TREAT"])
        XCTAssertEqual(lookup.status, 200, "lookups work while the disk is full")
        let count = node.curl("operator", [node.baseURL + "/healthz"])
        XCTAssertEqual(count.status, 200)

        try FileManager.default.removeItem(atPath: filler)
        let again = upload(1_000)
        XCTAssertEqual(again.status, 200, "uploads recover by themselves: \(again.body)")
        var stored = 0
        while true {
            let page = node.curl("clinic", [node.baseURL + "/v1/patients/\(token)/studies?purpose=TREAT&limit=1000&offset=\(stored)"])
            let n = (try? JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any])?["count"] as? Int ?? 0
            stored += n
            if n < 1000 { break }
        }
        XCTAssertEqual(stored, acknowledged + 200, "every acknowledged study is there, none of the refused batch")
    }
}
