import AuditLog
import Foundation
import GatewayNet
import ImagingIndex
import IndexStore
import JSONText
import Synchronization

/// Every audited access goes through here: quotas are checked before the work against the
/// usage table (which moves in the same transactions as the events), and the event is
/// durable before the answer (an upload's rides in the upload's own transaction).
/// Concurrent requests of one certificate may overshoot a quota by the number in flight.
final class Auditor: Sendable {
    let store: AuditStore
    let enabled: Bool
    let quotas: [GatewayConfig.Quota]
    let signer: CheckpointSigner
    let origin: String
    private let checkpointing = Mutex<Bool>(false)

    init(store: AuditStore, config: GatewayConfig, signer: CheckpointSigner) {
        self.store = store
        enabled = config.audit.enabled
        quotas = config.audit.quotas
        self.signer = signer
        origin = "imaging-gateway/\(config.region)"
    }

    static func actor(_ request: HTTPRequest) -> String { request.peer?.uri ?? "anonymous" }

    /// The caller's X-Request-ID when it is 1–64 visible characters; otherwise this
    /// process's random prefix and a sequence number (a UUID per request costs a syscall).
    static func requestID(_ request: HTTPRequest) -> String {
        if let given = request.headers["X-Request-ID"], (1...64).contains(given.utf8.count),
           given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) { return given }
        return "\(processPrefix)-\(sequence.wrappingAdd(1, ordering: .relaxed).oldValue)"
    }

    private static let processPrefix = String(UUID().uuidString.prefix(8)).lowercased()
    private static let sequence = Atomic<Int>(0)

    func event(_ request: HTTPRequest, _ id: AuditEvent.EventID, _ action: AuditEvent.Action, counter: String,
               outcome: AuditEvent.Outcome = .success, tokens: [String] = [], uids: [String] = [], count: Int = 0,
               requestID: String? = nil) -> AuditEvent {
        AuditEvent(requestID: requestID ?? Self.requestID(request), actor: Self.actor(request), eventID: id, action: action,
                   outcome: outcome, purposeOfUse: request.queryValue("purpose"),
                   operation: "\(request.method) \(request.path)", patientTokens: tokens, studyInstanceUIDs: uids,
                   count: count, counter: counter)
    }

    /// nil when the caller is within its quotas for `counter` (plus `adding`); otherwise a
    /// 429 with Retry-After (seconds to the next UTC day), the refusal itself audited.
    func admit(_ request: HTTPRequest, counter: String, adding: Int = 1) async throws(HTTPError) -> HTTPResponse? {
        guard enabled, !quotas.isEmpty else { return nil }
        let actor = Self.actor(request)
        let peer = request.peer
        let limits = quotas.filter { q in
            q.counter == counter && (q.role == nil || q.role == peer?.role)
                && (q.organization == nil || q.organization == peer?.organization)
        }
        guard let limit = limits.map(\.perDay).min() else { return nil }
        let used = try await IndexRoutes.storeCall { () throws(StoreError) in
            try await store.usage(day: AuditEvent.day(), actor: actor, counter: counter)
        }
        guard used + adding > limit else { return nil }
        try await record([event(request, .securityAlert, .execute, counter: "refusals", outcome: .minorFailure)])
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let midnight = utc.nextDate(after: Date(), matching: DateComponents(hour: 0, minute: 0), matchingPolicy: .nextTime) ?? Date()
        var response = HTTPError(429, "quota_exceeded",
                                 "The daily quota of \(limit) \(counter) for this certificate is used; it resets at 00:00 UTC.").response
        response.headers.add("Retry-After", String(max(1, Int(midnight.timeIntervalSinceNow.rounded(.up)))))
        return response
    }

    /// Makes `events` durable (and counted). `events` is an autoclosure: with auditing off
    /// nothing is built.
    func record(_ events: @autoclosure () -> [AuditEvent]) async throws(HTTPError) {
        guard enabled else { return }
        let events = events()
        try await IndexRoutes.storeCall { () throws(StoreError) in try await store.append(events) }
    }

    /// Runs a lookup's query and, with auditing on, makes its event durable before
    /// returning: the tokens asked for or returned, and the studies returned. With
    /// `returned`, the caller passes on only the studies it keeps, and only those are named.
    func lookup(_ request: HTTPRequest, asked token: String?, _ query: StudyQuery, in store: IndexStore,
                counter: String = "lookups", returned: (@Sendable (StudyRecord) -> Bool)? = nil) async throws(HTTPError) -> [StudyRecord] {
        guard enabled else {
            return try await IndexRoutes.storeCall { () throws(StoreError) in try await store.query(query) }
        }
        let event = recordsEvent(request, asked: token, counter: counter)
        return try await IndexRoutes.storeCall { () throws(StoreError) in
            try await store.query(query) { found in event(returned.map { found.filter($0) } ?? found) }
        }
    }

    /// `lookup` for an answer written straight from the store's rows by `write`.
    func lookup(_ request: HTTPRequest, asked token: String?, _ query: StudyQuery, in store: IndexStore,
                writing write: @escaping @Sendable (any StudyFields, inout JSONWriter) -> Void) async throws(HTTPError) -> WrittenStudies {
        var audit: (@Sendable (WrittenStudies) -> AuditEvent)?
        if enabled {
            let event = lookupEvent(request, asked: token, counter: "lookups")
            audit = { event($0.patientTokens, $0.studyInstanceUIDs) }
        }
        return try await IndexRoutes.storeCall { [audit] () throws(StoreError) in
            try await store.query(query, writing: write, audit: audit)
        }
    }

    /// Several lookups at once (a peer's batch), each audited as `lookup` would audit it
    /// alone: `requests[i]` asked for `tokens[i]` with `queries[i]`.
    func lookups(_ requests: [HTTPRequest], tokens: [String], _ queries: [StudyQuery],
                 in store: IndexStore) async throws(HTTPError) -> [[StudyRecord]] {
        var audit: (@Sendable (Int, [StudyRecord]) -> AuditEvent)?
        if enabled {
            let events = zip(requests, tokens).map { recordsEvent($0, asked: $1, counter: "lookups") }
            audit = { i, found in events[i](found) }
        }
        return try await IndexRoutes.storeCall { [audit] () throws(StoreError) in try await store.query(queries, audit: audit) }
    }

    /// `lookup` that also records the prior-exam check `check` makes of the results, in
    /// the same transaction as the audit event.
    func lookup(_ request: HTTPRequest, asked token: String, _ query: StudyQuery, in store: SupervisionStore,
                counter: String, check: @escaping @Sendable ([StudyRecord]) -> PriorCheck) async throws(HTTPError) -> [StudyRecord] {
        let audit = enabled ? recordsEvent(request, asked: token, counter: counter) : nil
        return try await IndexRoutes.storeCall { () throws(StoreError) in try await store.query(query, audit: audit, check: check) }
    }

    /// Makes the event of a lookup whose studies were found elsewhere too (across regions)
    /// durable: `found` is what the caller receives.
    func recordLookup(_ request: HTTPRequest, requestID: String, asked token: String, found: [StudyRecord],
                      counter: String) async throws(HTTPError) {
        try await record([recordsEvent(request, asked: token, counter: counter, requestID: requestID)(found)])
    }

    /// The event of a lookup: the tokens asked for or returned (`found`, each returned
    /// study's), and the studies returned.
    private func lookupEvent(_ request: HTTPRequest, asked token: String?, counter: String,
                             requestID: String? = nil) -> @Sendable (_ found: [String], _ uids: [String]) -> AuditEvent {
        { [self] found, uids in
            let tokens: [String]
            if let token, found.allSatisfy({ $0 == token }) {
                tokens = [token]
            } else {
                tokens = Self.distinctInByteOrder(found + (token.map { [$0] } ?? []))
            }
            return event(request, .query, .read, counter: counter, tokens: tokens, uids: uids, count: uids.count,
                         requestID: requestID)
        }
    }

    /// `lookupEvent` of the studies themselves.
    private func recordsEvent(_ request: HTTPRequest, asked token: String?, counter: String,
                              requestID: String? = nil) -> @Sendable ([StudyRecord]) -> AuditEvent {
        let event = lookupEvent(request, asked: token, counter: counter, requestID: requestID)
        return { event($0.map(\.patientToken), $0.map(\.studyInstanceUID)) }
    }

    /// `tokens` without repeats, in the order of their UTF-8 bytes (for tokens, which are
    /// ASCII, the order `<` gives). A Set and String's own comparison took 5 % of the CPU
    /// of a 100-study QIDO-RS search, whose studies are mostly of different patients, and a
    /// sort comparing the strings' bytes at every step still 3.2 %; so each token's first
    /// 16 bytes are read once, as two numbers, and the sort compares those, going to the
    /// bytes only for tokens that begin alike.
    static func distinctInByteOrder(_ tokens: [String]) -> [String] {
        var distinct: [String] = []
        distinct.reserveCapacity(tokens.count)
        for keyed in tokens.map(ByteOrderKey.init).sorted() where distinct.last != keyed.text { distinct.append(keyed.text) }
        return distinct
    }
    /// The latest checkpoint, signing a new one first when the log grew since the last:
    /// the last checkpoint's frontier extended with only the leaves added since
    /// (`AuditStore.frontier(extending:to:)`). A frontier that is missing (a checkpoint
    /// signed before migration 10) or does not give its checkpoint's root is rebuilt from
    /// leaf 0, once.
    func checkpoint() async throws(StoreError) -> Checkpoint {
        let size = try await store.auditSize()
        let last = try await store.latestCheckpoint()
        if let last {
            if last.checkpoint.treeSize == size { return last.checkpoint }
            guard last.checkpoint.treeSize < size else {
                throw .engine("the audit log holds \(size) events, fewer than its checkpoint of \(last.checkpoint.treeSize)")
            }
        }
        var start = MerkleFrontier()
        if let last, let kept = last.frontier, kept.root == last.checkpoint.root { start = kept }
        let frontier = try await store.frontier(extending: start, to: size)
        let signed = signer.sign(origin: origin, treeSize: size, root: frontier.root)
        try await store.saveCheckpoint(signed, frontier: frontier)
        return signed
    }

    /// Signs a checkpoint every `seconds` while the log grows, until `stopCheckpointing`,
    /// and hands the latest to `offer` (WitnessSender) each time, grown or not: an offer
    /// that failed is made again a period later.
    func startCheckpointing(every seconds: Int, offer: (@Sendable (Checkpoint) async -> Void)? = nil) {
        guard enabled, seconds > 0, checkpointing.withLock({ let was = $0; $0 = true; return !was }) else { return }
        Task.detached { [weak self] in
            while true {
                try? await Task.sleep(for: .seconds(seconds))
                guard let self, self.checkpointing.withLock({ $0 }) else { return }
                if let signed = try? await self.checkpoint() { await offer?(signed) }
            }
        }
    }

    func stopCheckpointing() {
        checkpointing.withLock { $0 = false }
    }
}

/// A string with its first 16 UTF-8 bytes as two big-endian numbers, missing bytes as 0:
/// where the numbers differ they order the strings as their bytes do (a missing byte
/// counts as the least), and where they are equal the bytes decide.
private struct ByteOrderKey: Comparable {
    let high: UInt64
    let low: UInt64
    let text: String

    init(_ text: String) {
        var word = (UInt64(0), UInt64(0))
        let contiguous: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
            withUnsafeMutableBytes(of: &word) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes).prefix(16))) }
        }
        if contiguous == nil {
            withUnsafeMutableBytes(of: &word) { words in for (i, byte) in text.utf8.prefix(16).enumerated() { words[i] = byte } }
        }
        high = UInt64(bigEndian: word.0)
        low = UInt64(bigEndian: word.1)
        self.text = text
    }

    static func < (a: ByteOrderKey, b: ByteOrderKey) -> Bool {
        if a.high != b.high { return a.high < b.high }
        if a.low != b.low { return a.low < b.low }
        return precedesInBytes(a.text, b.text)
    }

    /// memcmp over the strings' own storage. Not `withUTF8`: it needs a mutable copy of
    /// each string.
    private static func precedesInBytes(_ a: String, _ b: String) -> Bool {
        let ordered = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                let common = min(x.count, y.count)
                let order = common == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, common)
                return order == 0 ? x.count < y.count : order < 0
            }
        }
        // A native String is always contiguous; any other compares in the same order.
        return (ordered ?? nil) ?? a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}
