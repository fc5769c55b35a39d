import ReadQueue
import XCTest

/// The queue's rules on simulated time: the state table (every command in every stage),
/// leases and attempts, dead letters and re-drive, aging under a stream of HIGH work, and
/// fair share between clinics.
final class WorkQueueTests: XCTestCase {
    var queue = WorkQueue(policy: QueueTestPolicy.make())
    var finished: [String: Workitem] = [:]
    var now: Int64 = 1_000_000

    static func item(_ uid: String, _ priority: Workitem.Priority = .medium, clinic: String = "C1", label: String = "",
                     expected: Int64 = 10_000_000) -> Workitem {
        Workitem(uid: uid, clinic: clinic, studyInstanceUID: "1.2.\(uid.hashValue & 0xFFFF)", storageUnit: "U", priority: priority,
                 label: label, expectedCompletion: expected, createdAt: 0)
    }

    @discardableResult
    func run(_ command: WorkitemCommand) -> Result<WorkitemOutcome, WorkitemRefusal> {
        let result = queue.perform(command, now: now) { finished[$0] }
        if case .success(let outcome) = result {
            for item in outcome.changed where item.stage.isFinal { finished[item.uid] = item }
        }
        return result
    }

    func next(_ stage: ClaimStage = .read, txn: String = "9.9", labels: Set<String>? = nil) -> String? {
        guard case .success(let o) = run(.claimNext(stage: stage, labels: labels, transactionUID: txn, holder: "r")) else { return nil }
        return o.item?.uid
    }

    func stage(_ uid: String) -> Workitem.Stage? { (queue.item(uid) ?? finished[uid])?.stage }

    /// Creates `uid` and passes it through the AI stage to the readers' set.
    func ready(_ uid: String, _ priority: Workitem.Priority = .medium, clinic: String = "C1", triage: Workitem.Priority? = nil,
               expected: Int64 = 10_000_000) {
        run(.create(Self.item(uid, priority, clinic: clinic, expected: expected)))
        XCTAssertNoThrow(try run(.claim(uid: uid, transactionUID: "ai-\(uid)", holder: "ai", stage: .ai)).get())
        XCTAssertNoThrow(try run(.finishAI(uid: uid, transactionUID: "ai-\(uid)", result: .triaged(triage ?? priority, result: "{}"))).get())
    }

    func testStateTable() {
        run(.create(Self.item("A")))
        XCTAssertEqual(stage("A"), .awaitingAI)
        XCTAssertEqual(run(.create(Self.item("A"))), .failure(.duplicate))
        XCTAssertEqual(run(.claim(uid: "A", transactionUID: "1", holder: "r", stage: .read)),
                       .failure(.wrongState("the workitem is waiting for the AI stage")))
        XCTAssertEqual(run(.complete(uid: "A", transactionUID: "1", report: nil)),
                       .failure(.wrongState("the workitem is SCHEDULED, not IN PROGRESS")))
        XCTAssertNoThrow(try run(.claim(uid: "A", transactionUID: "ai", holder: "ai", stage: .ai)).get())
        XCTAssertEqual(stage("A"), .runningAI)
        XCTAssertEqual(run(.claim(uid: "A", transactionUID: "ai2", holder: "ai", stage: .ai)),
                       .failure(.wrongState("the workitem is already claimed")))
        XCTAssertEqual(run(.finishAI(uid: "A", transactionUID: "other", result: .triaged(.high, result: "{}"))),
                       .failure(.wrongTransaction))
        XCTAssertNoThrow(try run(.finishAI(uid: "A", transactionUID: "ai", result: .triaged(.high, result: "{}"))).get())
        XCTAssertEqual(stage("A"), .ready)
        XCTAssertEqual(queue.item("A")?.readPriority, .high, "AI triage raised MEDIUM to HIGH")
        XCTAssertEqual(run(.finishAI(uid: "A", transactionUID: "ai", result: .triaged(.low, result: "{}"))),
                       .failure(.wrongState("the workitem is not in the AI stage")))
        XCTAssertEqual(run(.heartbeat(uid: "A", transactionUID: "1")), .failure(.wrongState("the workitem is not held (ready)")))
        XCTAssertNoThrow(try run(.claim(uid: "A", transactionUID: "T1", holder: "r1", stage: .read)).get())
        XCTAssertEqual(stage("A"), .inProgress)
        XCTAssertEqual(run(.claim(uid: "A", transactionUID: "T2", holder: "r2", stage: .read)),
                       .failure(.wrongState("the workitem is already claimed")))
        XCTAssertEqual(run(.heartbeat(uid: "A", transactionUID: "T2")), .failure(.wrongTransaction))
        XCTAssertEqual(run(.complete(uid: "A", transactionUID: "T2", report: nil)), .failure(.wrongTransaction))
        XCTAssertNoThrow(try run(.heartbeat(uid: "A", transactionUID: "T1")).get())
        let done = try? run(.complete(uid: "A", transactionUID: "T1", report: "https://r/1")).get()
        XCTAssertEqual(done?.item?.stage, .completed)
        XCTAssertEqual(done?.replayed, false)
        let again = try? run(.complete(uid: "A", transactionUID: "T1", report: "https://r/1")).get()
        XCTAssertEqual(again?.replayed, true, "completion is idempotent on (uid, transaction UID)")
        XCTAssertEqual(again?.changed, [])
        XCTAssertEqual(run(.complete(uid: "A", transactionUID: "T9", report: nil)),
                       .failure(.wrongState("the workitem is already COMPLETED")))
        XCTAssertEqual(run(.cancel(uid: "A", transactionUID: "T1", reason: "x")),
                       .failure(.wrongState("the workitem is already COMPLETED")))
        XCTAssertEqual(run(.requestCancel(uid: "A", clinic: nil, reason: "x")),
                       .failure(.wrongState("the workitem is already COMPLETED")))
        XCTAssertEqual(run(.claim(uid: "A", transactionUID: "T3", holder: "r", stage: .read)),
                       .failure(.wrongState("the workitem is already COMPLETED")))
        XCTAssertEqual(run(.claim(uid: "nope", transactionUID: "T3", holder: "r", stage: .read)), .failure(.notFound))
        XCTAssertEqual(run(.redrive(uid: "A", newUID: "A2")), .failure(.wrongState("only a dead-lettered workitem is re-driven")))
    }

    func testCancelRequests() {
        ready("W")
        XCTAssertEqual(run(.requestCancel(uid: "W", clinic: "C2", reason: "x")), .failure(.notFound), "another clinic's item")
        XCTAssertEqual(try? run(.requestCancel(uid: "W", clinic: "C1", reason: "x")).get().item?.stage, .canceled)
        XCTAssertNil(next(), "a canceled item is never handed out")
        ready("H")
        XCTAssertEqual(next(txn: "T"), "H")
        let flagged = try? run(.requestCancel(uid: "H", clinic: nil, reason: "operator")).get().item
        XCTAssertEqual(flagged?.stage, .inProgress, "a held item is flagged for its holder")
        XCTAssertEqual(flagged?.cancelRequested, true)
        XCTAssertEqual(try? run(.cancel(uid: "H", transactionUID: "T", reason: "holder agreed")).get().item?.stage, .canceled)
    }

    func testAnExpiredLeaseReturnsTheItemAndTheOldHolderIsRefused() {
        ready("L")
        XCTAssertEqual(next(txn: "first"), "L")
        now += QueueTestPolicy.lease - 1
        XCTAssertNil(next(txn: "second"), "still leased")
        XCTAssertNoThrow(try run(.heartbeat(uid: "L", transactionUID: "first")).get())
        now += QueueTestPolicy.lease - 1
        XCTAssertNil(next(txn: "second"), "the heartbeat extended the lease")
        now += QueueTestPolicy.lease
        XCTAssertEqual(next(txn: "second"), "L", "the lease ran out: another reader gets it")
        XCTAssertEqual(queue.item("L")?.attempts, 1)
        XCTAssertEqual(run(.complete(uid: "L", transactionUID: "first", report: nil)), .failure(.wrongTransaction))
        XCTAssertNoThrow(try run(.complete(uid: "L", transactionUID: "second", report: nil)).get())
    }

    func testReaderLeasesRunOutUntilTheItemIsDeadLetteredThenReDriven() {
        ready("D")
        for attempt in 1...QueueTestPolicy.make().maxAttempts {
            XCTAssertEqual(next(txn: "t\(attempt)"), "D")
            now += QueueTestPolicy.lease + 1
            XCTAssertNoThrow(try run(.expireLeases).get())
        }
        XCTAssertEqual(stage("D"), .deadLetter)
        XCTAssertEqual(finished["D"]?.reason, "reader lease expired (attempt 3)")
        let redriven = try? run(.redrive(uid: "D", newUID: "D2")).get().item
        XCTAssertEqual(redriven?.redriveOf, "D")
        XCTAssertEqual(redriven?.stage, .ready, "its AI result is kept")
        XCTAssertEqual(run(.redrive(uid: "D", newUID: "D2")), .failure(.duplicate))
        XCTAssertEqual(next(), "D2")
    }

    func testFailedAIRunsDeadLetterTheItem() {
        run(.create(Self.item("F")))
        for attempt in 1...3 {
            XCTAssertEqual(next(.ai, txn: "a\(attempt)"), "F")
            XCTAssertNoThrow(try run(.finishAI(uid: "F", transactionUID: "a\(attempt)", result: .failed(reason: "model 500"))).get())
        }
        XCTAssertEqual(stage("F"), .deadLetter)
        XCTAssertEqual(finished["F"]?.aiAttempts, 3)
        XCTAssertEqual(finished["F"]?.reason, "AI stage: model 500 (attempt 3)")
        XCTAssertNil(next(.ai))
        XCTAssertEqual(try? run(.redrive(uid: "F", newUID: "F2")).get().item?.stage, .awaitingAI, "no AI result: it runs again")
    }

    func testPriorityThenExpectedCompletionThenArrival() {
        ready("low", .low, expected: 1)
        ready("m-late", .medium, expected: 9_000)
        ready("m-soon", .medium, expected: 5_000)
        ready("high", .high)
        ready("raised", .low, triage: .high, expected: 20_000_000)
        XCTAssertEqual([next(), next(), next(), next(), next(), next()], ["high", "raised", "m-soon", "m-late", "low", nil])
    }

    func testLabelsRestrictWhatAReaderIsOffered() {
        run(.create(Self.item("neuro", label: "neuro")))
        run(.create(Self.item("chest", label: "chest")))
        for uid in ["neuro", "chest"] {
            _ = try? run(.claim(uid: uid, transactionUID: "a", holder: "ai", stage: .ai)).get()
            _ = try? run(.finishAI(uid: uid, transactionUID: "a", result: .triaged(.medium, result: "{}"))).get()
        }
        XCTAssertEqual(next(labels: ["chest"]), "chest")
        XCTAssertNil(next(labels: ["chest"]))
        XCTAssertEqual(next(), "neuro")
    }

    /// LOW work under a constant stream of HIGH: without aging it would wait forever.
    func testLowWorkIsServedUnderAConstantStreamOfHighWork() {
        ready("low-1", .low)
        var served: [String] = []
        var sequence = 0
        for _ in 0..<200 {
            sequence += 1
            ready("high-\(sequence)", .high)
            sequence += 1
            ready("high-\(sequence)", .high)
            now += 100
            if let uid = next(txn: "t\(sequence)") {
                served.append(uid)
                _ = try? run(.complete(uid: uid, transactionUID: "t\(sequence)", report: nil)).get()
            }
        }
        let position = served.firstIndex(of: "low-1")
        XCTAssertNotNil(position, "LOW starved")
        // Aged after agingMs (5 000 ms here), at 100 ms per pick: about the 50th pick.
        XCTAssertLessThanOrEqual(position ?? .max, Int(QueueTestPolicy.make().agingMs / 100) + 1)
        XCTAssertGreaterThanOrEqual(position ?? 0, 10, "aging is capped: fresh HIGH work goes first until then")
    }

    func testFairShareBetweenClinics() {
        for i in 0..<6 { ready("big-\(i)", .medium, clinic: "BIG") }
        ready("small-0", .medium, clinic: "SMALL")
        ready("small-1", .medium, clinic: "SMALL")
        let order = (0..<4).compactMap { _ in next() }
        XCTAssertEqual(order.filter { $0.hasPrefix("small") }.count, 2, "the small clinic is not queued behind the big one: \(order)")
    }

    func testARebuiltQueueHoldsTheSameWork() {
        ready("R1", .high)
        ready("R2", .low)
        XCTAssertEqual(next(txn: "held"), "R1")
        run(.create(Self.item("R3")))
        let open = ["R1", "R2", "R3"].compactMap { queue.item($0) }
        var rebuilt = WorkQueue(policy: QueueTestPolicy.make(), open: open)
        XCTAssertEqual(rebuilt.openCount, 3)
        XCTAssertEqual(rebuilt.waitingCount.readers, 1)
        XCTAssertEqual(rebuilt.waitingCount.ai, 1)
        XCTAssertEqual(rebuilt.nextDeadline(), now + QueueTestPolicy.lease)
    }
}

enum QueueTestPolicy {
    static let lease: Int64 = 1_000

    static func make() -> QueuePolicy {
        var p = QueuePolicy()
        p.leaseMs = lease
        p.aiLeaseMs = lease
        p.agingMs = 5_000
        return p
    }
}
