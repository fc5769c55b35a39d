/// What a caller asks of the read queue. Every command is one atomic step: a store runs
/// it against the current state and makes its changes durable together, or not at all.
public enum WorkitemCommand: Sendable {
    /// A new workitem (its stage says whether it waits for the AI or for readers).
    case create(Workitem)
    /// Claims one item by UID (UPS: set IN PROGRESS with a new Transaction UID).
    case claim(uid: String, transactionUID: String, holder: String, stage: ClaimStage)
    /// Claims the best waiting item of a stage, restricted to worklist labels when given.
    case claimNext(stage: ClaimStage, labels: Set<String>?, transactionUID: String, holder: String)
    /// Extends the holder's lease.
    case heartbeat(uid: String, transactionUID: String)
    /// The reader's final state, with a report reference.
    case complete(uid: String, transactionUID: String, report: String?)
    /// The holder gives up the item for good (UPS: set CANCELED with its Transaction UID).
    case cancel(uid: String, transactionUID: String, reason: String)
    /// A cancel request (UPS cancelrequest): immediate while nobody holds the item, else
    /// flagged for the holder. `clinic` restricts it to that clinic's own items.
    case requestCancel(uid: String, clinic: String?, reason: String)
    /// The AI stage's answer for an item it holds.
    case finishAI(uid: String, transactionUID: String, result: AIResult)
    /// Returns items whose lease has run out, or dead-letters them.
    case expireLeases
    /// A dead-lettered item again, as a new workitem that references it.
    case redrive(uid: String, newUID: String)
}

public enum ClaimStage: String, Sendable {
    case ai
    case read
}

public enum AIResult: Sendable, Equatable {
    /// The triage priority and the result, a JSON object text.
    case triaged(Workitem.Priority, result: String)
    case failed(reason: String)
}

/// A command that was carried out.
public struct WorkitemOutcome: Sendable, Equatable {
    /// The item the command was about, as it is now (nil for `expireLeases`).
    public var item: Workitem?
    /// The item was already in the asked-for final state under this transaction: nothing
    /// changed (UPS answers 200 with a Warning).
    public var replayed = false
    /// Every item whose stored state changed, the item itself included.
    public var changed: [Workitem] = []

    public init(item: Workitem?, replayed: Bool = false, changed: [Workitem] = []) {
        self.item = item
        self.replayed = replayed
        self.changed = changed
    }
}

/// Why a command was refused. Nothing changed.
public enum WorkitemRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound
    case duplicate
    /// The item is not in a state that allows the command; the text says which it is in.
    case wrongState(String)
    /// The Transaction UID is not the holder's (a lease that expired lost the item).
    case wrongTransaction
    /// No item waits in that stage (for those labels).
    case noneWaiting

    public var description: String {
        switch self {
        case .notFound: return "no such workitem"
        case .duplicate: return "a workitem with this UID exists"
        case .wrongState(let s): return s
        case .wrongTransaction: return "the Transaction UID is not the one that holds the workitem"
        case .noneWaiting: return "no workitem is waiting"
        }
    }
}

/// The queue's settings.
public struct QueuePolicy: Sendable, Equatable {
    /// How long a reader's claim lasts without a heartbeat.
    public var leaseMs: Int64 = 120_000
    /// How long the AI stage may hold an item.
    public var aiLeaseMs: Int64 = 30_000
    /// Reader leases that may expire before the item is dead-lettered.
    public var maxAttempts = 3
    /// AI runs that may fail (or expire) before the item is dead-lettered.
    public var maxAIAttempts = 3
    /// Waiting time after which an item goes before fresh ones (see ReadySet).
    public var agingMs: Int64 = 900_000
    /// New items wait for the AI stage first; without one they go straight to readers.
    public var aiStage = true

    public init() {}
}
