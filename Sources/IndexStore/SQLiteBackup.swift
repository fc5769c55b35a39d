import CSQLite
import Foundation

/// A copy of a node's two database files that a node can start from: taken beside a
/// running node (read-only connections, SQLite's online backup, each file read in one read
/// transaction) or from a stopped one.
///
/// What must stay true, and why the order: the index's file is copied first, the audit
/// file after it. Every change in the index's copy then has its leaf either in the copy's
/// `audit_pending` (put back at the restored node's first start) or in the audit file
/// before the index was read, and so in its later copy: the audit copy may hold more (the
/// leaves of the moments between the two reads), never less. The other order could keep
/// an upload without its leaf.
///
/// The index's copy gets a new outbox epoch: a restored regional node sends its outbox
/// from the backup's moment on, and under the old epoch its new batches would carry the
/// idempotency keys of batches the national node took after the backup (refused there as
/// keys reused for another body).
public enum SQLiteBackup {
    public struct Copied: Sendable {
        public let studies: Int
        public let auditEvents: Int
    }

    /// Copies the node's index database at `index` and its audit file into `directory`,
    /// under the same names, and checks each copy (`PRAGMA quick_check`). `owned`: no node
    /// runs on them (the caller holds the data directory's lock), so they may be opened
    /// for writing, which lets SQLite recover a WAL a crash left.
    public static func copy(index: String, into directory: String, owned: Bool) throws(StoreError) -> Copied {
        let audit = SQLiteIndexStore.auditPath(for: index)
        let indexCopy = directory + "/" + URL(fileURLWithPath: index).lastPathComponent
        let auditCopy = directory + "/" + URL(fileURLWithPath: audit).lastPathComponent
        try copyFile(index, to: indexCopy, owned: owned)
        try copyFile(audit, to: auditCopy, owned: owned)
        let copy = try SQLiteConnection(path: indexCopy, readOnly: false)
        try copy.exec("UPDATE node_meta SET value = lower(hex(randomblob(8))) WHERE key = 'outbox_epoch'")
        let studies = try copy.statement("SELECT count(*) FROM studies")
        _ = try studies.step()
        let auditFile = try SQLiteConnection(path: auditCopy, readOnly: true)
        let events = try auditFile.statement("SELECT coalesce(max(seq), 0) FROM audit_events")
        _ = try events.step()
        return Copied(studies: studies.int(0) ?? 0, auditEvents: events.int(0) ?? 0)
    }

    private static func copyFile(_ source: String, to destination: String, owned: Bool) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: source) else { throw .engine("\(source) does not exist") }
        let from = try SQLiteConnection(path: source, readOnly: !owned)
        let to = try SQLiteConnection(path: destination, readOnly: false)
        guard let backup = sqlite3_backup_init(to.db, "main", from.db, "main") else {
            throw .engine("cannot copy \(source): \(String(cString: sqlite3_errmsg(to.db)))")
        }
        // All pages in one step: one read transaction on the source, so one moment of it.
        // BUSY only while another process holds a lock the read needs (a WAL recovery).
        var rc = sqlite3_backup_step(backup, -1)
        for _ in 0..<100 where rc == SQLITE_BUSY || rc == SQLITE_LOCKED {
            usleep(50_000)
            rc = sqlite3_backup_step(backup, -1)
        }
        sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE else {
            throw .engine("cannot copy \(source): \(String(cString: sqlite3_errstr(rc)))")
        }
        let check = try to.statement("PRAGMA quick_check")
        guard try check.step(), check.string(0) == "ok" else {
            throw .engine("the copy of \(source) fails its check: \(check.string(0) ?? "no answer")")
        }
    }
}
