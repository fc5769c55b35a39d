import AuditLog

/// What the verifier and the exporter read: a log that only grows, so checkpoints read
/// first cover a prefix of the events read after them.
public protocol AuditLogReading: Sendable {
    /// Events from leaf `from`, at most `limit`, with their stored leaf hashes.
    func events(from: Int, limit: Int) async throws(StoreError) -> [StoredAuditEvent]
    /// All checkpoints by tree size, for the verifier.
    func checkpoints() async throws(StoreError) -> [Checkpoint]
}

/// Where the audit log lives: with the index's store, so that an upload's leaf
/// commits in the same transaction as its records (`IndexStore.upsert(_:audit:)`).
///
/// What every implementation must keep true (tested in Tests/IndexStoreTests):
/// - `append` returns only when the events are durable, like `upsert`.
/// - Leaves are numbered 0, 1, 2 … in commit order, without gaps; an event's leaf hash
///   is `MerkleTree.leafHash(event.canonical)`.
/// - Metering counts change in the same transaction as the events that cause them, so
///   the usage table always equals what the log says.
/// - `auditSize`, `leafHashes(from:count:)` for a short range and `latestCheckpoint` cost
///   no more than logarithmic time in the log's size: they run every checkpoint interval
///   on a node whose log holds millions of events.
public protocol AuditStore: AuditLogReading {
    func append(_ events: [AuditEvent]) async throws(StoreError)
    func auditSize() async throws(StoreError) -> Int
    /// Leaf hashes [from, from + count) as stored; a leaf gone from storage (or past the
    /// log's end) is missing from the answer, so fewer than `count` means exactly that.
    func leafHashes(from: Int, count: Int) async throws(StoreError) -> [MerkleTree.Hash]
    /// Keeps a signed checkpoint with the frontier of its tree (`frontier.size ==
    /// checkpoint.treeSize`), from which the next checkpoint is extended.
    func saveCheckpoint(_ checkpoint: Checkpoint, frontier: MerkleFrontier) async throws(StoreError)
    /// The checkpoint of the largest tree, with its frontier when one was kept.
    func latestCheckpoint() async throws(StoreError) -> (checkpoint: Checkpoint, frontier: MerkleFrontier?)?
    /// The checkpoint of exactly `treeSize` leaves, with its frontier when one was kept:
    /// what a proof to a witness that holds that size starts from.
    func checkpoint(treeSize: Int) async throws(StoreError) -> (checkpoint: Checkpoint, frontier: MerkleFrontier?)?
    /// Another node's checkpoint offered to this one as a witness: `judge` (in practice
    /// `CheckpointWitness.judge`) runs on what is held for its origin, and in the same
    /// transaction an accepted checkpoint becomes the one held and an inconsistent offer
    /// is kept as a conflict. Returns once that is durable.
    func witness(_ offered: Checkpoint, by actor: String,
                 judge: @escaping @Sendable (WitnessedLog?) -> WitnessVerdict) async throws(StoreError) -> WitnessVerdict
    /// Forgets the checkpoint held for `origin` (its history and conflicts stay), so that
    /// the next offer is taken as first sight: an operator's decision after a conflict whose
    /// cause is known (a node restored from a backup). False when none was held.
    func forgetWitnessed(origin: String) async throws(StoreError) -> Bool
    /// What this node holds as a witness for `origin`, and its newest conflicts (at most 20).
    func witnessed(origin: String) async throws(StoreError) -> (log: WitnessedLog?, conflicts: [WitnessConflict])
    /// Usage counts for a UTC day (YYYY-MM-DD), all actors.
    func usage(day: String) async throws(StoreError) -> [UsageCount]
    /// One certificate's count of one counter for a UTC day (0 when none): what a quota check reads.
    func usage(day: String, actor: String, counter: String) async throws(StoreError) -> Int
}

extension AuditStore {
    /// Leaf hashes [from, from + count), every one of them, or an error naming the range
    /// when storage holds fewer (a leaf gone: `audit verify` says which).
    public func storedLeafHashes(from: Int, count: Int) async throws(StoreError) -> [MerkleTree.Hash] {
        let leaves = try await leafHashes(from: from, count: count)
        guard leaves.count == count else {
            throw .engine("audit leaves \(from)..<\(from + count) are not all stored; run imaging-gateway audit verify")
        }
        return leaves
    }

    /// `frontier` extended with the stored leaves after it up to the log's first `size`,
    /// read and hashed 4 096 at a time (a few milliseconds each), so that a busy period's
    /// leaves never hold a reader or a pool thread for long at once.
    public func frontier(extending frontier: MerkleFrontier, to size: Int) async throws(StoreError) -> MerkleFrontier {
        var frontier = frontier
        while frontier.size < size {
            frontier.append(contentsOf: try await storedLeafHashes(from: frontier.size, count: min(size - frontier.size, 1 << 12)))
        }
        return frontier
    }
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
