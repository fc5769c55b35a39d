import CSQLite
import Dispatch
import Foundation
@testable import IndexStore
import TestScratch
import XCTest

/// A reader's snapshot ends once it is `SQLiteReader.maxSnapshotAge` old, however
/// snapshots follow one another: one expiry at a time serves them all, each ended on time.
final class SQLiteReaderTests: XCTestCase {
    func testASnapshotOpenedAfterTheExpiryWasScheduledEndsAtItsOwnAge() throws {
        let path = Scratch.path("reader-expiry") + ".sqlite"
        try SQLiteConnection(path: path, readOnly: false).exec("PRAGMA journal_mode = WAL; CREATE TABLE t (x)")
        let reader = SQLiteReader(db: try SQLiteConnection(path: path, readOnly: true), queue: DispatchQueue(label: "reader-expiry"))
        let age = Double(SQLiteReader.maxSnapshotAge) / 1e9
        func inSnapshot() -> Bool { reader.queue.sync { sqlite3_get_autocommit(reader.db.db) == 0 } }
        func open(generation: Int) -> Date {
            reader.queue.sync {
                _ = reader.onSnapshot(generation: generation, keep: true) { db throws(StoreError) in try db.exec("SELECT count(*) FROM t") }
            }
            return Date()
        }

        _ = open(generation: 1)
        XCTAssertTrue(inSnapshot())
        Thread.sleep(forTimeInterval: age * 0.75)
        let second = open(generation: 2)
        Thread.sleep(forTimeInterval: age * 0.5)
        // Past the first snapshot's deadline, which the one expiry was scheduled for. The
        // check holds only if this thread was not held up past the second's own.
        if Date().timeIntervalSince(second) < age * 0.9 {
            XCTAssertTrue(inSnapshot(), "the second snapshot is younger than the age and stays open")
        }
        let deadline = Date() + 2
        while inSnapshot(), Date() < deadline { Thread.sleep(forTimeInterval: 0.002) }
        XCTAssertFalse(inSnapshot(), "the second snapshot ends too: the expiry scheduled itself again")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(second), age)
    }
}
