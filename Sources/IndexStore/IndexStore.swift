import AuditLog
import ImagingIndex
import JSONText

/// Where the index lives. Callers (the upload and lookup routes, federation) see only
/// this protocol; SQLite is the embedded default and PostgreSQL can follow without
/// touching them.
///
/// The contract every implementation must pass is `IndexStoreContract` in
/// Tests/IndexStoreTests: run it against a new implementation by subclassing it and
/// returning the store from `makeStore()`. In short:
/// - `upsert` returns only after the records are durable (committed and synced); a crash
///   after it returned loses none of them.
/// - Identity is (studyInstanceUID, storageUnit): the same identity again is `.updated`,
///   never a second row, or `.unchanged` when every field equals the stored study's (and
///   then nothing changes, its update time included).
/// - Batches are atomic: all records of a batch are stored, or the call throws and none is.
/// - Queries see every acknowledged upsert (read-your-writes across callers).
/// - Results come in a stable order: study date, then time, newest first (a study without
///   a time after those with one), then the study first stored latest (an update keeps a
///   study's place).
/// - A response saved under an idempotency key is returned for that key (within its
///   scope) until the store is wiped; saving a key twice keeps the first.
public protocol IndexStore: Sendable {
    /// Stores `records` and, in the same transaction, the audit event that describes the
    /// upload (when auditing is on).
    func upsert(_ records: [StudyRecord], audit: AuditEvent?) async throws(StoreError) -> [UpsertOutcome]
    func query(_ query: StudyQuery) async throws(StoreError) -> [StudyRecord]
    /// `query`, then the audit event `audit` makes of its results, durable before this
    /// returns (a lookup's leaf is on disk before its answer is sent). One call, so an
    /// implementation can hand the event from its reader to its writer directly.
    func query(_ query: StudyQuery, audit: @escaping @Sendable ([StudyRecord]) -> AuditEvent) async throws(StoreError)
        -> [StudyRecord]
    /// Each of `queries`, and with `audit` the event it makes of each query's results (the
    /// query's position, its studies), all durable before this returns: a peer's batch of
    /// lookups costs one reader's turn and one place in a group commit, not one each. A
    /// query that fails fails the call, and then no event is written.
    func query(_ queries: [StudyQuery], audit: (@Sendable (Int, [StudyRecord]) -> AuditEvent)?) async throws(StoreError)
        -> [[StudyRecord]]
    /// `query(_:audit:)` for a caller that only sends the studies on: `write` writes each
    /// study, an element of one JSON array, from its fields where the store has them, and
    /// `audit` (when given) makes the event of what was written, durable before this
    /// returns. The bytes are those `write` makes of the records `query(_:)` returns, in
    /// their order; the point is that no record need be made (RESULTS.md, session 26).
    /// The studies are named (tokens, UIDs) only for `audit`: without it, only counted.
    func query(_ query: StudyQuery, writing write: @escaping @Sendable (any StudyFields, inout JSONWriter) -> Void,
               audit: (@Sendable (WrittenStudies) -> AuditEvent)?) async throws(StoreError) -> WrittenStudies
    /// `query(_:writing:audit:)` without an audit, answered on the caller's thread when that
    /// needs no wait at all (for a reader, for a sync); nil, with nothing to undo, when it
    /// would wait or fails (the caller then asks `query(_:writing:audit:)`). What it answers
    /// is what that would. A store that cannot read on the caller's thread always says nil.
    func queryAtOnce(_ query: StudyQuery, writing write: (any StudyFields, inout JSONWriter) -> Void) -> WrittenStudies?
    func count() async throws(StoreError) -> Int
    /// The response first given to (scope, key), if any.
    func savedResponse(scope: String, key: String) async throws(StoreError) -> SavedResponse?
    func saveResponse(_ response: SavedResponse, scope: String, key: String) async throws(StoreError)
    /// Deletes every study whose patient token was made with token key `keyVersion` (the
    /// step after that version is retired) and returns how many; durable on return.
    func purgeTokens(keyVersion: Int) async throws(StoreError) -> Int
}

/// Studies written out by `IndexStore.query(_:writing:audit:)`: the JSON array, how many,
/// and, when an audit event is to name them, each study's patient token and UID in the
/// array's order.
public struct WrittenStudies: Sendable, Equatable {
    public let json: [UInt8]
    public let count: Int
    public let patientTokens: [String]
    public let studyInstanceUIDs: [String]

    /// Named studies, for an audit event.
    public init(json: [UInt8], patientTokens: [String], studyInstanceUIDs: [String]) {
        self.json = json
        count = studyInstanceUIDs.count
        self.patientTokens = patientTokens
        self.studyInstanceUIDs = studyInstanceUIDs
    }

    /// Studies counted, not named: no event will read their names.
    public init(json: [UInt8], count: Int) {
        self.json = json
        self.count = count
        patientTokens = []
        studyInstanceUIDs = []
    }
}

/// What an upload answered, kept so that a retry with the same Idempotency-Key gets the
/// same answer and changes nothing.
public struct SavedResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
    /// A digest of the request that got this answer: the same key with another request
    /// is a client error, not a replay.
    public let requestFingerprint: [UInt8]

    public init(status: Int, body: [UInt8], requestFingerprint: [UInt8]) {
        self.status = status
        self.body = body
        self.requestFingerprint = requestFingerprint
    }
}

public enum UpsertOutcome: String, Sendable, Equatable, Codable {
    case inserted
    case updated
    /// The identity was stored already with every field as the record has it: nothing
    /// was written, and nothing is forwarded to the national node again.
    case unchanged
}

/// A search over the index; every set field narrows it.
public struct StudyQuery: Sendable, Equatable {
    public var patientToken: String?
    public var studyInstanceUIDs: [String] = []
    /// Exact, or with DICOM wildcards: `*` any run, `?` one character.
    public var accessionNumber: String?
    public var storageUnit: String?
    /// Inclusive YYYYMMDD bounds.
    public var dateFrom: String?
    public var dateTo: String?
    /// Studies having any of these modalities.
    public var modalities: [String] = []
    public var limit = 100
    public var offset = 0

    public init(patientToken: String? = nil) {
        self.patientToken = patientToken
    }
}

public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The disk is full: nothing of the failed call was stored.
    case full
    /// Another failure of the storage engine, with its message.
    case engine(String)
    case closed

    public var description: String {
        switch self {
        case .full: return "the index store's disk is full"
        case .engine(let m): return "index store: \(m)"
        case .closed: return "the index store is closed"
        }
    }
}

extension IndexStore {
    public func upsert(_ records: [StudyRecord]) async throws(StoreError) -> [UpsertOutcome] {
        try await upsert(records, audit: nil)
    }
}
