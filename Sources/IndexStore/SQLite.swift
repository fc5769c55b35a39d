import CSQLite
import CSQLiteShims
import Foundation

/// One SQLite connection, used from one thread at a time (the caller's queue confines it).
final class SQLiteConnection: @unchecked Sendable {
    let db: OpaquePointer
    private var statements: [SQLText: OpaquePointer] = [:]
    /// Statements handed out since the last `resetAll`, which resets only these: a unit
    /// of work uses a handful, each listed once.
    private var used: [OpaquePointer] = []
    /// Past this many cached shapes the cache is emptied at the next `resetAll` (when no
    /// statement is in use). Shapes come from code, with bound values, so a working node
    /// holds a few dozen; the cap keeps a caller that varies, say, the length of an IN
    /// list from growing memory and every reset without bound.
    static let statementCacheLimit = 128

    /// How many prepared statements are cached now.
    var cachedStatements: Int { statements.count }

    init(path: String, readOnly: Bool) throws(StoreError) {
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &handle, flags, Self.walBuffered ? gw_sqlite_wal_buffer_vfs_name : nil) == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw .engine("\(path): \(message)")
        }
        db = handle
        sqlite3_busy_timeout(db, Self.busyTimeoutMs)
    }

    /// Whether the VFS that writes WAL frames in large pieces (CSQLiteShims) is there;
    /// connections fall back to the default VFS if it could not be registered. Reads that
    /// may refuse to wait for the disk (`SQLiteReaderPool.readHere`) are installed first,
    /// before any connection opens a file; where they cannot be, none runs on a loop.
    private static let walBuffered: Bool = {
        _ = gw_sqlite_nowait_install()
        return gw_sqlite_wal_buffer_register() == SQLITE_OK
    }()

    /// How long a statement waits for a lock another connection holds.
    static let busyTimeoutMs: Int32 = 10_000

    deinit {
        statements.values.forEach { sqlite3_finalize($0) }
        sqlite3_close(db)
    }

    /// Resets every cached statement. A statement left mid-result keeps its read
    /// transaction open, and the connection then keeps seeing the snapshot it started:
    /// every unit of work ends here, so no snapshot outlives it.
    func resetAll() {
        for s in used { sqlite3_reset(s) }
        used.removeAll(keepingCapacity: true)
        if statements.count > Self.statementCacheLimit {
            statements.values.forEach { sqlite3_finalize($0) }
            statements.removeAll()
        }
    }

    /// Frames in the index's WAL (`main`) and in the audit file's (`audit`) after this
    /// connection's last commit to each, from SQLite's WAL hook. Installing the hook
    /// turns SQLite's own autocheckpoint off; the owner checkpoints.
    private(set) var walFrames: Int32 = 0
    private(set) var auditWALFrames: Int32 = 0

    /// Whether a commit wrote frames to each WAL since the last `takeWALWrites`.
    private var wroteWAL = false
    private var wroteAuditWAL = false

    /// Which WALs (index, audit) commits wrote to since the last call.
    func takeWALWrites() -> [Bool] {
        defer { (wroteWAL, wroteAuditWAL) = (false, false) }
        return [wroteWAL, wroteAuditWAL]
    }

    func watchWAL() {
        sqlite3_wal_hook(db, { context, _, schema, frames in
            let connection = Unmanaged<SQLiteConnection>.fromOpaque(context!).takeUnretainedValue()
            if let schema, strcmp(schema, "main") != 0 {
                connection.auditWALFrames = frames
                connection.wroteAuditWAL = true
            } else {
                connection.walFrames = frames
                connection.wroteWAL = true
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// A restart emptied `schema`'s WAL; the hook says so only at its next commit, and an
    /// index WAL still counted full would be restarted again after every audit-only one.
    func forgetWALFrames(of schema: String) {
        if schema == "main" { walFrames = 0 } else { auditWALFrames = 0 }
    }

    /// Attaches the audit file (SQLiteIndexStore.auditPath) as schema `audit`, read-only
    /// when this connection is.
    func attachAudit(_ path: String) throws(StoreError) {
        try exec("ATTACH DATABASE '\(path.replacingOccurrences(of: "'", with: "''"))' AS audit")
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes(db)) }

    /// The rowid the last successful INSERT on this connection gave its row.
    var lastInsertRowID: Int { Int(sqlite3_last_insert_rowid(db)) }

    func exec(_ sql: String) throws(StoreError) {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw error() }
    }

    /// `sql`, one statement that returns no rows (BEGIN, COMMIT, SAVEPOINT, RELEASE),
    /// prepared once and kept: `exec` parses its text on every call, several times in
    /// every group commit. Never a PRAGMA: SQLite applies many of them (`synchronous`
    /// among them) while preparing, so a kept one would not apply again when stepped.
    /// `exec` stays for those, for the rare paths and for text of several statements.
    func execPrepared(_ sql: String) throws(StoreError) {
        let s = try statement(sql)
        defer { s.reset() }
        _ = try s.step()
    }

    /// Runs `body` inside BEGIN IMMEDIATE … COMMIT, rolled back when it throws.
    @discardableResult
    func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try execPrepared("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execPrepared("COMMIT")
            return result
        } catch {
            try? exec("ROLLBACK")
            throw error
        }
    }

    /// A cached prepared statement, reset and cleared for a new use.
    func statement(_ sql: String) throws(StoreError) -> Statement { try statement(SQLText(sql)) }

    /// `statement`, for a text whose hash was computed once, when it was built.
    func statement(_ sql: SQLText) throws(StoreError) -> Statement {
        if let s = statements[sql] {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
            if !used.contains(s) { used.append(s) }
            return Statement(s, self)
        }
        var s: OpaquePointer?
        guard sqlite3_prepare_v3(db, sql.text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil) == SQLITE_OK, let s else { throw error() }
        statements[sql] = s
        used.append(s)
        return Statement(s, self)
    }

    func error() -> StoreError {
        let code = sqlite3_errcode(db)
        // A full disk shows as SQLITE_FULL, or as an I/O error whose errno is ENOSPC
        // (a WAL append or an fsync that found no space).
        if code == SQLITE_FULL || (code & 0xFF == SQLITE_IOERR && sqlite3_system_errno(db) == ENOSPC) { return .full }
        return .engine(String(cString: sqlite3_errmsg(db)))
    }
}

/// SQL text as the statement cache's key, hashed once. A study query's text is some 600
/// bytes, and hashing it for every lookup was about 1 % of a token lookup's CPU; a text
/// built once per query shape (`SQLiteQuery`) keeps its hash with it. Equal texts are
/// the same `String`'s storage, which `==` answers without reading the bytes.
struct SQLText: Hashable, Sendable {
    let text: String
    private let hash: Int

    init(_ text: String) {
        self.text = text
        hash = text.hashValue
    }

    static func == (a: SQLText, b: SQLText) -> Bool { a.text == b.text }
    func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}

/// A prepared statement: bind by position (1-based), step, read columns.
struct Statement {
    private let s: OpaquePointer
    private let connection: SQLiteConnection
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ s: OpaquePointer, _ connection: SQLiteConnection) {
        self.s = s
        self.connection = connection
    }

    func reset() {
        sqlite3_reset(s)
    }

    /// By the string's own bytes and length: handing SQLite the String as a C string
    /// copied every short one (and made SQLite measure each).
    func bind(_ i: Int32, _ v: String?) {
        guard let v else { sqlite3_bind_null(s, i); return }
        if v.utf8.withContiguousStorageIfAvailable({ bind(i, text: $0) }) == nil { bind(i, text: Array(v.utf8)) }
    }

    /// UTF-8 bytes as TEXT; an empty buffer binds '' (a NULL pointer would bind NULL).
    func bind(_ i: Int32, text: [UInt8]) {
        text.withUnsafeBufferPointer { bind(i, text: $0) }
    }

    private func bind(_ i: Int32, text: UnsafeBufferPointer<UInt8>) {
        text.withMemoryRebound(to: CChar.self) { chars in
            _ = sqlite3_bind_text(s, i, chars.baseAddress ?? Self.empty, Int32(chars.count), Self.transient)
        }
    }

    private static var empty: UnsafePointer<CChar> {
        UnsafeRawPointer(("" as StaticString).utf8Start).assumingMemoryBound(to: CChar.self)
    }

    func bind(_ i: Int32, _ v: Int?) {
        if let v { sqlite3_bind_int64(s, i, Int64(v)) } else { sqlite3_bind_null(s, i) }
    }

    func bind(_ i: Int32, _ v: [UInt8]) {
        _ = v.withUnsafeBytes { sqlite3_bind_blob(s, i, $0.baseAddress, Int32($0.count), Self.transient) }
    }

    func blob(_ i: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(s, i))
        guard n > 0, let p = sqlite3_column_blob(s, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// True while a row is available.
    func step() throws(StoreError) -> Bool {
        switch sqlite3_step(s) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error()
        }
    }

    func string(_ i: Int32) -> String? {
        text(i).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Column `i`'s text as SQLite holds it, valid until the statement steps or resets.
    func text(_ i: Int32) -> UnsafeBufferPointer<UInt8>? {
        guard let p = sqlite3_column_text(s, i) else { return nil }
        return UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, i)))
    }

    func int(_ i: Int32) -> Int? {
        sqlite3_column_type(s, i) == SQLITE_NULL ? nil : Int(sqlite3_column_int64(s, i))
    }
}
