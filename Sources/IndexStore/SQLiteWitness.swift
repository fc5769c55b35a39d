import AuditLog
import Foundation

/// What this node witnesses of other nodes' logs (CheckpointWitness), in the audit file:
/// per origin the checkpoint held, every checkpoint accepted, and every offer refused as
/// inconsistent. The held state is read and changed in one transaction on the writer, so
/// two offers for one origin are judged one after the other.
enum SQLiteWitness {
    static func witness(_ offered: Checkpoint, by actor: String, on db: SQLiteConnection,
                        judge: (WitnessedLog?) -> WitnessVerdict) throws(StoreError) -> WitnessVerdict {
        try db.transaction { () throws(StoreError) -> WitnessVerdict in
            let verdict = judge(try held(offered.origin, on: db))
            let now = Int(Date().timeIntervalSince1970)
            switch verdict {
            case .accepted(let log):
                let keep = try db.statement("""
                    INSERT INTO audit.witnessed_logs (origin, owner, public_key, checkpoint) VALUES (?1, ?2, ?3, ?4)
                    ON CONFLICT (origin) DO UPDATE SET checkpoint = excluded.checkpoint
                    """)
                keep.bind(1, log.origin)
                keep.bind(2, log.owner)
                keep.bind(3, log.publicKey)
                keep.bind(4, SQLiteAudit.text(log.checkpoint))
                _ = try keep.step()
                let history = try db.statement(
                    "INSERT OR IGNORE INTO audit.witnessed_checkpoints (origin, tree_size, checkpoint, received) VALUES (?1, ?2, ?3, ?4)")
                history.bind(1, log.origin)
                history.bind(2, log.checkpoint.treeSize)
                history.bind(3, SQLiteAudit.text(log.checkpoint))
                history.bind(4, now)
                _ = try history.step()
            case .inconsistent(let reason):
                let conflict = try db.statement(
                    "INSERT INTO audit.witness_conflicts (origin, actor, checkpoint, reason, received) VALUES (?1, ?2, ?3, ?4, ?5)")
                conflict.bind(1, offered.origin)
                conflict.bind(2, actor)
                conflict.bind(3, SQLiteAudit.text(offered))
                conflict.bind(4, reason)
                conflict.bind(5, now)
                _ = try conflict.step()
            case .alreadyHeld, .proofFrom, .badSignature, .notOwner, .keyChanged:
                break
            }
            return verdict
        }
    }

    static func held(_ origin: String, on db: SQLiteConnection) throws(StoreError) -> WitnessedLog? {
        let s = try db.statement("SELECT owner, public_key, checkpoint FROM audit.witnessed_logs WHERE origin = ?1")
        s.bind(1, origin)
        defer { s.reset() }
        guard try s.step(), let checkpoint = SQLiteAudit.decode(s.string(2)) else { return nil }
        return WitnessedLog(origin: origin, owner: s.string(0) ?? "", publicKey: s.string(1) ?? "", checkpoint: checkpoint)
    }

    static func forget(_ origin: String, on db: SQLiteConnection) throws(StoreError) -> Bool {
        let s = try db.statement("DELETE FROM audit.witnessed_logs WHERE origin = ?1")
        s.bind(1, origin)
        _ = try s.step()
        return db.changes > 0
    }

    /// The newest `limit` conflicts for `origin`, newest first.
    static func conflicts(_ origin: String, limit: Int, on db: SQLiteConnection) throws(StoreError) -> [WitnessConflict] {
        let s = try db.statement("""
            SELECT actor, checkpoint, reason, received FROM audit.witness_conflicts WHERE origin = ?1 ORDER BY id DESC LIMIT ?2
            """)
        s.bind(1, origin)
        s.bind(2, limit)
        var out: [WitnessConflict] = []
        while try s.step() {
            guard let checkpoint = SQLiteAudit.decode(s.string(1)) else { continue }
            let received = Date(timeIntervalSince1970: TimeInterval(s.int(3) ?? 0))
            out.append(WitnessConflict(actor: s.string(0) ?? "", checkpoint: checkpoint, reason: s.string(2) ?? "",
                                       received: received.formatted(.iso8601)))
        }
        return out
    }
}
