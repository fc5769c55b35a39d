import AuditLog
import CSQLite
import DequeModule
import Dispatch
import Foundation
import ImagingIndex
import JSONText
import ReadQueue
import Synchronization

/// The embedded store: SQLite files in WAL mode, the index and beside it the audit log
/// (`auditPath`, attached to every connection as schema `audit`; SQLiteAudit says why
/// apart and what that costs). One writer thread takes every batch waiting at once into a
/// single transaction (group commit): under concurrent uploads one fsync serves many
/// batches. The group commit's sync runs beside the writer, which goes on to the next
/// group, and every answer waits for it (SQLiteSyncer). The writer's connection is
/// `synchronous=NORMAL` once open: SQLite never syncs its commits, the syncer does, for
/// the writer's other transactions too (`onWriter`). Readers use their own connections on
/// their own queues; WAL lets them run beside the writer.
public final class SQLiteIndexStore: IndexStore, AuditStore, OutboxStore, @unchecked Sendable {
    let writer: SQLiteConnection
    let writeQueue = DispatchQueue(label: "index-store.writer")
    /// The read queue's live state, touched only on `writeQueue` (see WorkQueue).
    var workQueue: WorkQueue
    private let pending = Mutex<(batches: [Pending], draining: Bool)>(([], false))
    let readers: SQLiteReaderPool
    /// Moved on after every commit that changed more than the audit log (SQLiteReader).
    let generation = Atomic<Int>(0)
    /// The WAL is past `walRestartFrames` and a restart found a reader on it (restartWAL).
    let walRestartDue = Atomic<Bool>(false)
    /// WAL frames past which this store restarts the WAL (`walRestartFrames`).
    let walRestartLimit: Int32
    /// Whether a reader may leave its snapshot open for its next query.
    private var keepSnapshots: Bool { !walRestartDue.load(ordering: .relaxed) }
    /// Queue every stored record for the national node (a regional node that gathers).
    let gathers: Bool
    let checkpointer: SQLiteCheckpointer
    /// WAL frames (both files) when the checkpointer was last nudged; touched only on
    /// `writeQueue`, like the flags and states after it.
    var nudgedAt: Int32 = 0
    /// Each group commit that wrote rows to `audit_pending`, oldest first, with the log's
    /// size after it: once it is durable in both files, the rows up to that size go.
    var auditPendingMarks = Deque<(commit: Int, leaves: Int)>()
    /// A commit failed: leaves may be in `audit_pending` and not in the audit file.
    var auditRecoveryDue = false
    /// Syncs the group commits and answers their batches (SQLiteSyncer).
    let syncer: SQLiteSyncer
    /// The checkpointer passes after which each WAL restarts (SQLiteIndexStore+WAL).
    var restartAfterPass: CatchUp?
    var auditRestartAfterPass: CatchUp?
    /// Since when uploads wait for the index's WAL to restart (SQLiteIndexStore+WAL).
    var uploadsHeldSince: ContinuousClock.Instant?

    /// Audit leaves the index's file held beyond the audit file's end when the store opened:
    /// the last stop fell between the two files' syncs, and opening filed them.
    public let auditLeavesPutBack: Int

    /// Upload records a group commit takes at most (`drain`): one batch of the usual size.
    static let recordsPerGroup = 1_000

    /// Opens (creating and migrating if needed) the store at `path`. `upgrading` hears, before
    /// they run, how many migrations an existing file has still to run (a new file's run on
    /// an empty file and are not told): all run before this returns, and one that rebuilds
    /// an index takes some seconds a million studies.
    public convenience init(path: String, readers: Int = ProcessInfo.processInfo.activeProcessorCount,
                            gathers: Bool = false, queuePolicy: QueuePolicy = QueuePolicy(),
                            upgrading: (_ migrations: Int) -> Void = { _ in }) throws(StoreError) {
        try self.init(path: path, readers: readers, gathers: gathers, queuePolicy: queuePolicy,
                      walRestartFrames: Self.walRestartFrames, upgrading: upgrading)
    }

    /// `walRestartFrames` and `auditSyncAge` (SQLiteSyncer) other than the defaults only in
    /// tests, to reach the restart soon or to hold the audit file's sync off.
    init(path: String, readers: Int, gathers: Bool, queuePolicy: QueuePolicy, walRestartFrames: Int32,
         auditSyncAge: Duration = .milliseconds(50), upgrading: (_ migrations: Int) -> Void = { _ in }) throws(StoreError) {
        self.gathers = gathers
        walRestartLimit = walRestartFrames
        writer = try SQLiteConnection(path: path, readOnly: false)
        // A 64 MiB page cache keeps the upper index levels in memory as the index grows.
        // temp_store stays FILE: with MEMORY the savepoint sub-journal of a batch lives in a
        // list of 1 KiB chunks that SQLite walks from the start at the end of every
        // statement inside the savepoint, quadratic in the batch (60 % of ingest CPU at
        // 200 000 studies); a spilled sub-journal is a temporary file, truncated at once.
        try writer.exec("""
            PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
            PRAGMA cache_size = -65536;
            """)
        writer.watchWAL()
        try SQLiteSchema.migrate(writer, upgrading: upgrading)
        let auditPath = Self.auditPath(for: path)
        try Self.prepareAuditFile(auditPath)
        try writer.attachAudit(auditPath)
        try writer.exec("PRAGMA audit.synchronous = FULL; PRAGMA audit.cache_size = -8192;")
        try SQLiteSchema.moveAudit(writer)
        auditLeavesPutBack = try SQLiteAudit.recoverPending(writer)
        // The WALs the last run left are copied in and emptied before anyone reads. A node
        // stopped after an ingest left hundreds of megabytes of WAL (under ingest the
        // restart lets it grow, and none follows the last commit), and every page a reader
        // fetched was first looked up in that WAL's index until a write came to restart it:
        // with the audit log off, none ever did (RESULTS.md, index, session 30). Should it
        // fail (another process reading), the WAL stays as it was, as before.
        writer.resetAll()
        try? writer.exec("PRAGMA main.wal_checkpoint(TRUNCATE); PRAGMA audit.wal_checkpoint(TRUNCATE);")
        Self.reserveAuditWAL(auditPath)
        workQueue = WorkQueue(policy: queuePolicy, open: try SQLiteWorkitems.loadOpen(on: writer))
        writer.resetAll()
        checkpointer = try SQLiteCheckpointer(path: path, auditPath: auditPath)
        syncer = SQLiteSyncer(walPaths: [path + "-wal", auditPath + "-wal"], auditSyncAge: auditSyncAge)
        // Opening, migrating and recovering committed with FULL, synced by SQLite itself.
        try writer.exec("PRAGMA main.synchronous = NORMAL; PRAGMA audit.synchronous = NORMAL")
        _ = writer.takeWALWrites()
        var list: [SQLiteReader] = []
        for i in 0..<max(1, readers) {
            let c = try SQLiteConnection(path: path, readOnly: true)
            try c.attachAudit(auditPath)
            try c.exec("PRAGMA cache_size = -32768;")
            list.append(SQLiteReader(db: c, queue: DispatchQueue(label: "index-store.reader.\(i)")))
        }
        self.readers = SQLiteReaderPool(list)
    }

    public func upsert(_ records: [StudyRecord], audit: AuditEvent?) async throws(StoreError) -> [UpsertOutcome] {
        guard !records.isEmpty || audit != nil else { return [] }
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<[UpsertOutcome], StoreError>, Never>) in
            enqueue(Pending(records: records, audit: audit.map { [$0] } ?? []) { c.resume(returning: $0) })
        }
        return try result.get()
    }

    /// Audit events ride the same group commit as uploads: many lookups share one fsync.
    public func append(_ events: [AuditEvent]) async throws(StoreError) {
        guard !events.isEmpty else { return }
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<[UpsertOutcome], StoreError>, Never>) in
            enqueue(Pending(records: [], audit: events) { c.resume(returning: $0) })
        }
        _ = try result.get()
    }

    public func query(_ query: StudyQuery) async throws(StoreError) -> [StudyRecord] {
        try await read(here: query.isShort, { db throws(StoreError) in try SQLiteQuery.run(query, on: db) }, then: nil)
    }

    /// The reader that ran the query enqueues the event on the group commit itself; the
    /// caller resumes once, after the commit (one thread hop fewer than query, then append).
    public func query(_ query: StudyQuery, audit: @escaping @Sendable ([StudyRecord]) -> AuditEvent) async throws(StoreError)
        -> [StudyRecord]
    {
        try await self.query(query) { studies, done in Pending(records: [], audit: [audit(studies)], done: done) }
    }

    public func query(_ query: StudyQuery, writing write: @escaping @Sendable (any StudyFields, inout JSONWriter) -> Void,
                      audit: (@Sendable (WrittenStudies) -> AuditEvent)?) async throws(StoreError) -> WrittenStudies
    {
        let named = audit != nil
        let run: @Sendable (SQLiteConnection) throws(StoreError) -> WrittenStudies = { db throws(StoreError) in
            try SQLiteQuery.write(query, on: db, named: named, write)
        }
        guard let audit else { return try await read(here: query.isShort, run, then: nil) }
        return try await read(here: query.isShort, run) { written, done in Pending(records: [], audit: [audit(written)], done: done) }
    }

    /// Only a patient's studies (`isShort`), and only with everything begun durable before
    /// and after the read: a commit that began meanwhile, not yet synced, sends the caller
    /// to `query(_:writing:audit:)`, which reads again and waits for it.
    public func queryAtOnce(_ query: StudyQuery, writing write: (any StudyFields, inout JSONWriter) -> Void) -> WrittenStudies? {
        guard query.isShort, syncer.everythingDurable,
              let found = readers.readHere({ reader in
                  onSnapshot(reader) { db throws(StoreError) in try SQLiteQuery.write(query, on: db, named: false, write) }
              }),
              syncer.everythingDurable, case .success(let written) = found else { return nil }
        return written
    }

    public func query(_ queries: [StudyQuery], audit: (@Sendable (Int, [StudyRecord]) -> AuditEvent)?) async throws(StoreError)
        -> [[StudyRecord]]
    {
        let run: @Sendable (SQLiteConnection) throws(StoreError) -> [[StudyRecord]] = { db throws(StoreError) in
            var pages: [[StudyRecord]] = []
            for query in queries { pages.append(try SQLiteQuery.run(query, on: db)) }
            return pages
        }
        guard let audit else { return try await read(run, then: nil) }
        return try await read(run) { pages, done in
            Pending(records: [], audit: pages.enumerated().map { audit($0.offset, $0.element) }, done: done)
        }
    }

    /// Runs `query` on a reader, which then enqueues the write `pending` makes of the
    /// results on the group commit; the caller resumes once, after the commit.
    func query(_ query: StudyQuery, then pending: @escaping Pending.After<[StudyRecord]>) async throws(StoreError) -> [StudyRecord] {
        try await read(here: query.isShort, { db throws(StoreError) in try SQLiteQuery.run(query, on: db) }, then: pending)
    }

    /// `body` on a reader's snapshot; with `pending`, the write it makes of the result is
    /// then enqueued on the group commit, and the caller resumes once, after the commit. A
    /// short read runs here when it can (`SQLiteReaderPool.readHere`); with nothing to
    /// write and everything it could see durable, it returns without suspending: no
    /// continuation, no hop back to the caller's executor.
    private func read<T: Sendable>(here: Bool = false, _ body: @escaping @Sendable (SQLiteConnection) throws(StoreError) -> T,
                                   then pending: Pending.After<T>?)
        async throws(StoreError) -> T
    {
        if here, let found = readers.readHere({ onSnapshot($0, body) }) {
            if pending == nil, syncer.everythingDurable { return try found.get() }
            return try await withCheckedContinuation { c in settle(found, then: pending, c) }.get()
        }
        return try await withCheckedContinuation { c in
            readers.submit { [self] reader in settle(onSnapshot(reader, body), then: pending, c) }
        }.get()
    }

    /// Answers a read once what it saw is durable; or, with `pending` and an answer,
    /// enqueues the write `pending` makes of it and answers after that commit.
    private func settle<T: Sendable>(_ found: Result<T, StoreError>, then pending: Pending.After<T>?,
                                     _ c: CheckedContinuation<Result<T, StoreError>, Never>) {
        guard case .success(let value) = found, let pending else { return answerWhenDurable(found, c) }
        enqueue(pending(value) { committed in c.resume(returning: committed.map { _ in value }) })
    }

    /// `body` on `reader`'s snapshot of the index as this store's writer has moved it on.
    private func onSnapshot<T>(_ reader: SQLiteReader, _ body: (SQLiteConnection) throws(StoreError) -> T) -> Result<T, StoreError> {
        reader.onSnapshot(generation: generation.load(ordering: .acquiring), keep: keepSnapshots, body)
    }

    public func count() async throws(StoreError) -> Int {
        try await read { db throws(StoreError) in
            let s = try db.statement("SELECT count(*) FROM studies")
            _ = try s.step()
            return s.int(0) ?? 0
        }
    }

    public func savedResponse(scope: String, key: String) async throws(StoreError) -> SavedResponse? {
        try await read { db throws(StoreError) in
            let s = try db.statement("SELECT status, body, fingerprint FROM idempotency WHERE scope = ?1 AND key = ?2")
            s.bind(1, scope)
            s.bind(2, key)
            return try s.step() ? SavedResponse(status: s.int(0) ?? 0, body: s.blob(1), requestFingerprint: s.blob(2)) : nil
        }
    }

    /// Rides a group commit after the one that held the records it describes: a crash in
    /// between only means a retry stores the same records again, which identity makes
    /// harmless.
    public func saveResponse(_ response: SavedResponse, scope: String, key: String) async throws(StoreError) {
        let now = Int(Date().timeIntervalSince1970)
        try await groupWrite { db throws(StoreError) in
            let s = try db.statement(
                "INSERT OR IGNORE INTO idempotency (scope, key, status, body, created_at, fingerprint) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            s.bind(1, scope)
            s.bind(2, key)
            s.bind(3, response.status)
            s.bind(4, response.body)
            s.bind(5, now)
            s.bind(6, response.requestFingerprint)
            _ = try s.step()
        }
    }

    /// A small write that shares the next group commit, and its fsync, with whatever else
    /// is waiting, instead of a transaction of its own.
    func groupWrite(_ write: @escaping @Sendable (SQLiteConnection) throws(StoreError) -> Void) async throws(StoreError) {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<[UpsertOutcome], StoreError>, Never>) in
            enqueue(Pending(records: [], audit: [], write: write) { c.resume(returning: $0) })
        }
        _ = try result.get()
    }

    public func purgeTokens(keyVersion: Int) async throws(StoreError) -> Int {
        try await onWriter { [self] writer throws(StoreError) in
            let pattern = "v\(keyVersion):*"
            var deleted = 0
            try writer.transaction { () throws(StoreError) in
                let modalities = try writer.statement(
                    "DELETE FROM study_modalities WHERE study_id IN (SELECT id FROM studies WHERE patient_token GLOB ?1)")
                modalities.bind(1, pattern)
                _ = try modalities.step()
                let studies = try writer.statement("DELETE FROM studies WHERE patient_token GLOB ?1")
                studies.bind(1, pattern)
                _ = try studies.step()
                deleted = writer.changes
                let checks = try writer.statement("DELETE FROM prior_checks WHERE patient_token GLOB ?1")
                checks.bind(1, pattern)
                _ = try checks.step()
            }
            generation.add(1, ordering: .releasing)
            return deleted
        }
    }

    /// Checks the file's integrity (`PRAGMA integrity_check`); "ok" when sound.
    public func integrityCheck() async throws(StoreError) -> String {
        try await read { db throws(StoreError) in
            let s = try db.statement("PRAGMA integrity_check")
            _ = try s.step()
            return s.string(0) ?? ""
        }
    }

    /// Runs `body` on a reader, outside any snapshot: it sees the latest commit.
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws(StoreError) -> T) async throws(StoreError) -> T {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<T, StoreError>, Never>) in
            readers.submit { [self] reader in answerWhenDurable(reader.fresh(body), c) }
        }
        return try result.get()
    }

    /// `body` on the writer's connection, between group commits, outside them: for work
    /// that must not share a group's transaction (it opens its own, or needs none). What it
    /// commits is synced before the answer, and numbered like a group's commit so that no
    /// reader answers with it before.
    func onWriter<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws(StoreError) -> T) async throws(StoreError) -> T {
        let (writer, syncer) = (self.writer, self.syncer)
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<T, StoreError>, Never>) in
            writeQueue.async {
                defer { writer.resetAll() }
                let number = syncer.begin()
                let result = Result { () throws(StoreError) in try body(writer) }
                syncer.finishedHere(number, wrote: writer.takeWALWrites()) { failure in
                    c.resume(returning: failure.map { .failure($0) } ?? result)
                }
            }
        }
        return try result.get()
    }

    /// A reader may have seen a commit not yet synced: it answers once that commit is durable.
    private func answerWhenDurable<T: Sendable>(_ found: Result<T, StoreError>, _ c: CheckedContinuation<Result<T, StoreError>, Never>) {
        syncer.whenDurable { failure in c.resume(returning: failure.map { .failure($0) } ?? found) }
    }

    // MARK: group commit

    func enqueue(_ batch: Pending) {
        let start = pending.withLock { state -> Bool in
            state.batches.append(batch)
            if state.draining { return false }
            state.draining = true
            return true
        }
        if start { writeQueue.async { self.drain() } }
    }

    /// Commits what is waiting, then whatever arrived during that commit, until none.
    /// A round takes every lookup (a batch that only appends audit leaves) but uploads only
    /// up to `recordsPerGroup` records (at least one batch), and commits the lookups first,
    /// in a transaction of their own. A lookup beside an ingest had waited for a group of
    /// every upload in flight (up to 180 ms at 1.1 M studies) and then for that group's
    /// sync: at 500 lookups/s beside an ingest their p99 was 0.58–1.34 s, and is 0.26–0.42 s.
    /// Their leaves may precede an upload's that arrived before them: the log promises no
    /// order between concurrent requests. While uploads are held (`uploadsHeld`) a round
    /// takes lookups alone, and waits in steps of a millisecond while nothing else is
    /// waiting, so that held uploads are not left without a drain to take them.
    private func drain() {
        while true {
            let held = uploadsHeld
            let (lookups, writes, waiting) = pending.withLock { state -> ([Pending], [Pending], Bool) in
                var lookups: [Pending] = [], writes: [Pending] = [], left: [Pending] = [], records = 0
                for b in state.batches {
                    if b.onlyAudits {
                        lookups.append(b)
                    } else if !held, writes.isEmpty || records + b.records.count <= Self.recordsPerGroup {
                        writes.append(b)
                        records += b.records.count
                    } else {
                        left.append(b)
                    }
                }
                state.batches = left
                if lookups.isEmpty, writes.isEmpty, left.isEmpty { state.draining = false }
                return (lookups, writes, !left.isEmpty)
            }
            if !lookups.isEmpty { commit(lookups) }
            if !writes.isEmpty { commit(writes) }
            if lookups.isEmpty, writes.isEmpty {
                guard waiting else { return }
                usleep(1_000)
            }
            maintainWALs()
        }
    }
}
