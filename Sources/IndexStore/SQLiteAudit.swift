import AuditLog
import Foundation

/// The audit tables: events numbered by `seq` (leaf index + 1), checkpoints by tree size,
/// usage counts by day, actor and counter, each changed inside the caller's transaction.
enum SQLiteAudit {
    /// Appends events inside the writer's open transaction: the next leaf number and the
    /// usage increments are held here and written by `writeUsage` before the commit. A
    /// value type, so a batch rolled back to its savepoint restores the copy from before.
    struct Appender {
        private let db: SQLiteConnection
        private var nextLeaf: Int
        private var usage: [String: (day: String, actor: String, counter: String, by: Int)] = [:]

        init(_ db: SQLiteConnection) throws(StoreError) {
            self.db = db
            let next = try db.statement("SELECT coalesce(max(seq), 0) FROM audit_events")
            _ = try next.step()
            nextLeaf = next.int(0) ?? 0
        }

        mutating func append(_ event: AuditEvent) throws(StoreError) {
            var event = event
            event.leafIndex = nextLeaf
            let canonical = event.canonical
            let insert = try db.statement("INSERT INTO audit_events (seq, event, leaf_hash) VALUES (?1, ?2, ?3)")
            insert.bind(1, nextLeaf + 1)
            insert.bind(2, String(decoding: canonical, as: UTF8.self))
            insert.bind(3, MerkleTree.leafHash(canonical))
            _ = try insert.step()
            nextLeaf += 1
            for (counter, by) in event.meterIncrements {
                let key = "\(event.day)|\(event.actor)|\(counter)"
                usage[key, default: (event.day, event.actor, counter, 0)].by += by
            }
        }

        func writeUsage() throws(StoreError) {
            for row in usage.values {
                let count = try db.statement("""
                    INSERT INTO usage (day, actor, counter, n) VALUES (?1, ?2, ?3, ?4)
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

    static func size(_ db: SQLiteConnection) throws(StoreError) -> Int {
        let s = try db.statement("SELECT coalesce(max(seq), 0) FROM audit_events")
        _ = try s.step()
        return s.int(0) ?? 0
    }

    static func leafHashes(_ db: SQLiteConnection, from: Int, count: Int) throws(StoreError) -> [MerkleTree.Hash] {
        let s = try db.statement("SELECT leaf_hash FROM audit_events WHERE seq > ?1 AND seq <= ?1 + ?2 ORDER BY seq")
        s.bind(1, from)
        s.bind(2, count)
        var out: [MerkleTree.Hash] = []
        out.reserveCapacity(min(count, 1 << 20))
        while try s.step() { out.append(s.blob(0)) }
        return out
    }

    static func events(_ db: SQLiteConnection, from: Int, limit: Int) throws(StoreError) -> [StoredAuditEvent] {
        let s = try db.statement("SELECT seq, event, leaf_hash FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
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
        let s = try db.statement("INSERT OR IGNORE INTO audit_checkpoints (tree_size, checkpoint, frontier) VALUES (?1, ?2, ?3)")
        s.bind(1, checkpoint.treeSize)
        s.bind(2, String(decoding: (try? JSONEncoder().encode(checkpoint)) ?? Data(), as: UTF8.self))
        s.bind(3, frontier.bytes)
        _ = try s.step()
    }

    static func checkpoints(_ db: SQLiteConnection) throws(StoreError) -> [Checkpoint] {
        let s = try db.statement("SELECT checkpoint FROM audit_checkpoints ORDER BY tree_size")
        var out: [Checkpoint] = []
        while try s.step() {
            if let c = decode(s.string(0)) { out.append(c) }
        }
        return out
    }

    /// Checkpoints signed before migration 10 have no frontier; the caller rebuilds one.
    static func latestCheckpoint(_ db: SQLiteConnection) throws(StoreError) -> (checkpoint: Checkpoint, frontier: MerkleFrontier?)? {
        let s = try db.statement("SELECT checkpoint, frontier FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
        guard try s.step(), let checkpoint = decode(s.string(0)) else { return nil }
        return (checkpoint, MerkleFrontier(size: checkpoint.treeSize, bytes: s.blob(1)))
    }

    private static func decode(_ text: String?) -> Checkpoint? {
        try? JSONDecoder().decode(Checkpoint.self, from: Data((text ?? "").utf8))
    }

    static func usage(_ db: SQLiteConnection, day: String, actor: String, counter: String) throws(StoreError) -> Int {
        let s = try db.statement("SELECT n FROM usage WHERE day = ?1 AND actor = ?2 AND counter = ?3")
        s.bind(1, day)
        s.bind(2, actor)
        s.bind(3, counter)
        return try s.step() ? s.int(0) ?? 0 : 0
    }

    static func usage(_ db: SQLiteConnection, day: String) throws(StoreError) -> [UsageCount] {
        let s = try db.statement("SELECT actor, counter, n FROM usage WHERE day = ?1 ORDER BY actor, counter")
        s.bind(1, day)
        var out: [UsageCount] = []
        while try s.step() { out.append(UsageCount(actor: s.string(0) ?? "", counter: s.string(1) ?? "", count: s.int(2) ?? 0)) }
        return out
    }
}
