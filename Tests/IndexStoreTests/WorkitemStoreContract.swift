import AuditLog
import Foundation
import IndexStore
import ReadQueue
import XCTest

/// The tests every `WorkitemStore` must pass (see its documentation). An implementation's
/// test case subclasses this and opens a store from `makeStore(policy:at:)`: a new empty
/// one when `location` is nil, else the one at `location` again, as after a restart.
class WorkitemStoreContract: XCTestCase {
    func makeStore(policy: QueuePolicy, at location: String?) throws -> (store: WorkitemStore, location: String)? { nil }

    func open(_ policy: QueuePolicy = policy(), at location: String? = nil) throws -> (store: WorkitemStore, location: String) {
        guard let s = try makeStore(policy: policy, at: location) else { throw XCTSkip("the contract runs in subclasses") }
        return s
    }

    static func policy(leaseMs: Int64 = 60_000, aiStage: Bool = false) -> QueuePolicy {
        var p = QueuePolicy()
        p.leaseMs = leaseMs
        p.aiStage = aiStage
        return p
    }

    static func item(_ n: Int, priority: Workitem.Priority = .medium) -> Workitem {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return Workitem(uid: "2.25.\(n)", clinic: "91610000MA6TG0001A", studyInstanceUID: "1.2.156.1.\(n)",
                        storageUnit: "12610000435200100J", retrieveURL: "https://pacs.example/dicomweb", modalities: ["CT"],
                        bodyPart: "CHEST", priority: priority, label: n % 2 == 0 ? "chest" : "", expectedCompletion: now + 3_600_000,
                        createdAt: now)
    }

    func testWhatIsCreatedIsStoredAndFound() async throws {
        let (store, _) = try open()
        let created = try await store.perform(.create(Self.item(1))).get()
        XCTAssertEqual(created.item?.stage, .ready)
        let stored = try await store.workitem("2.25.1")
        XCTAssertEqual(stored, created.item)
        let r1 = try await store.perform(.create(Self.item(1)))
        XCTAssertEqual(r1, .failure(.duplicate))
        var query = WorkitemQuery()
        query.stages = [.ready]
        query.label = ""
        let found = try await store.workitems(query)
        XCTAssertEqual(found.map(\.uid), ["2.25.1"])
        query.label = "chest"
        let none = try await store.workitems(query)
        XCTAssertEqual(none, [])
    }

    /// Two readers claim the same item at once, 1 000 times over: exactly one wins each
    /// time, and the stored holder is the winner.
    func testOfTwoClaimersExactlyOneWins() async throws {
        let (store, _) = try open()
        for n in 0..<1_000 {
            _ = try await store.perform(.create(Self.item(n))).get()
            let uid = "2.25.\(n)"
            let byUID = n % 2 == 0
            func claim(_ txn: String) async throws -> Result<WorkitemOutcome, WorkitemRefusal> {
                byUID ? try await store.perform(.claim(uid: uid, transactionUID: txn, holder: txn, stage: .read))
                      : try await store.perform(.claimNext(stage: .read, labels: nil, transactionUID: txn, holder: txn))
            }
            async let a = claim("1.1.\(n)")
            async let b = claim("1.2.\(n)")
            let results = try await [a, b]
            let winners = results.compactMap { try? $0.get().item }
            XCTAssertEqual(winners.count, 1, "claim \(n): \(results)")
            let stored = try await store.workitem(uid)
            XCTAssertEqual(stored?.stage, .inProgress)
            XCTAssertEqual(stored?.transactionUID, winners.first?.transactionUID)
            _ = try await store.perform(.complete(uid: uid, transactionUID: winners.first?.transactionUID ?? "", report: nil))
        }
    }

    func testARefusedCommandChangesNothing() async throws {
        let (store, _) = try open()
        _ = try await store.perform(.create(Self.item(1))).get()
        _ = try await store.perform(.claim(uid: "2.25.1", transactionUID: "1.1", holder: "a", stage: .read)).get()
        let before = try await store.workitem("2.25.1")
        let r2 = try await store.perform(.complete(uid: "2.25.1", transactionUID: "1.9", report: nil))
        XCTAssertEqual(r2, .failure(.wrongTransaction))
        let r3 = try await store.perform(.claim(uid: "2.25.1", transactionUID: "1.2", holder: "b", stage: .read))
        XCTAssertEqual(r3,
                       .failure(.wrongState("the workitem is already claimed")))
        let after = try await store.workitem("2.25.1")
        XCTAssertEqual(before, after)
    }

    func testAnExpiredLeaseGoesToTheNextClaimer() async throws {
        let (store, _) = try open(Self.policy(leaseMs: 100))
        _ = try await store.perform(.create(Self.item(1))).get()
        let first = try await store.perform(.claimNext(stage: .read, labels: nil, transactionUID: "1.1", holder: "a")).get()
        XCTAssertEqual(first.item?.uid, "2.25.1")
        let r4 = try await store.perform(.claimNext(stage: .read, labels: nil, transactionUID: "1.2", holder: "b"))
        XCTAssertEqual(r4,
                       .failure(.noneWaiting))
        try await Task.sleep(for: .milliseconds(150))
        let second = try await store.perform(.claimNext(stage: .read, labels: nil, transactionUID: "1.3", holder: "b")).get()
        XCTAssertEqual(second.item?.uid, "2.25.1")
        XCTAssertEqual(second.item?.attempts, 1)
        let r5 = try await store.perform(.complete(uid: "2.25.1", transactionUID: "1.1", report: nil))
        XCTAssertEqual(r5, .failure(.wrongTransaction))
    }

    /// Items in every stage, then a restart: the same items in the same stages, the held
    /// ones still held by the same transactions, and the waiting ones handed out once each.
    func testARestartLosesNothingAndDuplicatesNothing() async throws {
        var location: String
        var expected: [String: Workitem] = [:]
        do {
            let (store, at) = try open()
            location = at
            for n in 0..<200 { _ = try await store.perform(.create(Self.item(n, priority: [.high, .medium, .low][n % 3]))).get() }
            for n in 0..<60 {
                let claimed = try await store.perform(.claimNext(stage: .read, labels: nil, transactionUID: "1.\(n)", holder: "r"))
                let item = try claimed.get().item!
                if n < 30 { _ = try await store.perform(.complete(uid: item.uid, transactionUID: "1.\(n)", report: "https://r/\(n)")).get() }
            }
            for n in 150..<160 { _ = try await store.perform(.requestCancel(uid: "2.25.\(n)", clinic: nil, reason: "test")).get() }
            for n in 0..<200 { expected["2.25.\(n)"] = try await store.workitem("2.25.\(n)") }
        }
        let (reopened, _) = try open(at: location)
        for (uid, item) in expected {
            let now = try await reopened.workitem(uid)
            XCTAssertEqual(now, item, uid)
        }
        var handed: [String] = []
        while case .success(let o) = try await reopened.perform(.claimNext(stage: .read, labels: nil, transactionUID: "9.9", holder: "r")),
              let item = o.item {
            handed.append(item.uid)
        }
        XCTAssertEqual(Set(handed).count, handed.count, "an item was handed out twice")
        let waiting = Set(expected.values.filter { $0.stage == .ready }.map(\.uid))
        XCTAssertEqual(waiting.count, 200 - 60 - expected.values.filter { $0.stage == .canceled }.count)
        XCTAssertEqual(Set(handed), waiting, "every waiting item, once")
    }
}
