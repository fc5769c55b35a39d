import AuditLog
import Foundation
import ReadQueue

/// A workitem command waiting for the writer, and where its answer goes.
struct WorkitemJob {
    let command: WorkitemCommand
    let audit: @Sendable (WorkitemOutcome) -> AuditEvent?
    let answer: WorkitemAnswer
}

/// Written on the writer thread before the job's `done` runs there: no lock needed.
final class WorkitemAnswer: @unchecked Sendable {
    var result: Result<WorkitemOutcome, WorkitemRefusal> = .failure(.notFound)
}

/// The read queue on the index store's writer: commands run against the in-memory
/// `WorkQueue` and their changed rows and audit event are written in the group commit,
/// so a claim costs one statement and shares its fsync with every other command waiting.
extension SQLiteIndexStore: WorkitemStore {
    public func perform(_ command: WorkitemCommand, durable: Bool,
                        audit: @escaping @Sendable (WorkitemOutcome) -> AuditEvent?) async throws(StoreError)
        -> Result<WorkitemOutcome, WorkitemRefusal>
    {
        let answer = WorkitemAnswer()
        let job = WorkitemJob(command: command, audit: audit, answer: answer)
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<Void, StoreError>, Never>) in
            let batch = Pending(records: [], audit: [], workitem: job) { c.resume(returning: $0.map { _ in () }) }
            if durable, !isExpiry(command) { return enqueue(batch) }
            // Work that need not reach the disk, or an expiry check with nothing due, is
            // answered on the writer without a transaction.
            writeQueue.async { [self] in
                let now = Self.nowMs()
                if isExpiry(command), let due = workQueue.nextDeadline(), due <= now { return enqueue(batch) }
                if isExpiry(command) {
                    answer.result = .success(WorkitemOutcome(item: nil))
                } else {
                    answer.result = workQueue.perform(command, now: now) { uid in try? SQLiteWorkitems.load(uid, on: writer) }
                    writer.resetAll()
                }
                c.resume(returning: .success(()))
            }
        }
        try result.get()
        return answer.result
    }

    public func workitem(_ uid: String) async throws(StoreError) -> Workitem? {
        try await read { db throws(StoreError) in try SQLiteWorkitems.load(uid, on: db) }
    }

    public func workitems(_ query: WorkitemQuery) async throws(StoreError) -> [Workitem] {
        try await read { db throws(StoreError) in try SQLiteWorkitems.search(query, on: db) }
    }

    private func isExpiry(_ command: WorkitemCommand) -> Bool {
        if case .expireLeases = command { return true }
        return false
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Runs one job inside the writer's open transaction, under its own savepoint: a
    /// refusal writes nothing; a failed write undoes the job alone, and the in-memory
    /// queue (already changed) is rebuilt from what the database holds.
    func run(_ job: WorkitemJob, log: inout SQLiteAudit.Appender, now: Int64) -> Result<[UpsertOutcome], StoreError> {
        let result = workQueue.perform(job.command, now: now) { uid in try? SQLiteWorkitems.load(uid, on: writer) }
        job.answer.result = result
        guard case .success(let outcome) = result, !outcome.changed.isEmpty else { return .success([]) }
        let before = log
        do {
            try writer.execPrepared("SAVEPOINT workitem")
            for item in outcome.changed { try SQLiteWorkitems.save(item, on: writer, now: now) }
            if let event = job.audit(outcome) { log.append(event, withIndexChange: true) }
            try writer.execPrepared("RELEASE workitem")
            return .success([])
        } catch {
            try? writer.exec("ROLLBACK TO workitem; RELEASE workitem")
            log = before
            reloadWorkQueue()
            return .failure(error)
        }
    }

    /// Rebuilds the in-memory queue from the database after a failed write. Should the
    /// read fail too, the queue is emptied rather than left wrong: a restart reloads it.
    func reloadWorkQueue() {
        let open = (try? SQLiteWorkitems.loadOpen(on: writer)) ?? []
        writer.resetAll()
        workQueue = WorkQueue(policy: workQueue.policy, open: open)
    }
}
