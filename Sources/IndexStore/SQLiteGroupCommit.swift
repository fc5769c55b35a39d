import AuditLog
import Foundation
import ImagingIndex
import ReadQueue

/// The writer's transaction for a group of waiting batches. What must stay true: each
/// batch is answered exactly once, after the commit that holds it is durable (or with the
/// error that kept it out), and a batch that fails is undone alone, with its audit event,
/// while the others commit. A commit that changes the index does not sync; SQLiteSyncer
/// does, beside the writer, and answers: once the index's file is synced, when every leaf
/// of the commit is kept in `audit_pending` too, else once both files are. Those rows are
/// deleted only once the audit file's copy of them is durable.
extension SQLiteIndexStore {
    /// One caller's writes for the group commit, and whom to answer once they are durable.
    struct Pending {
        let records: [StudyRecord]
        let audit: [AuditEvent]
        var workitem: WorkitemJob?
        /// Rows of another kind (a prior-exam check) written with the batch's audit events.
        var write: (@Sendable (SQLiteConnection) throws(StoreError) -> Void)?
        let done: @Sendable (Result<[UpsertOutcome], StoreError>) -> Void

        /// Audit leaves only (a lookup's): nothing in the index changes.
        var onlyAudits: Bool { records.isEmpty && workitem == nil && write == nil }

        init(records: [StudyRecord], audit: [AuditEvent], workitem: WorkitemJob? = nil,
             write: (@Sendable (SQLiteConnection) throws(StoreError) -> Void)? = nil,
             done: @escaping @Sendable (Result<[UpsertOutcome], StoreError>) -> Void) {
            self.records = records
            self.audit = audit
            self.workitem = workitem
            self.write = write
            self.done = done
        }

        /// What a read hands on to be written after it: the batch made of its answer, with
        /// `done` to call once that batch is committed.
        typealias After<T> = @Sendable (T, _ done: @escaping @Sendable (Result<[UpsertOutcome], StoreError>) -> Void) -> Pending
    }

    /// Record batches run first and without savepoints: a savepoint makes SQLite copy
    /// every page the batch touches into a sub-journal before changing it, which doubled
    /// the bytes an upload writes. Should one of them fail (a full disk, say) the whole
    /// transaction is rolled back before anyone is answered and the group runs again with
    /// a savepoint around each batch, the only way one can be undone alone.
    func commit(_ group: [Pending]) {
        if group.contains(where: { !$0.records.isEmpty && $0.workitem == nil }), attempt(group, isolating: false) { return }
        _ = attempt(group, isolating: true)
    }

    /// One transaction for the group. Returns false only when, not isolating, a record
    /// batch failed: then everything was rolled back and no batch has been answered.
    /// Workitem commands change the in-memory queue as they run, so they come after every
    /// record batch, where nothing can send the group back for another attempt.
    /// Audit-only batches (lookups) need no savepoint: an insert into the log fails only
    /// when the whole transaction does. Leaves and usage counts are kept in memory for
    /// the group and written once, so a group of many lookups costs one usage row per
    /// certificate and counter. Before anything else, leaves a failed commit or a crash
    /// may have lost from the audit file are put back (SQLiteAudit).
    private func attempt(_ group: [Pending], isolating: Bool) -> Bool {
        // A group that changes the index is synced and answered by SQLiteSyncer while the
        // writer goes on; lookups alone are synced here and answered at once when nothing
        // before them waits for a sync: a thread hop more would cost them more than the
        // sync they could share. (This was `synchronous` switched between FULL and NORMAL
        // around each group that changed the index: four PRAGMAs parsed a group, 3 % of
        // the node's CPU in the read-cycle benchmark.)
        let deferred = group.contains { !$0.onlyAudits }
        defer { writer.resetAll() }
        var results = [Result<[UpsertOutcome], StoreError>?](repeating: nil, count: group.count)
        var log: SQLiteAudit.Appender
        // The commits that kept leaves in audit_pending and are durable in both files: their
        // rows are no longer needed. Marks are in commit order, and so is durability.
        var filed = 0
        do {
            if auditRecoveryDue {
                try SQLiteAudit.recoverPending(writer)
                auditRecoveryDue = false
                auditPendingMarks.removeAll()
            }
            try writer.execPrepared("BEGIN IMMEDIATE")
            filed = auditPendingMarks.prefix { syncer.isDurable($0.commit) }.count
            if filed > 0 { try SQLiteAudit.forgetPending(through: auditPendingMarks[filed - 1].leaves, on: writer) }
            log = try SQLiteAudit.Appender(writer)
        } catch {
            try? writer.exec("ROLLBACK")
            group.forEach { $0.done(.failure(error)) }
            return true
        }
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        let now = Int(nowMs / 1000)
        for (i, batch) in group.enumerated() where !batch.records.isEmpty && batch.workitem == nil {
            if isolating {
                results[i] = isolated(batch, log: &log, now: now)
                continue
            }
            do {
                results[i] = .success(try apply(batch, log: &log, now: now))
            } catch {
                try? writer.exec("ROLLBACK")
                return false
            }
        }
        do {
            for (i, batch) in group.enumerated() where results[i] == nil {
                if let job = batch.workitem {
                    results[i] = run(job, log: &log, now: nowMs)
                } else if batch.write == nil {
                    for event in batch.audit { log.append(event, withIndexChange: false) }
                    results[i] = .success([])
                } else {
                    results[i] = isolated(batch, log: &log, now: now)
                }
            }
            try log.write()
        } catch {
            return rolledBack(group, error)
        }
        // Numbered before COMMIT: a reader may see the commit before this thread returns.
        let number = syncer.begin()
        do {
            try writer.execPrepared("COMMIT")
        } catch {
            syncer.finished(number, wrote: writer.takeWALWrites()) { _ in }
            return rolledBack(group, error)
        }
        auditPendingMarks.removeFirst(filed)
        if log.wrotePending { auditPendingMarks.append((number, log.endLeaf)) }
        if deferred { generation.add(1, ordering: .releasing) }
        let answers = zip(group.map(\.done), results).map { ($0, $1 ?? .success([])) }
        let answer: @Sendable (StoreError?) -> Void = { failure in
            for (done, result) in answers { done(failure.map { .failure($0) } ?? result) }
        }
        let wrote = writer.takeWALWrites()
        if deferred {
            syncer.finished(number, wrote: wrote, needs: log.wroteAlone ? .all : .index, then: answer)
        } else {
            syncer.finishedHere(number, wrote: wrote, then: answer)
        }
        return true
    }

    /// Rolls the group back and answers every batch with `error`. A failed COMMIT may have
    /// kept the index's file and lost the audit file's part: the next group puts it back.
    private func rolledBack(_ group: [Pending], _ error: StoreError) -> Bool {
        try? writer.exec("ROLLBACK")
        auditRecoveryDue = true
        if group.contains(where: { $0.workitem != nil }) { reloadWorkQueue() }
        group.forEach { $0.done(.failure(error)) }
        return true
    }

    /// `apply` under a savepoint: a failure undoes this batch and its audit event alone.
    private func isolated(_ batch: Pending, log: inout SQLiteAudit.Appender, now: Int) -> Result<[UpsertOutcome], StoreError> {
        let before = log
        do {
            try writer.execPrepared("SAVEPOINT batch")
            let outcomes = try apply(batch, log: &log, now: now)
            try writer.execPrepared("RELEASE batch")
            return .success(outcomes)
        } catch {
            try? writer.exec("ROLLBACK TO batch; RELEASE batch")
            log = before
            return .failure(error)
        }
    }

    private func apply(_ batch: Pending, log: inout SQLiteAudit.Appender, now: Int) throws(StoreError) -> [UpsertOutcome] {
        var outcomes: [UpsertOutcome] = []
        outcomes.reserveCapacity(batch.records.count)
        let upsert = try SQLiteWrite.Upsert(on: writer)
        for record in batch.records { outcomes.append(try upsert(record, now: now)) }
        if gathers {
            let toGather = zip(batch.records, outcomes).filter { $0.1 != .unchanged }.map(\.0)
            if !toGather.isEmpty { try SQLiteOutbox.queue(toGather, on: writer, now: now) }
        }
        try batch.write?(writer)
        // A batch of studies all sent again as stored changed nothing a crash could keep
        // without its leaf: the leaf goes to the audit file alone, as a lookup's does.
        let changed = batch.write != nil || outcomes.contains { $0 != .unchanged }
        for event in batch.audit { log.append(event, withIndexChange: changed) }
        return outcomes
    }
}
