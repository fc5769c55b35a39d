import AuditLog

/// The audit log's reads (AuditStore), on the readers: each answers once what it read is
/// durable (SQLiteSyncer), so no checkpoint or export covers a leaf a crash could take back.
extension SQLiteIndexStore {
    public func auditSize() async throws(StoreError) -> Int {
        try await read { db throws(StoreError) in try SQLiteAudit.size(db) }
    }

    public func leafHashes(from: Int, count: Int) async throws(StoreError) -> [MerkleTree.Hash] {
        try await read { db throws(StoreError) in try SQLiteAudit.leafHashes(db, from: from, count: count) }
    }

    public func events(from: Int, limit: Int) async throws(StoreError) -> [StoredAuditEvent] {
        try await read { db throws(StoreError) in try SQLiteAudit.events(db, from: from, limit: limit) }
    }

    public func checkpoints() async throws(StoreError) -> [Checkpoint] {
        try await read { db throws(StoreError) in try SQLiteAudit.checkpoints(db) }
    }

    public func latestCheckpoint() async throws(StoreError) -> (checkpoint: Checkpoint, frontier: MerkleFrontier?)? {
        try await read { db throws(StoreError) in try SQLiteAudit.latestCheckpoint(db) }
    }

    public func usage(day: String, actor: String, counter: String) async throws(StoreError) -> Int {
        try await read { db throws(StoreError) in try SQLiteAudit.usage(db, day: day, actor: actor, counter: counter) }
    }

    public func usage(day: String) async throws(StoreError) -> [UsageCount] {
        try await read { db throws(StoreError) in try SQLiteAudit.usage(db, day: day) }
    }

    public func saveCheckpoint(_ checkpoint: Checkpoint, frontier: MerkleFrontier) async throws(StoreError) {
        try await onWriter { writer throws(StoreError) in try SQLiteAudit.save(checkpoint, frontier: frontier, on: writer) }
    }

    public func checkpoint(treeSize: Int) async throws(StoreError) -> (checkpoint: Checkpoint, frontier: MerkleFrontier?)? {
        try await read { db throws(StoreError) in try SQLiteAudit.checkpoint(db, treeSize: treeSize) }
    }

    public func witness(_ offered: Checkpoint, by actor: String,
                        judge: @escaping @Sendable (WitnessedLog?) -> WitnessVerdict) async throws(StoreError) -> WitnessVerdict {
        try await onWriter { writer throws(StoreError) in try SQLiteWitness.witness(offered, by: actor, on: writer, judge: judge) }
    }

    public func forgetWitnessed(origin: String) async throws(StoreError) -> Bool {
        try await onWriter { writer throws(StoreError) in try SQLiteWitness.forget(origin, on: writer) }
    }

    /// On the writer, not a reader: a reader may keep its snapshot across commits that
    /// did not change the index, and a witness's commit does not.
    public func witnessed(origin: String) async throws(StoreError) -> (log: WitnessedLog?, conflicts: [WitnessConflict]) {
        try await onWriter { writer throws(StoreError) in
            (try SQLiteWitness.held(origin, on: writer), try SQLiteWitness.conflicts(origin, limit: 20, on: writer))
        }
    }
}
