import AuditLog
import Foundation
@testable import GatewayServer
import IndexStore
import Logging
import ReadQueue
import Synchronization
import TestScratch
import XCTest

/// The in-node AI stage's workers wait for work to be announced (AIDoorbell) instead of
/// polling the queue.
final class AIDoorbellTests: XCTestCase {
    func testARingWithNoWorkerWaitingIsKeptForTheNextWait() async {
        let bell = AIDoorbell()
        bell.ring(2)
        let first = await bell.wait()
        let second = await bell.wait()
        XCTAssertEqual([first, second], [.ring, .ring])
    }

    func testOneRingWakesOneWaiterAndATickNoneWhileARingIsPending() async throws {
        let bell = AIDoorbell()
        let woken = Woken()
        let waiters = (0..<2).map { _ in Task { let w = await bell.wait(); woken.list.withLock { $0.append(w) } } }
        try await eventually { bell.waiting == 2 }
        bell.ring()
        try await eventually { woken.list.withLock { $0 } == [.ring] }
        bell.tick()
        try await eventually { woken.list.withLock { $0 } == [.ring, .tick] }
        bell.ring()
        bell.tick()
        let pending = await bell.wait()
        XCTAssertEqual(pending, .ring, "a tick leaves a pending ring to its waiter")
        bell.stop()
        for w in waiters { await w.value }
        let afterStop = await bell.wait()
        XCTAssertEqual(afterStop, .stop)
    }

    func testStopWakesEveryWaiter() async throws {
        let bell = AIDoorbell()
        let waiters = (0..<3).map { _ in Task { await bell.wait() } }
        try await eventually { bell.waiting == 3 }
        bell.stop()
        for w in waiters {
            let wake = await w.value
            XCTAssertEqual(wake, .stop)
        }
    }

    /// Sixteen workers over an idle queue for a second, then twenty items: every item is
    /// triaged, and the claims that found nothing are tens, not hundreds. Each worker
    /// polling with a back-off from 1 to 50 ms made some 25 claims a second (400 in the
    /// idle second, checked).
    func testIdleWorkersClaimOnlyWhenWorkIsAnnounced() async throws {
        var policy = QueuePolicy()
        policy.aiStage = true
        let store = ClaimCounting(try SQLiteIndexStore(path: Scratch.path("ai-doorbell") + ".sqlite", readers: 1, queuePolicy: policy))
        var settings = GatewayConfig.Reads()
        settings.aiWorkers = 16
        let service = ReadService(store: store, settings: settings, region: "610000", logger: Logger(label: "test"))
        service.start()
        defer { service.stop() }
        try await Task.sleep(for: .seconds(1))
        let idle = store.claims.withLock { $0 }
        XCTAssertLessThan(idle.empty, 40, "16 at the start, one a tick (200 ms) after")
        XCTAssertEqual(idle.found, 0)

        for n in 1...20 { _ = try await service.store.perform(.create(Self.item(n))).get() }
        try await eventually(within: .seconds(10)) {
            let items = try await store.workitems(WorkitemQuery())
            return items.count == 20 && items.allSatisfy { $0.stage == .ready && $0.aiResult != nil }
        }
        let busy = store.claims.withLock { $0 }
        XCTAssertEqual(busy.found, 20)
        // A ring is one item to claim. A tick that lands in the burst lets its worker take
        // items whose rings woke others, whose claims then find nothing: up to twenty more.
        XCTAssertLessThan(busy.empty, 60)
    }

    static func item(_ n: Int) -> Workitem {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return Workitem(uid: "2.25.\(n)", clinic: "91610000MA6TG0001A", studyInstanceUID: "1.2.156.1.\(n)",
                        storageUnit: "12610000435200100J", modalities: ["CT"], bodyPart: "CHEST", priority: .medium,
                        expectedCompletion: now + 3_600_000, createdAt: now)
    }

    private func eventually(within limit: Duration = .seconds(5), _ done: () async throws -> Bool) async throws {
        let due = ContinuousClock.now + limit
        while try await !done() {
            guard ContinuousClock.now < due else { return XCTFail("not reached within \(limit)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

private final class Woken: Sendable {
    let list = Mutex<[AIDoorbell.Wake]>([])
}

/// The store, counting the AI stage's claims: those that found an item and those that did not.
private final class ClaimCounting: WorkitemStore {
    let store: WorkitemStore
    let claims = Mutex((found: 0, empty: 0))

    init(_ store: WorkitemStore) { self.store = store }

    func perform(_ command: WorkitemCommand, durable: Bool,
                 audit: @escaping @Sendable (WorkitemOutcome) -> AuditEvent?) async throws(StoreError)
        -> Result<WorkitemOutcome, WorkitemRefusal>
    {
        let result = try await store.perform(command, durable: durable, audit: audit)
        if case .claimNext(.ai, _, _, _) = command {
            let found = (try? result.get().item) != nil
            claims.withLock { found ? ($0.found += 1) : ($0.empty += 1) }
        }
        return result
    }

    func workitem(_ uid: String) async throws(StoreError) -> Workitem? { try await store.workitem(uid) }

    func workitems(_ query: WorkitemQuery) async throws(StoreError) -> [Workitem] { try await store.workitems(query) }
}
