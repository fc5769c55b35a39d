import AuditLog
import Foundation
import Inference
import IndexStore
import Logging
import ReadQueue
import Synchronization

/// What runs behind the read queue's routes: the lease clock (expired leases return their
/// items even when nobody asks for work) and, with `reads.aiStage = node`, the AI stage as
/// a bounded pool of workers that claim AI work through the same queue as external
/// ai-worker clients, call the engine, and post the triage.
final class ReadService: Sendable {
    let store: WorkitemStore
    let settings: GatewayConfig.Reads
    private let logger: Logger
    private let actor: String
    private let running = Mutex(false)
    /// The in-node AI stage's, nil without one.
    private let doorbell: AIDoorbell?

    init(store: WorkitemStore, settings: GatewayConfig.Reads, region: String, logger: Logger) {
        doorbell = settings.aiStage == "node" ? AIDoorbell() : nil
        self.store = doorbell.map { RingingWorkitemStore(store: store, doorbell: $0) } ?? store
        self.settings = settings
        self.logger = logger
        actor = "imaging-gateway/\(region)/ai-stage"
    }

    static func policy(_ r: GatewayConfig.Reads) -> QueuePolicy {
        var p = QueuePolicy()
        p.leaseMs = Int64(r.leaseSeconds * 1000)
        p.aiLeaseMs = Int64(r.aiLeaseSeconds * 1000)
        p.maxAttempts = r.maxAttempts
        p.maxAIAttempts = r.maxAIAttempts
        p.agingMs = Int64(r.agingSeconds * 1000)
        p.aiStage = r.aiStage != "off"
        return p
    }

    /// The engine the config names; a KServe server must be ready and its model fit.
    static func engine(_ r: GatewayConfig.Reads) async throws(InferenceError) -> InferenceEngine? {
        guard r.aiStage != "off" else { return nil }
        switch r.engine.kind {
        case "kserve":
            var s = KServeEngine.Settings(url: r.engine.url ?? "", model: r.engine.model ?? "")
            s.maxConcurrency = r.engine.maxConcurrency
            return try await KServeEngine.connect(s)
        default:
            var s = StubEngine.Settings()
            s.latencyMs = r.engine.latencyMs
            s.failureRate = r.engine.failureRate
            return StubEngine(settings: s)
        }
    }

    /// Urgency to triage priority: ≥ 0.8 HIGH, ≥ 0.5 MEDIUM, else LOW.
    static func triage(_ urgency: Double) -> Workitem.Priority {
        urgency >= 0.8 ? .high : urgency >= 0.5 ? .medium : .low
    }

    func start() {
        guard running.withLock({ let was = $0; $0 = true; return !was }) else { return }
        Task.detached { [self] in
            while running.withLock({ $0 }) {
                _ = try? await store.perform(.expireLeases, durable: true) { [actor] outcome in
                    AuditEvent(requestID: "lease-clock", actor: actor, eventID: .orderRecord, action: .update, outcome: .success,
                               operation: "lease expiry", studyInstanceUIDs: outcome.changed.map(\.studyInstanceUID),
                               count: outcome.changed.count, counter: "read-transitions")
                }
                doorbell?.tick()
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        guard let doorbell else { return }
        // The engine is connected in the background: a model server that is not ready
        // yet delays the AI stage (items wait, as they would for a busy one), not the node.
        Task.detached { [self] in
            var pause = 1
            while running.withLock({ $0 }) {
                do {
                    guard let engine = try await Self.engine(settings) else { return }
                    logger.notice("AI stage ready", metadata: ["model": "\(engine.descriptor.name)", "engine": "\(engine.descriptor.engine)",
                                                               "version": "\(engine.descriptor.version)"])
                    for _ in 0..<settings.aiWorkers {
                        Task.detached { [self] in await work(engine, doorbell: doorbell) }
                    }
                    return
                } catch {
                    logger.warning("AI engine not ready; retrying", metadata: ["error": "\(error)", "retryInSeconds": "\(pause)"])
                    try? await Task.sleep(for: .seconds(pause))
                    pause = min(30, pause * 2)
                }
            }
        }
    }

    func stop() {
        running.withLock { $0 = false }
        doorbell?.stop()
    }

    /// One AI worker: claim (in memory only: a crash before the result leaves the item
    /// waiting, which is what it should do), infer, post the result durably. Idle, it waits
    /// for the doorbell: a ring is one item to claim; a tick, or the start, means claim
    /// until none is left (AIDoorbell).
    private func work(_ engine: InferenceEngine, doorbell: AIDoorbell) async {
        var wake = AIDoorbell.Wake.tick
        while running.withLock({ $0 }), wake != .stop {
            let txn = UIDs.make()
            let claimed = try? await store.perform(.claimNext(stage: .ai, labels: nil, transactionUID: txn, holder: actor),
                                                   durable: false) { _ in nil }
            guard case .success(let outcome)? = claimed, let item = outcome.item else {
                wake = await doorbell.wait()
                continue
            }
            let input = InferenceInput(studyInstanceUID: item.studyInstanceUID, modalities: item.modalities, bodyPart: item.bodyPart)
            let result: AIResult
            var failed = false
            do {
                let out = try await engine.infer(input, deadline: .now + .milliseconds(settings.aiDeadlineMs))
                result = .triaged(Self.triage(out.urgency), result: out.result)
            } catch {
                result = .failed(reason: error.description)
                failed = true
            }
            let answer = try? await store.perform(.finishAI(uid: item.uid, transactionUID: txn, result: result),
                                                  durable: true) { [actor, failed] outcome in
                AuditEvent(requestID: "ai-\(item.uid)", actor: actor, eventID: .orderRecord, action: .update,
                           outcome: failed ? .minorFailure : .success, operation: "AI stage",
                           studyInstanceUIDs: outcome.changed.map(\.studyInstanceUID), count: 1, counter: "read-transitions")
            }
            if case .failure(let refusal)? = answer {
                logger.debug("AI result not taken", metadata: ["workitem": "\(item.uid)", "reason": "\(refusal)"])
            }
            // One ring, one item. After a tick the next claim looks for more.
            if wake == .ring { wake = await doorbell.wait() }
        }
    }
}

/// UIDs under the 2.25 root (PS3.5 B.2): a random (version 4) UUID as one decimal
/// integer. The 122 random bits come from the system generator (one getrandom call):
/// Foundation's `UUID()` here opened, read and closed /dev/urandom for each one, three
/// system calls on every workitem created and claimed.
enum UIDs {
    static func make() -> String {
        var random = SystemRandomNumberGenerator()
        return make(high: random.next(), low: random.next())
    }

    /// The UID of the UUID whose 128 bits are `high` then `low` (big-endian), once its
    /// version (4) and variant (10) bits are set.
    static func make(high: UInt64, low: UInt64) -> String {
        var words = [high & ~0xF000 | 0x4000, low & ~(0b11 << 62) | (0b10 << 62)]
        var digits: [UInt8] = []
        while words[0] != 0 || words[1] != 0 {
            let (q0, r0) = words[0].quotientAndRemainder(dividingBy: 10)
            let (q1, r1) = UInt64(10).dividingFullWidth((high: r0, low: words[1]))
            words = [q0, q1]
            digits.append(UInt8(r1) + 48)
        }
        return "2.25." + String(decoding: digits.reversed(), as: UTF8.self)
    }
}
