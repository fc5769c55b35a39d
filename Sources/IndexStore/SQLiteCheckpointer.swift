import CSQLite
import Foundation
import Synchronization

/// Copies the WAL into the database file beside the writer, not in its way.
///
/// A checkpoint copies every page the WAL holds and syncs the database file: with a
/// 64 MiB WAL of audit leaves, prior checks and index pages, tens of milliseconds. Done
/// by the writer (as RESTART), every commit waited for it, and a node under steady audited
/// load saw its p99 set by those waits and growing with the database (the soak: 30 → 52 ms
/// over 30 minutes). A PASSIVE checkpoint on a connection of its own takes no writer lock:
/// commits carry on while it copies. It cannot start the WAL over, because the writer
/// appends meanwhile; the writer still restarts it past `SQLiteIndexStore.walRestartFrames`,
/// which now finds the frames already copied and costs little.
///
/// What must stay true: the connection is used only on `queue`; at most one checkpoint
/// is queued at a time however often the writer nudges; passes are numbered in the order
/// they start, and `finished` never runs ahead of a pass that has not returned.
final class SQLiteCheckpointer: @unchecked Sendable {
    private let connection: SQLiteConnection
    private let queue = DispatchQueue(label: "index-store.checkpointer", qos: .utility)
    private let state = Mutex<(queued: Bool, started: Int)>((false, 0))
    private let finishedPasses = Atomic<Int>(0)

    /// Per file, the WAL frames copied into the database as of the last pass's end.
    private let copiedMain = Atomic<Int32>(0), copiedAudit = Atomic<Int32>(0)

    /// The number of the last pass that has returned.
    var finished: Int { finishedPasses.load(ordering: .acquiring) }

    /// The frames of `schema`'s WAL that the last pass left in the database file. Read
    /// after `finished` has reached a pass that started after the WAL last restarted.
    func copied(_ schema: String) -> Int32 {
        schema == "main" ? copiedMain.load(ordering: .relaxed) : copiedAudit.load(ordering: .relaxed)
    }

    init(path: String, auditPath: String) throws(StoreError) {
        connection = try SQLiteConnection(path: path, readOnly: false)
        try connection.attachAudit(auditPath)
        // A connection finds a WAL on its first read; until then a checkpoint on it
        // answers "not in WAL mode" and copies nothing. Checkpoints cover both files.
        try connection.exec("SELECT count(*) FROM main.sqlite_master; SELECT count(*) FROM audit.sqlite_master;")
    }

    /// Asks for a checkpoint soon; a no-op while one is queued. Returns the number of the
    /// pass that will start after this call, and so copy every frame committed before it.
    @discardableResult
    func nudge() -> Int {
        let (start, pass) = state.withLock { state -> (Bool, Int) in
            defer { state.queued = true }
            return (!state.queued, state.started + 1)
        }
        guard start else { return pass }
        queue.async { [self] in
            let number = state.withLock { state -> Int in
                state.queued = false
                state.started += 1
                return state.started
            }
            for schema in ["main", "audit"] {
                var logFrames: Int32 = 0, copied: Int32 = 0
                guard sqlite3_wal_checkpoint_v2(connection.db, schema, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &copied) == SQLITE_OK
                else { continue }
                // A pass that copied nothing new leaves nothing to sync (each sync costs this
                // VM host time as well: RESULTS.md, index, session 24).
                if copied != self.copied(schema) { syncDatabaseFile(schema) }
                if schema == "main" { copiedMain.store(copied, ordering: .relaxed) } else { copiedAudit.store(copied, ordering: .relaxed) }
            }
            finishedPasses.store(number, ordering: .releasing)
        }
        return pass
    }

    /// SQLite syncs the database file after a pass only when the pass reached the WAL's
    /// end, which under a steady stream of commits it never does: the writer appends while
    /// the pass copies. Every page the passes copied then stayed dirty in the kernel until
    /// the writer's RESTART synced the file, with every commit waiting behind it. Synced
    /// here, on this thread, the restart's own sync finds only the pages it copied. The sync
    /// goes through SQLite's own file handle: a second descriptor of the database, once
    /// closed, would drop the locks SQLite holds on the file (POSIX locks are per process).
    private func syncDatabaseFile(_ schema: String) {
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard sqlite3_file_control(connection.db, schema, SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK,
              let file, let sync = file.pointee.pMethods?.pointee.xSync else { return }
        _ = sync(file, SQLITE_SYNC_NORMAL)
    }
}
