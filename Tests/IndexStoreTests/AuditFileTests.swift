import AuditLog
import ReadQueue
import ChildProcess
import Foundation
@testable import IndexStore
import TestScratch
import XCTest

/// The audit log's file of its own (SQLiteAudit): what a crash between the two files'
/// commits leaves is put back, and an older build's audit tables are moved over.
final class AuditFileTests: XCTestCase {
    private func newPath() -> String { Scratch.path("audit-file") + ".sqlite" }

    private static func event(_ id: String, counter: String, count: Int = 1) -> AuditEvent {
        AuditEvent(requestID: id, actor: "urn:imaging-gateway:hospital:H1", eventID: .query, action: .read, outcome: .success,
                   operation: "test", patientTokens: [IndexStoreContract.token(1)], count: count, counter: counter)
    }

    private func sql(_ file: String, _ script: String) throws {
        let python = try ChildProcess.run("/usr/bin/env", ["python3", "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", file, script])
        XCTAssertEqual(python.status, 0, python.stderr)
    }

    /// The first column of the first row of `query` on `file`, as Python prints it.
    private func value(_ file: String, _ query: String) throws -> String {
        try ChildProcess.run("/usr/bin/env", ["python3", "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])", file, query])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func copy(_ from: String, _ to: String) throws {
        try? FileManager.default.removeItem(atPath: to)
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// The crash SQLiteAudit guards against: the index's file kept an upload (and its
    /// pending leaf), the audit file lost that commit. Made here by putting back the
    /// audit file as it was before the upload; the next start restores the upload's leaf
    /// with its own number and text, and its usage count, and empties audit_pending.
    func testLeavesLostFromTheAuditFileWithTheirUploadKeptArePutBackAtStart() async throws {
        let path = newPath()
        let audit = SQLiteIndexStore.auditPath(for: path)
        let day = AuditEvent.day()
        let actor = "urn:imaging-gateway:hospital:H1"
        var store: SQLiteIndexStore? = try SQLiteIndexStore(path: path, readers: 1)
        try await store!.append([Self.event("lookup", counter: "lookups")])
        try copy(audit, audit + ".kept")
        try copy(audit + "-wal", audit + ".kept-wal")
        _ = try await store!.upsert([IndexStoreContract.record(1), IndexStoreContract.record(2)],
                                    audit: Self.event("upload", counter: "uploads", count: 2))
        let written = try await store!.events(from: 0, limit: 10)
        let uploads = try await store!.usage(day: day, actor: actor, counter: "uploads")
        XCTAssertEqual(written.count, 2)
        store = nil

        try copy(audit + ".kept", audit)
        try copy(audit + ".kept-wal", audit + "-wal")
        try? FileManager.default.removeItem(atPath: audit + "-shm")
        store = try SQLiteIndexStore(path: path, readers: 1)
        let restored = try await store!.events(from: 0, limit: 10)
        XCTAssertEqual(restored, written, "the lost leaf is back with its number and its bytes")
        let counted = try await store!.usage(day: day, actor: actor, counter: "uploads")
        XCTAssertEqual(counted, uploads)
        let studies = try await store!.count()
        XCTAssertEqual(studies, 2)
        try await store!.append([Self.event("after", counter: "lookups")])
        let size = try await store!.auditSize()
        XCTAssertEqual(size, 3, "the next leaf follows the restored one")
        store = nil
        XCTAssertEqual(try value(path, "SELECT count(*) FROM audit_pending"), "0")
    }

    /// The same crash with a lookup's leaf between two uploads' (three commits in flight,
    /// so none had emptied audit_pending, and the index's file synced before the audit
    /// file): the lookup was never answered and its leaf is gone with the audit file's
    /// tail, but both uploads are kept. Their leaves come back in their order, numbered on
    /// from the audit file's end, so the log stays a tree with no hole for `audit verify`.
    func testPendingLeavesAfterALostLookupsLeafAreNumberedOnWithoutAHole() async throws {
        let path = newPath()
        let audit = SQLiteIndexStore.auditPath(for: path)
        var store: SQLiteIndexStore? = try SQLiteIndexStore(path: path, readers: 1)
        try await store!.append([Self.event("lookup", counter: "lookups")])
        try copy(audit, audit + ".kept")
        try copy(audit + "-wal", audit + ".kept-wal")
        _ = try await store!.upsert([IndexStoreContract.record(1)], audit: Self.event("upload-1", counter: "uploads"))
        try await store!.append([Self.event("lost", counter: "lookups")])
        _ = try await store!.upsert([IndexStoreContract.record(2)], audit: Self.event("upload-2", counter: "uploads"))
        store = nil
        XCTAssertEqual(try value(path, "SELECT group_concat(seq) FROM audit_pending"), "4")
        try sql(path, """
            ATTACH '\(audit)' AS a;
            INSERT INTO main.audit_pending (seq, event) SELECT seq, event FROM a.audit_events WHERE seq = 2;
            """)
        try copy(audit + ".kept", audit)
        try copy(audit + ".kept-wal", audit + "-wal")
        try? FileManager.default.removeItem(atPath: audit + "-shm")

        store = try SQLiteIndexStore(path: path, readers: 1)
        XCTAssertEqual(store!.auditLeavesPutBack, 2, "the two uploads' leaves, which the node logs at start")
        let restored = try await store!.events(from: 0, limit: 10)
        XCTAssertEqual(restored.map(\.index), [0, 1, 2])
        let events = try restored.map { try JSONDecoder().decode(AuditEvent.self, from: Data($0.text.utf8)) }
        XCTAssertEqual(events.map(\.requestID), ["lookup", "upload-1", "upload-2"])
        XCTAssertEqual(events.map(\.leafIndex), [0, 1, 2], "each leaf's text carries its new number")
        for event in restored { XCTAssertEqual(event.leafHash, MerkleTree.leafHash(Array(event.text.utf8))) }
        let uploads = try await store!.usage(day: AuditEvent.day(), actor: "urn:imaging-gateway:hospital:H1", counter: "uploads")
        XCTAssertEqual(uploads, 2)
        let studies = try await store!.count()
        XCTAssertEqual(studies, 2)
    }

    /// A lookup's leaf is in the audit file alone; an upload's is in both until a commit
    /// after the audit file's copy is durable, which the upload's answer does not wait for
    /// (the audit file's timed sync held off here); an upload that changed nothing (every
    /// study sent again as stored) has no change to keep its leaf with, so it is alone too.
    func testOnlyLeavesWrittenWithAnIndexChangeArePendingAndOnlyUntilTheAuditFileHoldsThem() async throws {
        let path = newPath()
        let store = try SQLiteIndexStore(path: path, readers: 1, gathers: false, queuePolicy: QueuePolicy(),
                                         walRestartFrames: SQLiteIndexStore.walRestartFrames, auditSyncAge: .seconds(3_600))
        func pending() throws -> String { try value(path, "SELECT group_concat(seq) FROM audit_pending") }
        try await store.append([Self.event("lookup", counter: "lookups")])
        XCTAssertEqual(try pending(), "None")
        let upload = (1...).first { !store.syncer.isDurable($0) }!
        _ = try await store.upsert([IndexStoreContract.record(1)], audit: Self.event("upload", counter: "uploads"))
        XCTAssertEqual(try pending(), "2")
        XCTAssertFalse(store.syncer.isDurable(upload), "answered with the audit file not yet synced")
        try await store.append([Self.event("lookup", counter: "lookups")])
        XCTAssertTrue(store.syncer.isDurable(upload), "a lookup's answer waits for the audit file, and it holds the upload's leaf")
        XCTAssertEqual(try pending(), "2", "the lookup's commit began before that sync")
        let resent = try await store.upsert([IndexStoreContract.record(1)], audit: Self.event("upload", counter: "uploads"))
        XCTAssertEqual(resent, [.unchanged])
        XCTAssertEqual(try pending(), "None")
        _ = try await store.upsert([IndexStoreContract.record(2)], audit: Self.event("upload", counter: "uploads"))
        _ = try await store.upsert([IndexStoreContract.record(3)], audit: Self.event("upload", counter: "uploads"))
        try await store.append([Self.event("lookup", counter: "lookups")])
        _ = try await store.upsert([IndexStoreContract.record(4)], audit: Self.event("upload", counter: "uploads"))
        XCTAssertEqual(try pending(), "8", "the rows the audit file holds durably are gone, the newest is kept")
        XCTAssertEqual(try value(SQLiteIndexStore.auditPath(for: path), "SELECT count(*) FROM audit_events"), "8")
    }

    /// Found by session 12's sweep: the WAL hook reports a file's frames only when a
    /// commit touches it, so after the index's WAL was restarted, commits that only
    /// appended audit leaves still saw it full and restarted it again after every one.
    func testARestartedIndexWALIsNotRestartedAgainByAuditOnlyCommits() async throws {
        let path = newPath()
        let limit: Int32 = 64
        let store = try SQLiteIndexStore(path: path, readers: 1, gathers: false, queuePolicy: QueuePolicy(), walRestartFrames: limit)
        for batch in 0..<4 {
            _ = try await store.upsert((0..<100).map { IndexStoreContract.record(batch * 100 + $0, patient: $0) })
        }
        // The restart waits for a checkpointer pass; audit-only commits carry on meanwhile.
        for n in 0..<100 where store.writer.walFrames > limit {
            try await store.append([Self.event("lookup-\(n)", counter: "lookups")])
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertLessThanOrEqual(store.writer.walFrames, limit, "the index's WAL counted as it is after its restart")
    }

    /// The audit WAL restarts after a checkpointer pass that began past its limit: under
    /// audit-only commits it stays near the limit instead of growing to the checkpointer's
    /// step (1 024 frames) and beyond.
    func testTheAuditWALRestartsNearItsLimitUnderAuditOnlyCommits() async throws {
        let path = newPath()
        let limit: Int32 = 64
        let store = try SQLiteIndexStore(path: path, readers: 1, gathers: false, queuePolicy: QueuePolicy(), walRestartFrames: limit)
        var most: Int32 = 0
        for n in 0..<600 {
            try await store.append([Self.event("lookup-\(n)", counter: "lookups")])
            most = max(most, store.writer.auditWALFrames)
        }
        let size = try await store.auditSize()
        XCTAssertEqual(size, 600)
        XCTAssertLessThanOrEqual(most, 3 * limit, "the audit WAL reached \(most) frames past a limit of \(limit)")
    }

    /// An older build kept the audit tables in the index's file (schema version 11):
    /// the next start moves them into the audit file, leaf for leaf.
    func testAnOlderBuildsAuditTablesAreMovedIntoTheAuditFile() async throws {
        let path = newPath()
        var store: SQLiteIndexStore? = try SQLiteIndexStore(path: path, readers: 1)
        try await store!.append([Self.event("a", counter: "lookups"), Self.event("b", counter: "lookups")])
        let written = try await store!.events(from: 0, limit: 10)
        store = nil
        try sql(path, SQLiteMigrationTests.beforeTheSeriesFlag + """
            ATTACH '\(SQLiteIndexStore.auditPath(for: path))' AS a;
            CREATE TABLE main.audit_events AS SELECT * FROM a.audit_events;
            CREATE TABLE main.audit_checkpoints AS SELECT * FROM a.audit_checkpoints;
            CREATE TABLE main.usage AS SELECT * FROM a.usage;
            DELETE FROM a.audit_events; DELETE FROM a.usage;
            DROP TABLE main.audit_pending;
            PRAGMA main.user_version = \(SQLiteSchema.migrations.firstIndex { $0.hasPrefix("CREATE TABLE audit_pending") }!);
            """)
        store = try SQLiteIndexStore(path: path, readers: 1)
        let moved = try await store!.events(from: 0, limit: 10)
        XCTAssertEqual(moved, written)
        let lookups = try await store!.usage(day: AuditEvent.day(), actor: "urn:imaging-gateway:hospital:H1", counter: "lookups")
        XCTAssertEqual(lookups, 2)
        store = nil
        XCTAssertEqual(try value(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('audit_events', 'usage')"), "0",
                       "dropped from the index's file")
    }

    /// `audit verify` and `audit export` beside a running node: the snapshot sees every
    /// commit made before each read, and writes nothing (a pending leaf stays where it is,
    /// for the node's writer).
    func testASnapshotBesideALiveStoreReadsEachCommitAndWritesNothing() async throws {
        let path = newPath()
        let store = try SQLiteIndexStore(path: path, readers: 1)
        try await store.append((0..<3).map { Self.event("lookup-\($0)", counter: "lookups") })
        let snapshot = try SQLiteAuditSnapshot(path: path)
        let first = try await snapshot.events(from: 0, limit: 100)
        XCTAssertEqual(first.map(\.index), [0, 1, 2])
        try await store.append([Self.event("later", counter: "lookups")])
        let all = try await snapshot.events(from: 0, limit: 100)
        XCTAssertEqual(all.count, 4, "each read sees the commits made before it")
        XCTAssertEqual(all.last?.leafHash, MerkleTree.leafHash(Array(all.last!.text.utf8)))
        try sql(path, "INSERT INTO audit_pending (seq, event) VALUES (99, '{}')")
        _ = try await snapshot.events(from: 0, limit: 100)
        _ = try await snapshot.checkpoints()
        XCTAssertEqual(try value(path, "SELECT count(*) FROM audit_pending"), "1", "the snapshot files nothing")
        XCTAssertThrowsError(try SQLiteAuditSnapshot(path: newPath()), "no database: a clear error, not an empty one made")
    }
}
