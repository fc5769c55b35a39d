import AuditLog
import Foundation

/// The audit tables, in a file of their own attached as schema `audit`: events numbered
/// by `seq` (leaf index + 1), checkpoints by tree size, usage counts by day, actor and
/// counter.
///
/// Why a file of its own: every lookup appends a leaf, and in the index's file those
/// leaves were most of what its WAL held; each commit moved the WAL on, readers read it
/// back, checkpoints copied it. Apart, a lookup's commit leaves the index's file alone.
///
/// What that costs, and what must stay true: SQLite commits a transaction that spans two
/// WAL files one file after the other, `main` first, so a crash between the two can keep
/// an upload (or a workitem transition) and lose the audit leaves written with it. Those
/// leaves are therefore also written to `audit_pending` in the index's file, in the same
/// transaction, numbered first among the transaction's leaves; `recoverPending` puts back
/// any the audit file lacks before anything else is written, and a later transaction
/// deletes them once the audit file's copy is durable. So such a commit is answered once
/// the index's file alone is synced (SQLiteSyncer). Leaves written without a change to the
/// index (lookups) live in the audit file alone: if the crash took them, it took the
/// commit their answers waited for, and no answer was sent.
enum SQLiteAudit {
    /// Collects the events of the writer's open transaction; `write` numbers and stores
    /// them before the commit. A value type, so a batch rolled back to its savepoint
    /// restores the copy from before.
    struct Appender {
        private let db: SQLiteConnection
        fileprivate let firstLeaf: Int
        private var withChange: [AuditEvent] = []
        private var alone: [AuditEvent] = []
        /// Few distinct (day, actor, counter) in one transaction, so a list searched in
        /// turn: a dictionary keyed by their joined text built a string for every event.
        private var usage: [(day: String, actor: String, counter: String, by: Int)] = []

        init(_ db: SQLiteConnection) throws(StoreError) {
            self.db = db
            firstLeaf = try SQLiteAudit.size(db)
        }

        /// `withIndexChange`: written in the same transaction as a change to the index,
        /// which a crash must not keep without it.
        mutating func append(_ event: AuditEvent, withIndexChange: Bool) {
            if withIndexChange { withChange.append(event) } else { alone.append(event) }
            let day = event.day
            for (counter, by) in event.meterIncrements {
                if let i = usage.firstIndex(where: { $0.counter == counter && $0.actor == event.actor && $0.day == day }) {
                    usage[i].by += by
                } else {
                    usage.append((day, event.actor, counter, by))
                }
            }
        }

        /// Whether any leaf went to `audit_pending` too.
        var wrotePending: Bool { !withChange.isEmpty }
        /// Whether any leaf went to the audit file alone: its commit is durable only once
        /// that file is synced.
        var wroteAlone: Bool { !alone.isEmpty }
        /// The log's size once these leaves are written.
        var endLeaf: Int { firstLeaf + withChange.count + alone.count }

        /// Stores the leaves, those written with an index change first, and the usage
        /// increments. The inserts are looked up once, not once per leaf: finding a cached
        /// statement hashes its SQL text.
        func write() throws(StoreError) {
            var leaf = firstLeaf
            let insert = try db.statement("INSERT INTO audit.audit_events (seq, event, leaf_hash) VALUES (?1, ?2, ?3)")
            let keep = try withChange.isEmpty ? nil : db.statement("INSERT INTO main.audit_pending (seq, event) VALUES (?1, ?2)")
            for (events, pending) in [(withChange, true), (alone, false)] {
                for var event in events {
                    event.leafIndex = leaf
                    let canonical = event.canonical
                    insert.bind(1, leaf + 1)
                    insert.bind(2, text: canonical)
                    insert.bind(3, MerkleTree.leafHash(canonical))
                    _ = try insert.step()
                    insert.reset()
                    if pending, let keep {
                        keep.bind(1, leaf + 1)
                        keep.bind(2, text: canonical)
                        _ = try keep.step()
                        keep.reset()
                    }
                    leaf += 1
                }
            }
            for row in usage {
                let count = try db.statement("""
                    INSERT INTO audit.usage (day, actor, counter, n) VALUES (?1, ?2, ?3, ?4)
                    ON CONFLICT (day, actor, counter) DO UPDATE SET n = n + excluded.n
                    """)
                count.bind(1, row.day)
                count.bind(2, row.actor)
                count.bind(3, row.counter)
                count.bind(4, row.by)
                _ = try count.step()
            }
        }
    }

    /// Puts back the leaves a crash (or a failed commit) kept in `audit_pending` but not in
    /// the audit file, then empties the table: two transactions, the audit file's first,
    /// so a crash between them leaves nothing to do but the emptying. Runs on the writer,
    /// outside any transaction.
    ///
    /// The audit file keeps a prefix of what was written to it (a WAL is read back up to
    /// its last whole commit), so the leaves to put back are the pending ones past its
    /// end. They may not follow it one for one: a leaf written alone (a lookup's) between
    /// two commits that changed the index is in neither table once the audit file lost
    /// its tail, and its request was never answered, since it waited for that file's
    /// sync. The leaves are appended in their order and numbered on from the file's end
    /// (each text carries its new number), which leaves no hole in the tree; no checkpoint
    /// covered the old numbers, since checkpoints are signed from durable leaves only.
    /// Returns how many leaves it put back.
    @discardableResult
    static func recoverPending(_ db: SQLiteConnection) throws(StoreError) -> Int {
        let rows = try db.statement("SELECT seq, event FROM main.audit_pending ORDER BY seq")
        var pending: [(seq: Int, text: String)] = []
        while try rows.step() { pending.append((rows.int(0) ?? 0, rows.string(1) ?? "")) }
        rows.reset()
        guard !pending.isEmpty else { return 0 }
        var putBack = 0
        try db.transaction { () throws(StoreError) in
            var log = try Appender(db)
            for row in pending where row.seq > log.firstLeaf {
                putBack += 1
                guard let event = try? JSONDecoder().decode(AuditEvent.self, from: Data(row.text.utf8)) else {
                    throw .engine("audit_pending holds leaf \(row.seq - 1), which is not an audit event")
                }
                log.append(event, withIndexChange: false)
            }
            try log.write()
        }
        try db.transaction { () throws(StoreError) in try forgetPending(through: .max, on: db) }
        return putBack
    }

    /// Deletes the rows of `audit_pending` for leaves below `leaves`, which the audit file
    /// holds durably.
    static func forgetPending(through leaves: Int, on db: SQLiteConnection) throws(StoreError) {
        let s = try db.statement("DELETE FROM main.audit_pending WHERE seq <= ?1")
        s.bind(1, leaves)
        _ = try s.step()
    }

    static func size(_ db: SQLiteConnection) throws(StoreError) -> Int {
        let s = try db.statement("SELECT coalesce(max(seq), 0) FROM audit.audit_events")
        _ = try s.step()
        return s.int(0) ?? 0
    }

    static func leafHashes(_ db: SQLiteConnection, from: Int, count: Int) throws(StoreError) -> [MerkleTree.Hash] {
        let s = try db.statement("SELECT leaf_hash FROM audit.audit_events WHERE seq > ?1 AND seq <= ?1 + ?2 ORDER BY seq")
        s.bind(1, from)
        s.bind(2, count)
        var out: [MerkleTree.Hash] = []
        out.reserveCapacity(min(count, 1 << 20))
        while try s.step() { out.append(s.blob(0)) }
        return out
    }

    static func events(_ db: SQLiteConnection, from: Int, limit: Int) throws(StoreError) -> [StoredAuditEvent] {
        let s = try db.statement("SELECT seq, event, leaf_hash FROM audit.audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        s.bind(1, from)
        s.bind(2, limit)
        var out: [StoredAuditEvent] = []
        while try s.step() {
            out.append(StoredAuditEvent(index: (s.int(0) ?? 0) - 1, text: s.string(1) ?? "", leafHash: s.blob(2)))
        }
        return out
    }

    static func save(_ checkpoint: Checkpoint, frontier: MerkleFrontier, on db: SQLiteConnection) throws(StoreError) {
        guard frontier.size == checkpoint.treeSize else {
            throw .engine("a checkpoint of \(checkpoint.treeSize) leaves came with a frontier of \(frontier.size)")
        }
        let s = try db.statement("INSERT OR IGNORE INTO audit.audit_checkpoints (tree_size, checkpoint, frontier) VALUES (?1, ?2, ?3)")
        s.bind(1, checkpoint.treeSize)
        s.bind(2, text(checkpoint))
        s.bind(3, frontier.bytes)
        _ = try s.step()
    }

    static func checkpoints(_ db: SQLiteConnection) throws(StoreError) -> [Checkpoint] {
        let s = try db.statement("SELECT checkpoint FROM audit.audit_checkpoints ORDER BY tree_size")
        var out: [Checkpoint] = []
        while try s.step() {
            if let c = decode(s.string(0)) { out.append(c) }
        }
        return out
    }

    /// Checkpoints signed before migration 10 have no frontier; the caller rebuilds one.
    static func latestCheckpoint(_ db: SQLiteConnection) throws(StoreError) -> (checkpoint: Checkpoint, frontier: MerkleFrontier?)? {
        let s = try db.statement("SELECT checkpoint, frontier FROM audit.audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
        guard try s.step(), let checkpoint = decode(s.string(0)) else { return nil }
        return (checkpoint, MerkleFrontier(size: checkpoint.treeSize, bytes: s.blob(1)))
    }

    /// The checkpoint of exactly `treeSize` leaves, with its frontier when one was kept.
    static func checkpoint(_ db: SQLiteConnection, treeSize: Int) throws(StoreError) -> (checkpoint: Checkpoint, frontier: MerkleFrontier?)? {
        let s = try db.statement("SELECT checkpoint, frontier FROM audit.audit_checkpoints WHERE tree_size = ?1")
        s.bind(1, treeSize)
        guard try s.step(), let checkpoint = decode(s.string(0)) else { return nil }
        return (checkpoint, MerkleFrontier(size: checkpoint.treeSize, bytes: s.blob(1)))
    }

    /// A checkpoint as a row keeps it (here and in SQLiteWitness's tables), and back.
    static func text(_ checkpoint: Checkpoint) -> String {
        String(decoding: (try? JSONEncoder().encode(checkpoint)) ?? Data(), as: UTF8.self)
    }

    static func decode(_ text: String?) -> Checkpoint? {
        try? JSONDecoder().decode(Checkpoint.self, from: Data((text ?? "").utf8))
    }

    static func usage(_ db: SQLiteConnection, day: String, actor: String, counter: String) throws(StoreError) -> Int {
        let s = try db.statement("SELECT n FROM audit.usage WHERE day = ?1 AND actor = ?2 AND counter = ?3")
        s.bind(1, day)
        s.bind(2, actor)
        s.bind(3, counter)
        return try s.step() ? s.int(0) ?? 0 : 0
    }

    static func usage(_ db: SQLiteConnection, day: String) throws(StoreError) -> [UsageCount] {
        let s = try db.statement("SELECT actor, counter, n FROM audit.usage WHERE day = ?1 ORDER BY actor, counter")
        s.bind(1, day)
        var out: [UsageCount] = []
        while try s.step() { out.append(UsageCount(actor: s.string(0) ?? "", counter: s.string(1) ?? "", count: s.int(2) ?? 0)) }
        return out
    }
}
