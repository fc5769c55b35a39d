import AuditLog
import ReadQueue

/// Where read requests live. Callers see this protocol; the SQLite store keeps the
/// workitems in its own tables of the index database, and PostgreSQL can follow.
///
/// The contract every implementation must pass is `WorkitemStoreContract` in
/// Tests/IndexStoreTests (subclass it, return the store from `makeStore()`). In short:
/// - `perform` is atomic and serializable: two commands never see the same state, so
///   of two claims of one item exactly one wins; the refused one changes nothing.
/// - A performed command is durable before `perform` returns, with the audit event its
///   `audit` closure made, in the same transaction. `durable: false` (the in-node AI
///   stage's claim, which is cheap to lose) may skip the disk; nothing else may.
/// - Leases: an item whose lease deadline has passed is returned to its waiting set
///   (attempt + 1) or dead-lettered no later than the next `claimNext` or `expireLeases`.
/// - After a restart the open items, their stages, leases and attempts are as the last
///   acknowledged command left them; none is lost or doubled.
/// - Search and `workitem` see every acknowledged command.
public protocol WorkitemStore: Sendable {
    func perform(_ command: WorkitemCommand, durable: Bool,
                 audit: @escaping @Sendable (WorkitemOutcome) -> AuditEvent?) async throws(StoreError)
        -> Result<WorkitemOutcome, WorkitemRefusal>
    func workitem(_ uid: String) async throws(StoreError) -> Workitem?
    func workitems(_ query: WorkitemQuery) async throws(StoreError) -> [Workitem]
}

extension WorkitemStore {
    public func perform(_ command: WorkitemCommand) async throws(StoreError) -> Result<WorkitemOutcome, WorkitemRefusal> {
        try await perform(command, durable: true) { _ in nil }
    }
}

/// A search over workitems; every set field narrows it. Newest first.
public struct WorkitemQuery: Sendable, Equatable {
    public var stages: [Workitem.Stage] = []
    public var priority: Workitem.Priority?
    public var label: String?
    public var clinic: String?
    public var studyInstanceUID: String?
    public var limit = 100
    public var offset = 0

    public init() {}
}
