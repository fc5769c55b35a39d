import AuditLog

/// Where the audit log lives: in the index's own database, so that an upload's leaf
/// commits in the same transaction as its records (`IndexStore.upsert(_:audit:)`).
///
/// What every implementation must keep true (tested in Tests/IndexStoreTests):
/// - `append` returns only when the events are durable, like `upsert`.
/// - Leaves are numbered 0, 1, 2 … in commit order, without gaps; an event's leaf hash
///   is `MerkleTree.leafHash(event.canonical)`.
/// - Metering counts change in the same transaction as the events that cause them, so
///   the usage table always equals what the log says.
public protocol AuditStore: Sendable {
    func append(_ events: [AuditEvent]) async throws(StoreError)
    func auditSize() async throws(StoreError) -> Int
    /// Leaf hashes [0, count) as stored.
    func leafHashes(count: Int) async throws(StoreError) -> [MerkleTree.Hash]
    /// Events from leaf `from`, at most `limit`, with their stored leaf hashes.
    func events(from: Int, limit: Int) async throws(StoreError) -> [StoredAuditEvent]
    func saveCheckpoint(_ checkpoint: Checkpoint) async throws(StoreError)
    func checkpoints() async throws(StoreError) -> [Checkpoint]
    /// Usage counts for a UTC day (YYYY-MM-DD), all actors.
    func usage(day: String) async throws(StoreError) -> [UsageCount]
    /// One certificate's count of one counter for a UTC day (0 when none): what a quota check reads.
    func usage(day: String, actor: String, counter: String) async throws(StoreError) -> Int
}

public struct UsageCount: Sendable, Equatable, Codable {
    public let actor: String
    public let counter: String
    public let count: Int
}

extension AuditEvent {
    /// What one event adds to the metering table: one to its counter, and for uploads and
    /// token evaluations the records or elements it carried.
    public var meterIncrements: [(counter: String, by: Int)] {
        switch counter {
        case "uploads": [("uploads", 1), ("records", count)]
        case "token-evaluations": [("token-evaluations", 1), ("tokens", count)]
        default: [(counter, 1)]
        }
    }
}
