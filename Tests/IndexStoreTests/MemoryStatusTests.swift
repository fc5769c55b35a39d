import CSQLite
import CSQLiteShims
@testable import IndexStore
import TestScratch
import XCTest

/// SQLite's count of its memory is off in this process (CSQLiteShims/memory_status.c):
/// with it on, every allocation of every connection takes one process-wide mutex.
final class MemoryStatusTests: XCTestCase {
    func testSQLiteAllocatesWithoutCountingWhatItHolds() throws {
        XCTAssertEqual(gw_sqlite_memory_status_off(), SQLITE_OK, "turned off when the program was loaded, before any connection")
        let db = try SQLiteConnection(path: Scratch.path("memory-status") + ".sqlite", readOnly: false)
        try db.exec("CREATE TABLE t (v TEXT); INSERT INTO t SELECT hex(randomblob(500)) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3);")
        var used: sqlite3_int64 = -1
        var highest: sqlite3_int64 = -1
        XCTAssertEqual(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &used, &highest, 0), SQLITE_OK)
        XCTAssertEqual(used, 0, "a counted allocation goes through the mutex")
        XCTAssertEqual(highest, 0)
    }
}
