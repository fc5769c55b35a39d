import AuditLog
import IndexStore
import ReadQueue
import Synchronization

/// Wakes the in-node AI stage's idle workers when work arrives, instead of each polling.
///
/// Why: each worker polled the queue with a back-off from 1 to 50 ms. Under the read-cycle
/// benchmark (sixteen workers) that made about one empty claim for every item triaged
/// (30 000 empty against 30 046 found), each a hop to the store's writer and back, and an
/// idle node with sixteen made some 300 a second. Now every command that puts items in the AI stage's waiting set
/// rings once per item (`RingingWorkitemStore`), and a ring wakes one idle worker, or
/// waits for the next one to look (`permits`).
///
/// What must stay true: no item waits in the AI stage for long while a worker idles. A
/// ring is a hint, not a claim: another worker (an external ai-worker) may have taken the
/// item, and the woken worker's claim then finds nothing, which costs one claim. Items no
/// ring announced (those waiting when the node started, or any path that forgets to ring)
/// are found by a `tick`: the lease clock wakes one idle worker every 200 ms when no ring
/// is pending, and a worker that a tick or its start woke claims until none is left.
final class AIDoorbell: Sendable {
    enum Wake: Equatable {
        /// An item entered the waiting set: claim once.
        case ring
        /// Nothing announced: look, and claim until none is left.
        case tick
        /// The stage is stopping.
        case stop
    }

    private struct State {
        /// Rings no worker was waiting for, each to be answered by the next `wait`.
        var permits = 0
        var waiters: [CheckedContinuation<Wake, Never>] = []
        var stopped = false
    }

    private let state = Mutex(State())

    /// Workers waiting now.
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// One ring per item that entered the waiting set.
    func ring(_ times: Int = 1) {
        for _ in 0..<times {
            let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
                guard !state.waiters.isEmpty else {
                    state.permits += 1
                    return nil
                }
                return state.waiters.removeFirst()
            }
            waiter?.resume(returning: .ring)
        }
    }

    /// Wakes one idle worker to look, when no ring is pending.
    func tick() {
        let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            guard state.permits == 0, !state.waiters.isEmpty else { return nil }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: .tick)
    }

    /// Returns at once for a pending ring, else when the next ring, tick or stop comes.
    func wait() async -> Wake {
        await withCheckedContinuation { (c: CheckedContinuation<Wake, Never>) in
            let now = state.withLock { state -> Wake? in
                if state.stopped { return .stop }
                guard state.permits == 0 else {
                    state.permits -= 1
                    return .ring
                }
                state.waiters.append(c)
                return nil
            }
            if let now { c.resume(returning: now) }
        }
    }

    /// Wakes every waiter, and every later `wait` returns at once, with `.stop`.
    func stop() {
        let waiters = state.withLock { state -> [CheckedContinuation<Wake, Never>] in
            state.stopped = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume(returning: .stop) }
    }
}

/// The store as the read routes and the AI stage use it: a performed command that put items
/// in the AI stage's waiting set (a creation, a re-drive, an expired AI lease, a failed
/// inference to try again) rings the doorbell once for each.
struct RingingWorkitemStore: WorkitemStore {
    let store: WorkitemStore
    let doorbell: AIDoorbell

    func perform(_ command: WorkitemCommand, durable: Bool,
                 audit: @escaping @Sendable (WorkitemOutcome) -> AuditEvent?) async throws(StoreError)
        -> Result<WorkitemOutcome, WorkitemRefusal>
    {
        let result = try await store.perform(command, durable: durable, audit: audit)
        if case .success(let outcome) = result {
            doorbell.ring(outcome.changed.count { $0.stage == .awaitingAI })
        }
        return result
    }

    func workitem(_ uid: String) async throws(StoreError) -> Workitem? { try await store.workitem(uid) }

    func workitems(_ query: WorkitemQuery) async throws(StoreError) -> [Workitem] { try await store.workitems(query) }
}
