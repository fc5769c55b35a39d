import Dispatch

/// One read connection on its own queue, and the snapshot it may keep open between
/// index queries.
///
/// Why keep one: SQLite empties a connection's page cache whenever it starts a read
/// transaction and finds that the WAL changed. Every audited lookup commits an audit
/// event, a hundred or more group commits a second under load, so each query began with
/// a cold cache and read its pages again from the OS (`pread`; keeping the cache took
/// audited lookups from 21 091 to about 29 000 req/s, RESULTS.md). A commit
/// that only appends audit events changes nothing an index query reads, so a reader keeps
/// its read transaction, and its cache, across such commits. Since the audit log moved to
/// a file of its own those commits no longer touch the index's WAL at all; the snapshot
/// still spares a reader the lock and WAL-index reads of starting a transaction per query.
///
/// What must stay true: an index query sees every change to the index that was
/// acknowledged before it began. The writer moves `generation` on after each commit
/// that changed anything but the audit log, before it answers anyone; a reader whose
/// snapshot is from an older generation starts a new one. And a snapshot never lives past
/// `maxSnapshotAge`: while it is open the WAL cannot be restarted (the writer's RESTART
/// waits for it) and the checkpointer cannot copy past it. When a restart is due and
/// finds a snapshot open, the writer has every reader close its own and open no lasting
/// one until the restart is done (`release`, `keep`): otherwise, under steady lookups,
/// some reader always held one, the WAL was never restarted, and every commit after
/// the limit moved the generation on and emptied the readers' caches. Every other read (the audit
/// log, the outbox, workitems, quotas) runs outside any snapshot, as it always did.
final class SQLiteReader: @unchecked Sendable {
    let db: SQLiteConnection
    let queue: DispatchQueue
    /// When the open snapshot began (DispatchTime nanoseconds), nil when none is open.
    /// Touched only on `queue`.
    private var openSince: UInt64?
    private var openGeneration = 0
    /// An expiry is scheduled on `queue`; touched only on `queue`.
    private var expiryScheduled = false
    static let maxSnapshotAge: UInt64 = 20_000_000

    init(db: SQLiteConnection, queue: DispatchQueue) {
        self.db = db
        self.queue = queue
    }

    /// Runs `body` on the queue in a snapshot at least as new as `generation`, left open
    /// for the next query; with `keep` false, outside any snapshot (`fresh`).
    func onSnapshot<T>(generation: Int, keep: Bool, _ body: (SQLiteConnection) throws(StoreError) -> T) -> Result<T, StoreError> {
        guard keep else { return fresh(body) }
        let now = DispatchTime.now().uptimeNanoseconds
        if let since = openSince, openGeneration == generation, now &- since < Self.maxSnapshotAge {
            return finish(Result { () throws(StoreError) in try body(db) })
        }
        endSnapshot()
        do {
            try db.execPrepared("BEGIN")
            openSince = now
            openGeneration = generation
            if !expiryScheduled { scheduleExpiry(in: Self.maxSnapshotAge) }
        } catch {
            return .failure(error)
        }
        return finish(Result { () throws(StoreError) in try body(db) })
    }

    /// Ends the open snapshot once it is `maxSnapshotAge` old. One expiry at a time: it
    /// fires no later than the deadline of whatever snapshot is open then (a snapshot
    /// opened after it was scheduled is younger) and schedules itself again for the rest.
    /// One per snapshot, as before, was a timer for the dispatch manager's thread and a
    /// wake-up of a worker's on every index query when commits kept moving the generation
    /// on, some 2 800 a second under read cycles (RESULTS.md, read cycles, session 32).
    private func scheduleExpiry(in nanoseconds: UInt64) {
        expiryScheduled = true
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [self] in
            expiryScheduled = false
            guard let since = openSince else { return }
            let age = DispatchTime.now().uptimeNanoseconds &- since
            if age >= Self.maxSnapshotAge { endSnapshot() } else { scheduleExpiry(in: Self.maxSnapshotAge - age) }
        }
    }

    /// Runs `body` on the queue outside any snapshot: it sees the latest commit.
    func fresh<T>(_ body: (SQLiteConnection) throws(StoreError) -> T) -> Result<T, StoreError> {
        endSnapshot()
        let result = Result { () throws(StoreError) in try body(db) }
        db.resetAll()
        return result
    }

    /// A failed query leaves no snapshot behind: whatever failed starts over next time.
    private func finish<T>(_ result: Result<T, StoreError>) -> Result<T, StoreError> {
        db.resetAll()
        if case .failure = result { endSnapshot() }
        return result
    }

    /// Closes the open snapshot once the query now running (if any) is done: the writer
    /// asks this when a snapshot stands in the way of restarting the WAL.
    func release() {
        queue.async { [self] in endSnapshot() }
    }

    private func endSnapshot() {
        guard openSince != nil else { return }
        openSince = nil
        try? db.execPrepared("COMMIT")
    }
}
