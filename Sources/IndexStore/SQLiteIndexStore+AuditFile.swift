import Foundation

/// Where the audit file is, how it is made, and the room kept for it on a full disk.
extension SQLiteIndexStore {
    /// The audit file beside the index at `path`: `index.sqlite` → `index-audit.sqlite`.
    public static func auditPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingPathExtension().path + "-audit." + (url.pathExtension.isEmpty ? "sqlite" : url.pathExtension)
    }

    /// Bytes set aside for the audit file's WAL when the store opens.
    static let auditWALReserve = 4 << 20

    /// Creates the audit file in WAL mode and migrates it, on a connection of its own: its
    /// tables are then made under their own names, not under the writer's `audit.`.
    static func prepareAuditFile(_ path: String) throws(StoreError) {
        let audit = try SQLiteConnection(path: path, readOnly: false)
        try audit.exec("PRAGMA journal_mode = WAL;")
        try SQLiteSchema.migrate(audit, SQLiteSchema.auditMigrations)
    }

    /// A full disk should stop uploads, not lookups; but a lookup is answered only once its
    /// leaf is on disk, and the audit file's WAL must grow to take it. So its WAL file is
    /// allocated ahead (`auditWALReserve`, about a thousand group commits of lookups, and
    /// SQLite reuses a WAL from the start after each restart without shrinking it): on a
    /// full disk the index's file refuses uploads (507) while lookups go on, audited,
    /// until that room is used. Bytes past the last frame SQLite wrote fail its frame
    /// checksums and are never read as frames. Best effort: a disk already full at
    /// start-up gets no reserve.
    static func reserveAuditWAL(_ auditPath: String) {
        let fd = open(auditPath + "-wal", O_RDWR)
        guard fd >= 0 else { return }
        _ = posix_fallocate(fd, 0, off_t(auditWALReserve))
        close(fd)
    }
}
