import AuditLog
import ReadQueue
import ChildProcess
import Foundation
import ImagingIndex
import JSONText
@testable import IndexStore
import Synchronization
import TestScratch
import XCTest

final class SQLiteIndexStoreTests: IndexStoreContract {
    override func makeStore() throws -> IndexStore? {
        let path = Scratch.path("index") + ".sqlite"
        return try SQLiteIndexStore(path: path, readers: 2)
    }

    /// Found by the soak: LIMIT and OFFSET were written into the SQL, so every offset a
    /// client asked for prepared and cached one more statement, and every unit of work
    /// reset them all: memory and CPU grew for as long as the node ran.
    func testQueryShapesAreCachedOnceAndTheCacheIsBounded() async throws {
        let path = Scratch.path("index") + ".sqlite"
        let store = try SQLiteIndexStore(path: path, readers: 1)
        _ = try await store.upsert([Self.record(1), Self.record(2)])
        let db = try SQLiteConnection(path: path, readOnly: true)
        for offset in 0..<300 {
            var q = StudyQuery(patientToken: Self.token(1))
            q.offset = offset % 2 == 0 ? offset : 0
            q.limit = 1 + offset
            XCTAssertEqual(try SQLiteQuery.run(q, on: db).count, max(0, min(q.limit, 2 - q.offset)), "limit \(q.limit) offset \(q.offset)")
            db.resetAll()
        }
        XCTAssertEqual(db.cachedStatements, 1, "one query shape, one statement, whatever the limit and offset")
        for n in 1...300 {
            var q = StudyQuery()
            q.studyInstanceUIDs = (0..<n).map { "1.2.3.\($0)" }
            _ = try SQLiteQuery.run(q, on: db)
            db.resetAll()
            XCTAssertLessThanOrEqual(db.cachedStatements, SQLiteConnection.statementCacheLimit + 1)
            XCTAssertLessThanOrEqual(SQLiteQuery.cachedTexts, SQLiteQuery.textCacheLimit)
        }
    }

    func testReopenKeepsDataAndSchemaVersion() async throws {
        let path = Scratch.path("index") + ".sqlite"
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

    /// The OutboxStore contract: queued with the records, in order, acknowledged exactly
    /// up to a number, kept across a reopen; a store that does not gather queues nothing.
    func testOutboxQueuesInOrderAcknowledgesExactlyAndSurvivesReopening() async throws {
        let path = Scratch.path("index") + ".sqlite"
        do {
            let s = try SQLiteIndexStore(path: path, readers: 1, gathers: true)
            _ = try await s.upsert([Self.record(1), Self.record(2), Self.record(3)])
            _ = try await s.upsert([Self.record(1, modalities: ["MR"]), Self.record(4)])
            let all = try await s.pending(after: 0, limit: 10)
            XCTAssertEqual(all.count, 5, "an update is queued again: the national node must see it")
            XCTAssertEqual(all.map(\.sequence), all.map(\.sequence).sorted())
            XCTAssertTrue(all[0].record.contains("\"1.2.156.1.1\""))
            XCTAssertTrue(all[3].record.contains("\"MR\""))
            _ = try await s.upsert([Self.record(2), Self.record(3)])
            let resent = try await s.pending(after: 0, limit: 10)
            XCTAssertEqual(resent, all, "a study sent again unchanged is not queued again")
            let later = try await s.pending(after: all[1].sequence, limit: 2)
            XCTAssertEqual(later, Array(all[2...3]), "a window further on, for the batches in flight")
            try await s.acknowledge(through: all[2].sequence)
            let lag = try await s.lag()
            XCTAssertEqual(lag.records, 2)
        }
        let reopened = try SQLiteIndexStore(path: path, readers: 1, gathers: true)
        let left = try await reopened.pending(after: 0, limit: 10)
        XCTAssertEqual(left.count, 2)
        try await reopened.acknowledge(through: left[1].sequence)
        _ = try await reopened.upsert([Self.record(5)])
        let next = try await reopened.pending(after: 0, limit: 10)
        XCTAssertEqual(next.count, 1)
        XCTAssertGreaterThan(next[0].sequence, left[1].sequence, "numbers are not reused once the outbox was empty")
        let epoch = try await reopened.outboxEpoch()
        XCTAssertEqual(epoch.count, 16)
        let plain = try SQLiteIndexStore(path: path, readers: 1)
        _ = try await plain.upsert([Self.record(9)])
        let still = try await plain.pending(after: 0, limit: 10)
        XCTAssertEqual(still.count, 1, "a node that does not gather queues nothing")
    }

    /// `requeue`: one storage unit's studies queued again, in the order they were stored,
    /// across chunks, each as its upload queued it; a node that does not gather refuses.
    func testRequeueQueuesOneStorageUnitsStudiesAgain() async throws {
        let path = Scratch.path("index") + ".sqlite"
        let s = try SQLiteIndexStore(path: path, readers: 1, gathers: true)
        _ = try await s.upsert([Self.record(1), Self.record(2), Self.record(3, storage: Self.otherStorage), Self.record(5)])
        let first = try await s.pending(after: 0, limit: 10)
        try await s.acknowledge(through: try XCTUnwrap(first.last).sequence)
        let queued = try await s.requeue(storageUnit: Self.storage, chunk: 2)
        XCTAssertEqual(queued, 3)
        let again = try await s.pending(after: 0, limit: 10)
        XCTAssertEqual(again.map(\.record), [1, 2, 5].map { Self.record($0).jsonText })
        XCTAssertEqual(again.map(\.record), [first[0], first[1], first[3]].map(\.record), "as the uploads queued them")
        let none = try await s.requeue(storageUnit: "91110000MA00000000")
        XCTAssertEqual(none, 0)
        let other = Scratch.path("index") + ".sqlite"
        let plain = try SQLiteIndexStore(path: other, readers: 1)
        do {
            _ = try await plain.requeue(storageUnit: Self.storage)
            XCTFail("a node that does not gather has nothing to queue for")
        } catch {
            XCTAssertTrue(error.description.contains("gathers to no national node"), error.description)
        }
    }

    /// Found by the soak: the writer copied the WAL into the database itself, every 64 MiB,
    /// and every commit waited meanwhile. Now a checkpointer copies it beside the writer
    /// every few MiB, so the database file grows long before the WAL reaches 64 MiB.
    func testTheWALIsCopiedBesideTheWriterLongBeforeItIsRestarted() async throws {
        let path = Scratch.path("index") + ".sqlite"
        let store = try SQLiteIndexStore(path: path, readers: 1)
        func size(_ file: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int) ?? 0 }
        let empty = size(path)
        for batch in 0..<40 {
            _ = try await store.upsert((0..<250).map { Self.record(batch * 250 + $0, patient: batch * 250 + $0) })
        }
        // The WAL file never shrinks, so its size bounds how far it ever grew: below the
        // writer's restart, only the checkpointer can have copied pages into the database.
        let wal = size(path + "-wal")
        XCTAssertLessThan(wal, Int(SQLiteIndexStore.walRestartFrames) * 4096, "not enough for the writer's restart")
        var copied = false
        for _ in 0..<50 where !copied {
            copied = size(path) > empty + (1 << 20)
            if !copied { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertTrue(copied, "the database file is \(size(path)) bytes (\(empty) empty) beside a \(wal)-byte WAL")
    }

    /// Found by session 10's sweep: past the restart limit, a restart that found a
    /// reader's snapshot only moved the generation on and tried again after the next
    /// commit; under steady lookups some reader always held a snapshot (kept up to 20 ms
    /// after its query), so the WAL was never restarted and grew with every commit. Now
    /// the readers close theirs and keep none until the restart is done.
    func testTheWALIsRestartedUnderSteadyLookups() async throws {
        let path = Scratch.path("index") + ".sqlite"
        let limit: Int32 = 256
        let store = try SQLiteIndexStore(path: path, readers: 2, gathers: false, queuePolicy: QueuePolicy(), walRestartFrames: limit)
        let lookups = (0..<4).map { worker in
            Task {
                var n = 0
                while !Task.isCancelled {
                    let id = "r\(worker)-\(n)"
                    _ = try await store.query(StudyQuery(patientToken: Self.token(n % 50))) { studies in
                        AuditEvent(requestID: id, actor: "clinic", eventID: .query, action: .read, outcome: .success,
                                   operation: "lookup", count: studies.count, counter: "lookups")
                    }
                    n += 1
                }
                return n
            }
        }
        var restarts = 0, frames: Int32 = 0
        for batch in 0..<60 {
            _ = try await store.upsert((0..<100).map { Self.record(batch * 100 + $0, patient: $0 % 50) })
            let now = store.writeQueue.sync { store.writer.walFrames }
            if now < frames { restarts += 1 }
            frames = now
        }
        lookups.forEach { $0.cancel() }
        var asked = 0
        for lookup in lookups { asked += try await lookup.value }
        let wal = ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int) ?? 0
        XCTAssertGreaterThan(asked, 100, "the lookups ran alongside the uploads")
        XCTAssertGreaterThan(restarts, 0, "the WAL was never restarted")
        // Catch-up passes let it grow past the limit while the checkpointer falls behind
        // (SQLiteIndexStore+WAL): a slow machine saw 4.1 times the limit.
        let most = (SQLiteIndexStore.catchUpPasses + 4) * Int(limit) * 4120
        XCTAssertLessThan(wal, most, "the WAL grew to \(wal) bytes past a restart limit of \(limit) frames")
    }

    /// Record batches commit without savepoints; when one fails, the group is rolled back
    /// and replayed with a savepoint per batch. The failing batch (its records and its
    /// audit leaf) is undone alone; every other batch of the same group commits, once,
    /// and the leaves stay numbered without a gap.
    func testAFailingBatchIsUndoneAloneAndTheRestOfItsGroupCommitsOnce() async throws {
        let path = Scratch.path("index") + ".sqlite"
        let store = try SQLiteIndexStore(path: path, readers: 1)
        func event(_ operation: String) -> AuditEvent {
            AuditEvent(requestID: "r", actor: "a", eventID: .query, action: .create, outcome: .success,
                       operation: operation, count: 1, counter: "records")
        }
        let answers = Mutex<[String: Result<[UpsertOutcome], StoreError>]>([:])
        let fail: @Sendable (SQLiteConnection) throws(StoreError) -> Void = { _ throws(StoreError) in throw StoreError.engine("made to fail") }
        func batch(_ name: String, _ n: Int, failing: Bool = false) -> SQLiteIndexStore.Pending {
            let done: @Sendable (Result<[UpsertOutcome], StoreError>) -> Void = { result in answers.withLock { $0[name] = result } }
            return SQLiteIndexStore.Pending(records: [Self.record(n, patient: n)], audit: [event(name)],
                                            write: failing ? fail : nil, done: done)
        }
        let lookup = SQLiteIndexStore.Pending(records: [], audit: [event("lookup")]) { result in
            answers.withLock { $0["lookup"] = result }
        }
        store.writeQueue.sync { store.commit([batch("a", 1), batch("b", 2, failing: true), lookup, batch("c", 3)]) }
        // The batches that committed are answered once their commit is synced (SQLiteSyncer).
        for _ in 0..<500 where answers.withLock({ $0.count }) < 4 { try await Task.sleep(for: .milliseconds(10)) }
        let results = answers.withLock { $0 }
        XCTAssertEqual(results.count, 4, "every batch answered once")
        XCTAssertEqual(try results["a"]?.get(), [.inserted])
        XCTAssertEqual(try results["c"]?.get(), [.inserted])
        XCTAssertNotNil(try results["lookup"]?.get())
        guard case .failure(.engine(let message))? = results["b"] else { return XCTFail("b: \(String(describing: results["b"]))") }
        XCTAssertEqual(message, "made to fail")
        for (n, stored) in [(1, 1), (2, 0), (3, 1)] {
            let found = try await store.query(StudyQuery(patientToken: Self.token(n)))
            XCTAssertEqual(found.count, stored, "study \(n)")
        }
        let events = try await store.events(from: 0, limit: 10)
        XCTAssertEqual(events.map(\.index), [0, 1, 2])
        XCTAssertEqual(events.filter { $0.text.contains("\"operation\":\"b\"") }.count, 0, "b's leaf went with it")
        XCTAssertEqual(Set(["a", "c", "lookup"].filter { name in events.contains { $0.text.contains("\"operation\":\"\(name)\"") } }),
                       ["a", "c", "lookup"])
    }

    /// A reader keeps its snapshot across commits that only append audit events (so its
    /// page cache survives them), but never across an acknowledged change to the index.
    func testAQueryAfterAnAcknowledgedUploadSeesItThoughAuditCommitsKeptTheSnapshot() async throws {
        let path = Scratch.path("index") + ".sqlite"
        let store = try SQLiteIndexStore(path: path, readers: 1)
        let event: @Sendable ([StudyRecord]) -> AuditEvent = { found in
            AuditEvent(requestID: "r", actor: "a", eventID: .query, action: .read, outcome: .success,
                       operation: "GET /v1/patients", count: found.count, counter: "lookups")
        }
        for n in 1...20 {
            let before = try await store.query(StudyQuery(patientToken: Self.token(n)), audit: event)
            XCTAssertEqual(before.count, 0)
            _ = try await store.upsert([Self.record(n, patient: n)])
            let after = try await store.query(StudyQuery(patientToken: Self.token(n)))
            XCTAssertEqual(after.count, 1, "study \(n), uploaded and acknowledged before this query")
        }
        let size = try await store.auditSize()
        XCTAssertEqual(size, 20)
    }

    func testNewerSchemaIsRefused() throws {
        let path = Scratch.path("index") + ".sqlite"
        _ = try SQLiteIndexStore(path: path, readers: 1)
        let python = try ChildProcess.run("/usr/bin/env", ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version=99'); c.commit()", path])
        XCTAssertEqual(python.status, 0, python.stderr)
        XCTAssertThrowsError(try SQLiteIndexStore(path: path, readers: 1)) {
            XCTAssertTrue("\($0)".contains("newer"), "\($0)")
        }
    }
}

final class SQLiteWorkitemStoreTests: WorkitemStoreContract {
    override func makeStore(policy: QueuePolicy, at location: String?) throws -> (store: WorkitemStore, location: String)? {
        let path = location ?? Scratch.path("workitems") + ".sqlite"
        return (try SQLiteIndexStore(path: path, readers: 2, queuePolicy: policy), path)
    }

    /// Each performed command's audit event is in the log, in the command's transaction.
    func testEveryTransitionIsAuditedWithIt() async throws {
        let path = Scratch.path("workitems") + ".sqlite"
        let store = try SQLiteIndexStore(path: path, readers: 1, queuePolicy: Self.policy())
        @Sendable func event(_ outcome: WorkitemOutcome) -> AuditEvent {
            AuditEvent(requestID: "r", actor: "a", eventID: .orderRecord, action: .update, outcome: .success, operation: "test",
                       studyInstanceUIDs: outcome.changed.map(\.studyInstanceUID), count: outcome.changed.count, counter: "read-transitions")
        }
        _ = try await store.perform(.create(Self.item(1)), durable: true, audit: event).get()
        _ = try await store.perform(.claim(uid: "2.25.1", transactionUID: "1.1", holder: "a", stage: .read), durable: true, audit: event).get()
        _ = try await store.perform(.complete(uid: "2.25.1", transactionUID: "1.9", report: nil), durable: true, audit: event)
        let size = try await store.auditSize()
        XCTAssertEqual(size, 2, "two transitions; the refused completion wrote nothing")
        let events = try await store.events(from: 0, limit: 10)
        XCTAssertEqual(events.count, 2)
        XCTAssertTrue(events.allSatisfy { $0.text.contains("\"studyInstanceUIDs\":[\"1.2.156.1.1\"]") }, "\(events)")
    }
}

final class SQLiteSupervisionStoreTests: SupervisionStoreContract {
    override func makeStore(at location: String?) throws -> (store: Store, location: String)? {
        let path = location ?? Scratch.path("supervision") + ".sqlite"
        return (try SQLiteIndexStore(path: path, readers: 2), path)
    }

    /// The check and its audit leaf share one transaction of the group commit.
    func testACheckAndItsAuditEventAreWrittenTogether() async throws {
        let path = Scratch.path("supervision") + ".sqlite"
        let store = try SQLiteIndexStore(path: path, readers: 1)
        let event = AuditEvent(requestID: "r", actor: "a", eventID: .query, action: .read, outcome: .success, operation: "test",
                               count: 1, counter: "prior-checks")
        try await store.record(Self.check(1, day: "20261110", at: 0, candidate: false), audit: event)
        let size = try await store.auditSize()
        XCTAssertEqual(size, 1)
        let rows = try await store.supervision(SupervisionQuery(fromMonth: "202611", toMonth: "202611"))
        XCTAssertEqual(rows.first?.priorChecks.count, 1)
    }
}
