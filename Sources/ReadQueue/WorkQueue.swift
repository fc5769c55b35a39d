import HeapModule

/// The read queue's live state: every open workitem, the two waiting sets and the
/// leases. It is a plain value with no locking: its owner confines it to one thread (the
/// SQLite store keeps it on its writer) and persists `changed` from each outcome in the
/// same transaction, so memory and disk move together. After a failed transaction the
/// owner rebuilds it from storage with `init(policy:open:)`.
///
/// Invariants: an item is in at most one of `waitingForAI`, `waitingForReaders` and the
/// held stages; a held item has a holder, a Transaction UID and a lease deadline; final
/// items are not kept here (the owner's `stored` lookup finds them).
public struct WorkQueue {
    public let policy: QueuePolicy
    private var open: [String: Workitem] = [:]
    private var waitingForAI = ReadySet()
    private var waitingForReaders = ReadySet()
    private var leases = Heap<Lease>()

    private struct Lease: Comparable {
        let deadline: Int64
        let uid: String
        static func < (a: Lease, b: Lease) -> Bool { (a.deadline, a.uid) < (b.deadline, b.uid) }
    }

    /// Rebuilds the state from the open items in storage (any order).
    public init(policy: QueuePolicy, open items: [Workitem] = []) {
        self.policy = policy
        for item in items.sorted(by: { ($0.waitingSince, $0.uid) < ($1.waitingSince, $1.uid) }) { place(item) }
    }

    public var openCount: Int { open.count }
    public var waitingCount: (ai: Int, readers: Int) { (waitingForAI.count, waitingForReaders.count) }
    public func item(_ uid: String) -> Workitem? { open[uid] }

    /// Runs `command` at time `now` (ms). `stored` finds an item that is not open here
    /// (final, or unknown): commands about finished items answer from it.
    public mutating func perform(_ command: WorkitemCommand, now: Int64,
                                 stored: (String) -> Workitem?) -> Result<WorkitemOutcome, WorkitemRefusal> {
        switch command {
        case .create(let item):
            guard open[item.uid] == nil, stored(item.uid) == nil else { return .failure(.duplicate) }
            var item = item
            item.stage = policy.aiStage && item.stage != .ready ? .awaitingAI : .ready
            item.waitingSince = now
            place(item)
            return .success(WorkitemOutcome(item: item, changed: [item]))
        case .claim(let uid, let txn, let holder, let stage):
            guard var item = open[uid] else { return .failure(finished(uid, stored)) }
            let waiting: Workitem.Stage = stage == .ai ? .awaitingAI : .ready
            guard item.stage == waiting else { return .failure(.wrongState(notWaiting(item, stage))) }
            if stage == .ai { waitingForAI.remove(uid) } else { waitingForReaders.remove(uid) }
            hold(&item, stage: stage, txn: txn, holder: holder, now: now)
            return .success(WorkitemOutcome(item: item, changed: [item]))
        case .claimNext(let stage, let labels, let txn, let holder):
            var expired = expire(now: now)
            let uid = stage == .ai ? waitingForAI.popNext(now: now, agingMs: policy.agingMs, labels: labels)
                                   : waitingForReaders.popNext(now: now, agingMs: policy.agingMs, labels: labels)
            guard let uid, var item = open[uid] else {
                return expired.isEmpty ? .failure(.noneWaiting) : .success(WorkitemOutcome(item: nil, changed: expired))
            }
            hold(&item, stage: stage, txn: txn, holder: holder, now: now)
            expired.append(item)
            return .success(WorkitemOutcome(item: item, changed: expired))
        case .heartbeat(let uid, let txn):
            guard var item = open[uid] else { return .failure(finished(uid, stored)) }
            guard item.stage.isHeld else { return .failure(.wrongState("the workitem is not held (\(item.stage.rawValue))")) }
            guard item.transactionUID == txn else { return .failure(.wrongTransaction) }
            item.leaseDeadline = now + (item.stage == .runningAI ? policy.aiLeaseMs : policy.leaseMs)
            open[uid] = item
            leases.insert(Lease(deadline: item.leaseDeadline!, uid: uid))
            return .success(WorkitemOutcome(item: item, changed: [item]))
        case .complete(let uid, let txn, let report):
            return finish(uid, txn: txn, to: .completed, now: now, stored: stored) { $0.report = report }
        case .cancel(let uid, let txn, let reason):
            return finish(uid, txn: txn, to: .canceled, now: now, stored: stored) { $0.reason = reason }
        case .requestCancel(let uid, let clinic, let reason):
            guard var item = open[uid] else {
                guard let done = stored(uid), clinic == nil || done.clinic == clinic else { return .failure(.notFound) }
                return .failure(.wrongState("the workitem is already \(done.stage.upsState)"))
            }
            guard clinic == nil || item.clinic == clinic else { return .failure(.notFound) }
            if item.stage.isHeld {
                item.cancelRequested = true
                item.reason = reason
                open[uid] = item
                return .success(WorkitemOutcome(item: item, changed: [item]))
            }
            item.reason = reason
            return .success(close(item, as: .canceled))
        case .finishAI(let uid, let txn, let result):
            guard var item = open[uid] else { return .failure(finished(uid, stored)) }
            guard item.stage == .runningAI else { return .failure(.wrongState("the workitem is not in the AI stage")) }
            guard item.transactionUID == txn else { return .failure(.wrongTransaction) }
            release(&item)
            if item.cancelRequested { return .success(close(item, as: .canceled)) }
            switch result {
            case .triaged(let priority, let json):
                item.triagePriority = priority
                item.aiResult = json
                item.stage = .ready
                item.waitingSince = now
                place(item)
                return .success(WorkitemOutcome(item: item, changed: [item]))
            case .failed(let reason):
                item.aiAttempts += 1
                return .success(retryOrDeadLetter(item, reason: "AI stage: \(reason)", now: now))
            }
        case .expireLeases:
            let expired = expire(now: now)
            return .success(WorkitemOutcome(item: nil, changed: expired))
        case .redrive(let uid, let newUID):
            guard let old = open[uid] ?? stored(uid) else { return .failure(.notFound) }
            guard old.stage == .deadLetter else { return .failure(.wrongState("only a dead-lettered workitem is re-driven")) }
            guard open[newUID] == nil, stored(newUID) == nil else { return .failure(.duplicate) }
            var item = Workitem(uid: newUID, clinic: old.clinic, studyInstanceUID: old.studyInstanceUID,
                                storageUnit: old.storageUnit, retrieveURL: old.retrieveURL, region: old.region,
                                modalities: old.modalities, bodyPart: old.bodyPart,
                                priority: old.priority, label: old.label, expectedCompletion: max(old.expectedCompletion, now),
                                createdAt: now, redriveOf: uid)
            // A read that failed after a good AI run keeps its triage and does not run it again.
            item.triagePriority = old.triagePriority
            item.aiResult = old.aiResult
            item.stage = old.aiResult != nil || !policy.aiStage ? .ready : .awaitingAI
            item.waitingSince = now
            place(item)
            return .success(WorkitemOutcome(item: item, changed: [item]))
        }
    }

    /// The earliest lease deadline, if any item is held: when `expireLeases` has work.
    public mutating func nextDeadline() -> Int64? {
        while let first = leases.min {
            if let item = open[first.uid], item.stage.isHeld, item.leaseDeadline == first.deadline { return first.deadline }
            leases.removeMin()
        }
        return nil
    }

    // MARK: steps

    private mutating func place(_ item: Workitem) {
        open[item.uid] = item
        switch item.stage {
        case .awaitingAI: waitingForAI.insert(item, priority: item.priority)
        case .ready: waitingForReaders.insert(item, priority: item.readPriority)
        case .runningAI, .inProgress: leases.insert(Lease(deadline: item.leaseDeadline ?? 0, uid: item.uid))
        case .completed, .canceled, .deadLetter: open[item.uid] = nil
        }
    }

    private mutating func hold(_ item: inout Workitem, stage: ClaimStage, txn: String, holder: String, now: Int64) {
        item.stage = stage == .ai ? .runningAI : .inProgress
        item.transactionUID = txn
        item.holder = holder
        item.leaseDeadline = now + (stage == .ai ? policy.aiLeaseMs : policy.leaseMs)
        place(item)
    }

    private func release(_ item: inout Workitem) {
        item.holder = nil
        item.transactionUID = nil
        item.leaseDeadline = nil
    }

    private mutating func finish(_ uid: String, txn: String, to stage: Workitem.Stage, now: Int64,
                                 stored: (String) -> Workitem?,
                                 _ change: (inout Workitem) -> Void) -> Result<WorkitemOutcome, WorkitemRefusal> {
        guard var item = open[uid] else {
            guard let done = stored(uid) else { return .failure(.notFound) }
            if done.stage == stage, done.transactionUID == txn { return .success(WorkitemOutcome(item: done, replayed: true)) }
            return .failure(.wrongState("the workitem is already \(done.stage.upsState)"))
        }
        guard item.stage == .inProgress else { return .failure(.wrongState("the workitem is \(item.stage.upsState), not IN PROGRESS")) }
        guard item.transactionUID == txn else { return .failure(.wrongTransaction) }
        change(&item)
        item.leaseDeadline = nil
        return .success(close(item, as: stage))
    }

    /// Moves an open item to a final stage. The Transaction UID stays, so a repeated
    /// final state under it is recognized.
    private mutating func close(_ item: Workitem, as stage: Workitem.Stage) -> WorkitemOutcome {
        var item = item
        waitingForAI.remove(item.uid)
        waitingForReaders.remove(item.uid)
        item.stage = stage
        item.leaseDeadline = nil
        open[item.uid] = nil
        return WorkitemOutcome(item: item, changed: [item])
    }

    /// After a failed AI run or an expired lease (the caller counted it): back to the
    /// stage's waiting set, or dead-lettered once the attempts are used up.
    private mutating func retryOrDeadLetter(_ item: Workitem, reason: String, now: Int64) -> WorkitemOutcome {
        var item = item
        let ai = item.stage == .runningAI
        let attempts = ai ? item.aiAttempts : item.attempts
        if attempts >= (ai ? policy.maxAIAttempts : policy.maxAttempts) {
            item.reason = "\(reason) (attempt \(attempts))"
            return close(item, as: .deadLetter)
        }
        item.stage = ai ? .awaitingAI : .ready
        item.waitingSince = now
        place(item)
        return WorkitemOutcome(item: item, changed: [item])
    }

    private mutating func expire(now: Int64) -> [Workitem] {
        var changed: [Workitem] = []
        while let deadline = nextDeadline(), deadline <= now {
            let uid = leases.removeMin().uid
            guard var item = open[uid] else { continue }
            let reason = item.stage == .runningAI ? "AI stage: lease expired" : "reader lease expired"
            if item.stage == .runningAI { item.aiAttempts += 1 } else { item.attempts += 1 }
            release(&item)
            if item.cancelRequested {
                changed.append(close(item, as: .canceled).item!)
            } else {
                changed += retryOrDeadLetter(item, reason: reason, now: now).changed
            }
        }
        return changed
    }

    private func finished(_ uid: String, _ stored: (String) -> Workitem?) -> WorkitemRefusal {
        guard let done = stored(uid) else { return .notFound }
        return .wrongState("the workitem is already \(done.stage.upsState)")
    }

    private func notWaiting(_ item: Workitem, _ stage: ClaimStage) -> String {
        switch item.stage {
        case .inProgress, .runningAI: return "the workitem is already claimed"
        case .awaitingAI: return "the workitem is waiting for the AI stage"
        case .ready: return "the workitem has passed the AI stage"
        default: return "the workitem is \(item.stage.upsState)"
        }
    }
}
