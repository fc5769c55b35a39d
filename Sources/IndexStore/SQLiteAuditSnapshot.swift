import AuditLog
import Foundation

/// A running node's audit log read from another process (`audit verify` and `audit export`
/// beside a serving node): one read-only connection to the node's files.
///
/// What must stay true: nothing here writes. Opening `SQLiteIndexStore` would migrate and
/// file the leaves a crash left in `audit_pending`, which only the node's own writer may
/// do while it runs (it did both when it started). A read-only connection in WAL mode
/// sees what was committed when its read began and never blocks the node's writer. The
/// node's restart of the audit WAL does not wait for it either, but cannot happen while
/// a read is on: that WAL grows for as long as one call lasts (reading every event of a
/// large log, for `verify`, takes seconds).
public final class SQLiteAuditSnapshot: AuditLogReading, @unchecked Sendable {
    private let db: SQLiteConnection
    /// One call at a time: the connection and its cached statements are not shared.
    private let lock = NSLock()

    /// `path` is the node's index database; its audit file is found beside it.
    public init(path: String) throws(StoreError) {
        db = try SQLiteConnection(path: path, readOnly: true)
        try db.attachAudit(SQLiteIndexStore.auditPath(for: path))
    }

    public func events(from: Int, limit: Int) async throws(StoreError) -> [StoredAuditEvent] {
        try read { db throws(StoreError) in try SQLiteAudit.events(db, from: from, limit: limit) }
    }

    public func checkpoints() async throws(StoreError) -> [Checkpoint] {
        try read { db throws(StoreError) in try SQLiteAudit.checkpoints(db) }
    }

    private func read<T>(_ body: (SQLiteConnection) throws(StoreError) -> T) throws(StoreError) -> T {
        lock.lock()
        defer {
            db.resetAll()
            lock.unlock()
        }
        return try body(db)
    }
}
