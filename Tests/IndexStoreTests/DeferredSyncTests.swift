import CSQLite
import CSQLiteShims
import Foundation
@testable import IndexStore
import Synchronization
import TestScratch
import XCTest

/// The two pieces that take the fsync out of the writer's way: the VFS that gathers WAL
/// writes (CSQLiteShims) and the queue that syncs and then answers (SQLiteSyncer).
final class DeferredSyncTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = Scratch.path("deferred-sync")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// A commit without a sync must still be wholly in the file when it returns: a copy
    /// of the files taken then (what a killed process leaves, page cache and all) opens
    /// with SQLite's own VFS, intact and with every row. The transaction is large and its
    /// cache tiny, so pages spill to the WAL and are written again, and SQLite rewrites
    /// the frame checksums after them, the commit frame's header last, with no page after.
    func testACommitIsWholeInTheFileWhenItReturnsEvenUnsynced() throws {
        let path = directory + "/t.sqlite"
        let db = try SQLiteConnection(path: path, readOnly: false)
        try db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = 8;")
        try db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL, mark INTEGER NOT NULL DEFAULT 0)")
        for round in 1...3 {
            try db.transaction { () throws(StoreError) in
                try db.exec("INSERT INTO t (v) SELECT randomblob(600) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) SELECT i FROM n)")
                try db.exec("UPDATE t SET mark = \(round) WHERE id % 7 = 0")
            }
            for suffix in ["", "-wal"] {
                try? FileManager.default.removeItem(atPath: directory + "/copy.sqlite" + suffix)
                try FileManager.default.copyItem(atPath: path + suffix, toPath: directory + "/copy.sqlite" + suffix)
            }
            try? FileManager.default.removeItem(atPath: directory + "/copy.sqlite-shm")
            let copy = try Self.plainSQLite(directory + "/copy.sqlite")
            defer { sqlite3_close(copy) }
            XCTAssertEqual(try Self.text(copy, "PRAGMA integrity_check"), "ok", "round \(round)")
            XCTAssertEqual(try Self.text(copy, "SELECT count(*) FROM t"), "\(1500 * round)", "round \(round): every row of the last commit")
            XCTAssertEqual(try Self.text(copy, "SELECT count(*) FROM t WHERE id % 7 = 0 AND mark = \(round)"),
                           "\(1500 * round / 7)", "round \(round): the rewritten pages")
        }
    }

    /// A commit is answered only after a sync that began once it had finished; a read that
    /// could have seen a commit still running waits for it too.
    func testAnswersWaitForTheSyncAfterTheirCommit() throws {
        let syncer = syncerOnAFile()
        let order = Mutex<[String]>([])
        let first = syncer.begin()
        syncer.whenDurable { failure in order.withLock { $0.append("read \(failure == nil)") } }
        usleep(50_000)
        XCTAssertEqual(order.withLock { $0 }, [], "a read waits for the commit begun before it ended")
        let answered = expectation(description: "answered")
        answered.expectedFulfillmentCount = 2
        syncer.finished(first, wrote: [true]) { failure in
            order.withLock { $0.append("commit \(failure == nil)") }
            answered.fulfill()
        }
        syncer.whenDurable { failure in
            order.withLock { $0.append("later read \(failure == nil)") }
            answered.fulfill()
        }
        wait(for: [answered], timeout: 5)
        XCTAssertEqual(Set(order.withLock { $0 }), ["read true", "commit true", "later read true"])
        XCTAssertTrue(syncer.isDurable(first))
    }

    /// A commit synced on the writer's thread (lookups alone) is answered on the spot when
    /// nothing before it waits for a sync, and otherwise only once the commits before it
    /// are synced.
    func testACommitSyncedHereIsAnsweredAtOnceUnlessAnEarlierOneWaits() throws {
        let syncer = syncerOnAFile()
        let answered = Mutex<[String]>([])
        let first = syncer.begin()
        syncer.finishedHere(first, wrote: [true]) { _ in answered.withLock { $0.append("first") } }
        XCTAssertEqual(answered.withLock { $0 }, ["first"], "answered before finishedHere returned")
        XCTAssertTrue(syncer.isDurable(first))

        // One writer: each commit begins after the one before it finished.
        let deferred = syncer.begin()
        let both = expectation(description: "both answered")
        both.expectedFulfillmentCount = 2
        syncer.finished(deferred, wrote: [true]) { _ in
            answered.withLock { $0.append("deferred") }
            both.fulfill()
        }
        let synced = syncer.begin()
        syncer.finishedHere(synced, wrote: [true]) { _ in
            answered.withLock { $0.append(syncer.isDurable(deferred) ? "synced after" : "synced before") }
            both.fulfill()
        }
        wait(for: [both], timeout: 5)
        XCTAssertEqual(Set(answered.withLock { $0 }), ["first", "deferred", "synced after"])
        XCTAssertTrue(syncer.isDurable(synced))
    }

    /// A read that queued for a commit still running is answered when that commit is one
    /// synced and answered on the spot: nothing else would come to sync for it.
    func testAReadWaitingForACommitAnsweredOnTheSpotIsAnswered() throws {
        let syncer = syncerOnAFile()
        let commit = syncer.begin()
        let read = expectation(description: "read answered")
        syncer.whenDurable { _ in read.fulfill() }
        usleep(20_000)
        syncer.finishedHere(commit, wrote: [true]) { _ in }
        wait(for: [read], timeout: 5)
    }

    /// A commit that needs the first file alone is answered once it is synced, the second
    /// file left for someone who needs it (or its timed sync); whoever needs every file
    /// waits for both, and a commit that wrote only the first is durable in every file.
    func testACommitThatNeedsTheIndexAloneIsAnsweredBeforeTheOtherFileIsSynced() throws {
        let syncer = syncerOnFiles(2)
        let first = syncer.begin()
        let answered = expectation(description: "index-only commit answered")
        syncer.finished(first, wrote: [true, true], needs: .index) { failure in
            XCTAssertNil(failure)
            answered.fulfill()
        }
        wait(for: [answered], timeout: 5)
        XCTAssertFalse(syncer.isDurable(first), "the second file is not synced for it")
        let read = expectation(description: "read answered")
        syncer.whenDurable { _ in read.fulfill() }
        wait(for: [read], timeout: 5)
        XCTAssertTrue(syncer.isDurable(first))

        let second = syncer.begin()
        let alone = expectation(description: "commit to the first file answered")
        syncer.finished(second, wrote: [true, false], needs: .index) { _ in alone.fulfill() }
        wait(for: [alone], timeout: 5)
        XCTAssertTrue(syncer.isDurable(second), "nothing of it waits in the second file")
    }

    /// A WAL replaced under the syncer (a new file at its path) is the one synced from
    /// then on: after the next sync the syncer holds the file at the path, not the
    /// unlinked one. It learns of the unlink from the link count alone (`gw_file_link_count`,
    /// which reads no timestamp: link_count.c says why that matters).
    func testAReplacedWALIsSyncedAtItsPath() throws {
        let wal = directory + "/\(UUID().uuidString).sqlite-wal"
        _ = FileManager.default.createFile(atPath: wal, contents: Data("frames".utf8))
        let syncer = SQLiteSyncer(walPaths: [wal])
        let first = expectation(description: "first commit answered")
        syncer.finished(syncer.begin(), wrote: [true]) { _ in first.fulfill() }
        wait(for: [first], timeout: 5)
        XCTAssertEqual(Self.openPaths().filter { $0.hasPrefix(wal) }, [wal])
        try FileManager.default.removeItem(atPath: wal)
        _ = FileManager.default.createFile(atPath: wal, contents: Data("new frames".utf8))
        let second = expectation(description: "commit after the replacement answered")
        syncer.finished(syncer.begin(), wrote: [true]) { _ in second.fulfill() }
        wait(for: [second], timeout: 5)
        XCTAssertEqual(Self.openPaths().filter { $0.hasPrefix(wal) }, [wal], "the unlinked file is let go")

        let fd = open(wal, O_RDONLY)
        defer { close(fd) }
        XCTAssertEqual(gw_file_link_count(fd), 1)
        unlink(wal)
        XCTAssertEqual(gw_file_link_count(fd), 0)
        XCTAssertEqual(gw_file_link_count(-1), -1)
    }

    /// What this process's descriptors name (`… (deleted)` for an unlinked file).
    private static func openPaths() -> [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
    }

    /// The second file fails to sync: a commit that needs the first alone is answered
    /// as durable, one that needs both is not.
    func testOnlyThoseWhoNeedTheOtherFileGetItsFailure() throws {
        let wal = directory + "/\(UUID().uuidString).sqlite-wal"
        _ = FileManager.default.createFile(atPath: wal, contents: Data("frames".utf8))
        let syncer = SQLiteSyncer(walPaths: [wal, directory], auditSyncAge: .seconds(3_600))
        let results = Mutex<[String: Bool]>([:])
        let both = expectation(description: "both answered")
        both.expectedFulfillmentCount = 2
        let index = syncer.begin()
        syncer.finished(index, wrote: [true, true], needs: .index) { failure in
            results.withLock { $0["index"] = failure == nil }
            both.fulfill()
        }
        let all = syncer.begin()
        syncer.finished(all, wrote: [true, true], needs: .all) { failure in
            results.withLock { $0["all"] = failure == nil }
            both.fulfill()
        }
        wait(for: [both], timeout: 5)
        XCTAssertEqual(results.withLock { $0 }, ["index": true, "all": false])
    }

    /// Once a sync fails nothing is answered as durable again, reads included.
    func testAFailedSyncFailsEveryWaiterFromThenOn() throws {
        let syncer = SQLiteSyncer(walPaths: [directory])  // a directory: open(O_RDWR) fails, EISDIR
        let results = Mutex<[Bool]>([])
        let record: @Sendable (XCTestExpectation) -> @Sendable (StoreError?) -> Void = { answered in
            { failure in
                results.withLock { $0.append(failure == nil) }
                answered.fulfill()
            }
        }
        let commit = expectation(description: "commit answered")
        syncer.finished(syncer.begin(), wrote: [true], then: record(commit))
        wait(for: [commit], timeout: 5)
        let read = expectation(description: "read answered")
        syncer.whenDurable(record(read))
        wait(for: [read], timeout: 5)
        let later = expectation(description: "later commit answered")
        syncer.finished(syncer.begin(), wrote: [false], then: record(later))
        wait(for: [later], timeout: 5)
        let here = expectation(description: "commit synced here answered")
        syncer.finishedHere(syncer.begin(), wrote: [false], then: record(here))
        wait(for: [here], timeout: 5)
        XCTAssertEqual(results.withLock { $0 }, [false, false, false, false])
    }

    /// A syncer over one small file standing in for a WAL.
    private func syncerOnAFile() -> SQLiteSyncer { syncerOnFiles(1) }

    /// A syncer over `count` small files standing in for WALs, the timed sync of those
    /// after the first held off.
    private func syncerOnFiles(_ count: Int) -> SQLiteSyncer {
        let wals = (0..<count).map { _ in directory + "/\(UUID().uuidString).sqlite-wal" }
        for wal in wals { _ = FileManager.default.createFile(atPath: wal, contents: Data("frames".utf8)) }
        return SQLiteSyncer(walPaths: wals, auditSyncAge: .seconds(3_600))
    }

    private static func plainSQLite(_ path: String) throws -> OpaquePointer {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let handle else {
            throw StoreError.engine("cannot open \(path)")
        }
        return handle
    }

    private static func text(_ db: OpaquePointer, _ sql: String) throws -> String {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else {
            throw StoreError.engine(String(cString: sqlite3_errmsg(db)))
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW, let text = sqlite3_column_text(statement, 0) else {
            throw StoreError.engine(String(cString: sqlite3_errmsg(db)))
        }
        return String(cString: text)
    }
}
