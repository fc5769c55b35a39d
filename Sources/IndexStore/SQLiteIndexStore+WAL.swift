import Foundation

/// Keeping both WALs short: the checkpointer copies them into their databases beside the
/// writer (SQLiteCheckpointer), and the writer restarts each once it is past its limit.
/// Everything here runs on `writeQueue`, after each group commit.
extension SQLiteIndexStore {
    /// WAL frames (pages) past which the writer checkpoints and restarts the log: 64 MiB.
    static let walRestartFrames: Int32 = 16_384
    /// New WAL frames after which the checkpointer copies them (SQLiteCheckpointer): 16 MiB.
    /// A pass copies each page once however many frames of it the WAL holds since the last
    /// pass, so a longer step copies fewer pages: an upload of 1 000 studies writes some
    /// 1 000 frames, most of them leaves no other batch within 4 MiB touched again. At
    /// 1.6 M studies, 16 MiB took about 10 % off the node's CPU a study ingested (eight
    /// alternating pairs, seven lower); 32 and 64 MiB (with the restart limit raised to
    /// match) took more CPU, not less.
    static let checkpointStepFrames: Int32 = 4_096
    /// At 1.1 M studies under ingest, four passes let the WAL grow to about 350 MB.
    static let catchUpPasses = 4
    /// Uploads wait no longer than this for a restart; past it they go on, as before.
    static let longestHold: Duration = .seconds(2)

    /// The checkpointer's pass a WAL restart waits for, and how many it has waited for.
    struct CatchUp {
        let pass: Int
        let passes: Int
    }

    /// True while uploads wait for the index's WAL to restart, and lookups go on alone.
    var uploadsHeld: Bool {
        guard let since = uploadsHeldSince else { return false }
        return ContinuousClock.now - since < Self.longestHold
    }

    /// After each group: restarts a WAL past its limit once the checkpointer has copied
    /// it (`checkpointed`), and otherwise nudges the checkpointer every `checkpointStepFrames`.
    func maintainWALs() {
        if writer.auditWALFrames > walRestartLimit, checkpointed(since: &auditRestartAfterPass, "audit") { restartAuditWAL() }
        let frames = writer.walFrames + writer.auditWALFrames
        if writer.walFrames > walRestartLimit {
            if checkpointed(since: &restartAfterPass, "main") { restartWAL() }
        } else if frames < nudgedAt {
            nudgedAt = frames
        } else if frames - nudgedAt >= Self.checkpointStepFrames {
            checkpointer.nudge()
            nudgedAt = frames
        }
    }

    /// A restart copies whatever the checkpointer has not, and syncs the file, with every
    /// commit waiting: done as soon as a WAL passed its limit, that was up to the
    /// checkpointer's last 1 024 frames (audit WAL: 2–23 ms measured at 7 500 audited
    /// lookups/s, every second or two). So the writer asks for one more pass first and
    /// restarts once it has returned, with only the frames since its start left to copy.
    ///
    /// Under ingest those are many: a pass at 1.1 M studies takes 300–500 ms to copy and
    /// sync, and the writer appends some 6 000 frames meanwhile, which the restart copied
    /// and synced in 300–400 ms, every 64 MiB. So while a pass leaves more than a
    /// sixteenth of the limit behind (4 MiB), another follows, up to `catchUpPasses`: each
    /// shorter than the one before while the checkpointer outruns the writer. When it does
    /// not (ingest: the device's random writes are slower than the WAL's appends), the
    /// index's WAL grows past its limit, and one more pass copies what is left while
    /// uploads wait (`uploadsHeld`) and lookups, whose leaves go to the audit file, go on:
    /// the restart then finds nothing to copy. Lookups beside an ingest had waited for
    /// every restart, up to half a second each.
    ///
    /// True once the last pass is done; a failed restart is tried again after the next
    /// commit without another pass.
    func checkpointed(since armed: inout CatchUp?, _ schema: String) -> Bool {
        guard let arm = armed else {
            armed = CatchUp(pass: checkpointer.nudge(), passes: 1)
            return false
        }
        guard checkpointer.finished >= arm.pass else { return false }
        let frames = schema == "main" ? writer.walFrames : writer.auditWALFrames
        let behind = frames - checkpointer.copied(schema) > walRestartLimit / 16
        let hold = behind && arm.passes >= Self.catchUpPasses && schema == "main" && uploadsHeldSince == nil
        guard behind && arm.passes < Self.catchUpPasses || hold else { return true }
        if hold { uploadsHeldSince = .now }
        armed = CatchUp(pass: checkpointer.nudge(), passes: arm.passes + 1)
        return false
    }

    /// SQLite's automatic checkpoint is PASSIVE: under a steady stream of readers it never
    /// finds a moment with none, so the WAL grows without bound (seen: 900 MB within
    /// minutes of audited lookups) and every page read searches a longer WAL index.
    /// RESTART copies the WAL into the database and starts it over once no reader is on
    /// the old one. It does not wait for them: a reader may hold a snapshot for up to
    /// `SQLiteReader.maxSnapshotAge`, and the busy handler sleeps in growing steps (30 ms
    /// and more) with every commit waiting behind the writer (a 10 % load's p99 went from
    /// 1 to 7 ms). When a reader is still there, every reader closes its snapshot after
    /// its current query and keeps none open until the restart is done, which is tried
    /// again after the next commit.
    /// Only the first failure asks the readers to let go: from then on none keeps a
    /// snapshot past its query, so there is nothing more to release until a restart.
    private func restartWAL() {
        defer { writer.resetAll() }
        let restarted = (try? restartWithoutWaiting()) ?? false
        let wasDue = walRestartDue.exchange(!restarted, ordering: .relaxed)
        if restarted { (restartAfterPass, uploadsHeldSince) = (nil, nil) }
        if !restarted, !wasDue { readers.all.forEach { $0.release() } }
    }

    /// The audit file's readers read outside any snapshot, briefly.
    private func restartAuditWAL() {
        defer { writer.resetAll() }
        if (try? restartWithoutWaiting("audit")) == true { auditRestartAfterPass = nil }
    }

    private func restartWithoutWaiting(_ schema: String = "main") throws(StoreError) -> Bool {
        try writer.exec("PRAGMA busy_timeout = 0")
        defer { try? writer.exec("PRAGMA busy_timeout = \(SQLiteConnection.busyTimeoutMs)") }
        let restart = try writer.statement("PRAGMA \(schema).wal_checkpoint(RESTART)")
        guard try restart.step(), restart.int(0) == 0 else { return false }
        writer.forgetWALFrames(of: schema)
        return true
    }
}
