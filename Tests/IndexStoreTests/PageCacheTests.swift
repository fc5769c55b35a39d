import CSQLite
import CSQLiteShims
import Foundation
@testable import IndexStore
import TestScratch
import XCTest

/// The page cache wrapper (CSQLiteShims/page_cache.c) skips truncations that could drop
/// nothing; one it skipped wrongly would leave pages from past the end of the file in the
/// cache.
final class PageCacheTests: XCTestCase {
    func testTheWrapperIsInstalledBeforeSQLiteStarts() throws {
        _ = try SQLiteConnection(path: Scratch.path("page-cache") + ".sqlite", readOnly: false)
        XCTAssertEqual(gw_sqlite_page_cache_install(), SQLITE_OK, "installed when the program was loaded, before any connection")
    }

    /// A cache driven as the pager drives it, a page renumbered through a key past the
    /// others as btree.c does, and each truncation checked: no page at or past its limit
    /// is left, and every page below it is.
    func testATruncationLeavesNoPageAtOrPastItsLimit() throws {
        let m = try XCTUnwrap(gw_sqlite_page_cache_methods()).pointee
        let cache = try XCTUnwrap(m.xCreate(1024, 16, 1))
        defer { m.xDestroy(cache) }
        m.xCachesize(cache, 100)
        func held(_ key: UInt32) -> Bool {
            guard let page = m.xFetch(cache, key, 0) else { return false }
            m.xUnpin(cache, page, 0)
            return true
        }
        func add(_ key: UInt32) throws {
            m.xUnpin(cache, try XCTUnwrap(m.xFetch(cache, key, 2), "page \(key)"), 0)
        }
        func page(_ key: UInt32) throws -> UnsafeMutablePointer<sqlite3_pcache_page> {
            let p = try XCTUnwrap(m.xFetch(cache, key, 0), "page \(key)")
            m.xUnpin(cache, p, 0)
            return p
        }
        for key: UInt32 in 1...8 { try add(key) }
        let temporary: UInt32 = 1_000
        // Pages 5 and 7 swap numbers through the temporary one: nothing is left past 8.
        let five = try page(5), seven = try page(7)
        m.xRekey(cache, five, 5, temporary)
        m.xRekey(cache, seven, 7, 5)
        m.xRekey(cache, five, temporary, 7)
        m.xTruncate(cache, 9)
        XCTAssertEqual((1...8).filter(held), Array(1...8))
        // Page 3 is left at the temporary number: a truncation to 9 must drop it.
        m.xRekey(cache, try page(3), 3, temporary)
        m.xTruncate(cache, 9)
        XCTAssertFalse(held(temporary), "the page renumbered past the limit is dropped")
        XCTAssertEqual((1...8).filter(held), [1, 2, 4, 5, 6, 7, 8])
        m.xTruncate(cache, 5)
        XCTAssertEqual((1...8).filter(held), [1, 2, 4])
        try add(20)
        m.xTruncate(cache, 21)
        XCTAssertTrue(held(20))
        m.xTruncate(cache, 15)
        XCTAssertFalse(held(20), "a page fetched past an earlier limit counts")
        XCTAssertEqual((1...8).filter(held), [1, 2, 4])
    }

    /// SQLite through the wrapper: transactions that grow a small file with random keys (splits, whose pages SQLite
    /// renumbers through one past 1 GiB) are rolled back or committed in turn, some of them
    /// to a savepoint; after each, the writer, with its cache, and a fresh connection read
    /// the same rows, and the file is sound.
    func testWhatTheCacheServesIsWhatTheFileHoldsThroughRollbacks() throws {
        let path = Scratch.path("page-cache") + ".sqlite"
        let writer = try SQLiteConnection(path: path, readOnly: false)
        try writer.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;")
        var committed = 0
        for round in 0..<24 {
            try writer.exec("BEGIN IMMEDIATE")
            try writer.exec("INSERT INTO t (k, v) SELECT hex(randomblob(12)), randomblob(300) FROM \(Self.numbers(400))")
            switch round % 3 {
            case 0:
                try writer.exec("ROLLBACK")
            case 1:
                try writer.exec("SAVEPOINT more")
                try writer.exec("INSERT INTO t (k, v) SELECT hex(randomblob(12)), randomblob(300) FROM \(Self.numbers(400))")
                try writer.exec("ROLLBACK TO more; RELEASE more; COMMIT")
                committed += 400
            default:
                try writer.exec("COMMIT")
                committed += 400
            }
            let reader = try SQLiteConnection(path: path, readOnly: true)
            let seen = try Self.summary(writer)
            XCTAssertEqual(seen, try Self.summary(reader), "round \(round): the writer's cache and the file agree")
            XCTAssertTrue(seen.hasPrefix("\(committed) "), "round \(round): \(seen), \(committed) rows committed")
        }
        XCTAssertEqual(try Self.text(writer, "PRAGMA integrity_check"), "ok")
    }

    private static func numbers(_ n: Int) -> String {
        "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(n)) SELECT i FROM n)"
    }

    /// The row count, then a digest of every row in key order.
    private static func summary(_ db: SQLiteConnection) throws -> String {
        try text(db, "SELECT count(*) || ' ' || coalesce(sum(length(v)), 0) || ' ' || coalesce(group_concat(k || hex(substr(v, 1, 8)), ''), '') FROM (SELECT * FROM t ORDER BY k)")
    }

    private static func text(_ db: SQLiteConnection, _ sql: String) throws -> String {
        let s = try db.statement(sql)
        defer { db.resetAll() }
        XCTAssertTrue(try s.step())
        return s.string(0) ?? ""
    }
}
