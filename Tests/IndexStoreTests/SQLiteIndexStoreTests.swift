import Foundation
import ImagingIndex
import IndexStore
import XCTest

final class SQLiteIndexStoreTests: IndexStoreContract {
    private var paths: [String] = []

    override func makeStore() throws -> IndexStore? {
        let path = NSTemporaryDirectory() + "index-\(UUID().uuidString).sqlite"
        paths.append(path)
        return try SQLiteIndexStore(path: path, readers: 2)
    }

    override func tearDown() {
        for p in paths { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: p + suffix) } }
    }

    func testReopenKeepsDataAndSchemaVersion() async throws {
        let path = NSTemporaryDirectory() + "index-\(UUID().uuidString).sqlite"
        paths.append(path)
        do {
            let s = try SQLiteIndexStore(path: path, readers: 1)
            _ = try await s.upsert([Self.record(1), Self.record(2)])
        }
        let reopened = try SQLiteIndexStore(path: path, readers: 1)
        let count = try await reopened.count()
        XCTAssertEqual(count, 2)
        let integrity = try await reopened.integrityCheck()
        XCTAssertEqual(integrity, "ok")
    }

    func testNewerSchemaIsRefused() throws {
        let path = NSTemporaryDirectory() + "index-\(UUID().uuidString).sqlite"
        paths.append(path)
        _ = try SQLiteIndexStore(path: path, readers: 1)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version=99'); c.commit()", path]
        try p.run()
        p.waitUntilExit()
        XCTAssertThrowsError(try SQLiteIndexStore(path: path, readers: 1)) {
            XCTAssertTrue("\($0)".contains("newer"), "\($0)")
        }
    }
}
