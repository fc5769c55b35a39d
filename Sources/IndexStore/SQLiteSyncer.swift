import CSQLiteShims
import Foundation
import Synchronization

/// Makes the writer's commits durable: those that change the index beside the writer
/// instead of inside it, the rest right after them on the writer's thread.
///
/// With `synchronous=FULL` the writer waited in every COMMIT for the WAL's `fdatasync`
/// (and did the page writeback it starts): during an ingest a fifth of its time idle and
/// another seventh in writeback, while the next group's uploads waited behind it. The
/// writer now commits with `synchronous=NORMAL`, which writes its frames without syncing,
/// and hands its answers here; this queue syncs the index's WAL, then the audit file's, and
/// only then answers. Meanwhile the writer builds and commits the next group, and one sync
/// covers every commit that finished before it began. A group of lookups alone is synced
/// on the writer's thread and answered at once (`finishedHere`): at light load the hop
/// here and back cost them more (p50 +0.2 ms) than sharing a sync saved.
///
/// A commit that changed the index needs only the index's WAL synced (`Durability.index`):
/// its leaves are in the index's file too (`audit_pending`, SQLiteAudit), and a crash that
/// takes them from the audit file has them put back. Such commits are answered after the
/// index's sync, and the audit file is synced when someone needs it (a lookup's leaf, a
/// read) or `auditSyncAge` after its last sync, whichever comes first: a read cycle's four
/// transitions had each waited for two syncs in a row.
///
/// What must stay true:
/// - No answer before the syncs its durability needs, of passes that began after its
///   commit finished. Commits are numbered (`begin`) before COMMIT and reported
///   (`finished`) after it; a pass covers the commits finished before it began, since an
///   `fdatasync` makes durable whatever was written before it.
/// - `durableCommits` counts commits durable in every file. A commit becomes visible to
///   readers before it is durable, so every read through the store waits (`whenDurable`)
///   for the commits begun before its query ended, in every file: no one is answered with
///   data, or a checkpoint with leaves, that a crash could still take back.
/// - The index's WAL is synced before the audit file's, up to the same commit, as a FULL
///   commit of both would, so a crash after the first sync keeps an upload with its leaves
///   in `audit_pending` to put back. The one order this cannot promise: the audit file's
///   frames of a commit may be on disk before the index's (the kernel writes pages out on
///   its own, and a sync takes every frame written before it, a later commit's too), and
///   if the machine then loses power, the log keeps a leaf for a change that was neither
///   kept nor acknowledged.
/// - Once a sync fails, no later one is trusted (Linux may drop the pages that failed and
///   report success next time): every waiter from then on gets the error until restart.
final class SQLiteSyncer: @unchecked Sendable {
    /// What an answer waits for.
    enum Durability {
        /// The first file's WAL (the index's): a commit that changed it, every leaf it
        /// wrote kept there too.
        case index
        /// Every file's WAL.
        case all
    }

    private struct Waiter {
        let commit: Int
        let needs: Durability
        let run: @Sendable (StoreError?) -> Void
    }

    private let walPaths: [String]
    private var descriptors: [Int32]
    /// Bit i: a finished commit wrote frames to `walPaths[i]` not synced since.
    private let dirty = Atomic<Int>(0)
    private let begun = Atomic<Int>(0)
    private let finishedCommits = Atomic<Int>(0)
    private let durableCommits = Atomic<Int>(0)
    /// Set with `state.failure`, read without the lock on the paths that answer at once.
    private let failed = Atomic<Bool>(false)
    private let state = Mutex<(waiting: [Waiter], draining: Bool, failure: StoreError?)>(([], false, nil))
    /// Held through each sync, on this queue or the writer's thread: a sync that took a
    /// file's `dirty` bit marks commits durable only once it is done, and anyone else
    /// covering those commits waits for it. Holds when every file was last synced.
    private let syncing = Mutex(ContinuousClock.now)
    private let auditSyncAge: Duration
    private let queue = DispatchQueue(label: "index-store.syncer")

    /// `walPaths`: the WAL of each file the writer commits to, index first. The files after
    /// the first are synced for commits that need only the first at least every
    /// `auditSyncAge` while such commits come.
    init(walPaths: [String], auditSyncAge: Duration = .milliseconds(50)) {
        self.walPaths = walPaths
        self.auditSyncAge = auditSyncAge
        descriptors = walPaths.map { open($0, O_RDWR | O_CLOEXEC) }
    }

    deinit { descriptors.forEach { if $0 >= 0 { close($0) } } }

    /// The number of the commit the writer is about to make. One writer: each commit
    /// begins after the one before it was reported finished.
    func begin() -> Int { begun.add(1, ordering: .acquiringAndReleasing).newValue }

    /// The writer's commit `number` returned; `wrote[i]` says whether it wrote frames to
    /// `walPaths[i]`. `then` runs once it is durable as `needs` says (nil) or cannot be
    /// (the error).
    func finished(_ number: Int, wrote: [Bool], needs: Durability = .all, then: @escaping @Sendable (StoreError?) -> Void) {
        markFinished(number, wrote: wrote)
        add(Waiter(commit: number, needs: needs, run: then))
    }

    private func markFinished(_ number: Int, wrote: [Bool]) {
        let bits = wrote.enumerated().reduce(0) { $0 | ($1.element ? 1 << $1.offset : 0) }
        if bits != 0 { dirty.bitwiseOr(bits, ordering: .releasing) }
        finishedCommits.store(number, ordering: .releasing)
    }

    /// The writer's commit `number` returned, `wrote` as for `finished`. When every commit
    /// before it is durable, it is synced here, on the caller's thread, and `then` runs at
    /// once, as with a commit SQLite synced itself; otherwise after the pass that syncs them.
    func finishedHere(_ number: Int, wrote: [Bool], then: @escaping @Sendable (StoreError?) -> Void) {
        markFinished(number, wrote: wrote)
        guard !failed.load(ordering: .relaxed), durableCommits.load(ordering: .acquiring) == number - 1 else {
            return add(Waiter(commit: number, needs: .all, run: then))
        }
        then(syncAll(covering: number))
        // A reader may be waiting for this very commit, queued when it had not finished:
        // no pass would otherwise come for it.
        add(nil)
    }

    /// Whether commit `number` is durable in every file.
    func isDurable(_ number: Int) -> Bool { durableCommits.load(ordering: .acquiring) >= number }

    /// Whether every commit begun so far is durable in every file (`whenDurable` would run
    /// its body at once).
    var everythingDurable: Bool {
        durableCommits.load(ordering: .acquiring) >= begun.load(ordering: .acquiring) && !failed.load(ordering: .relaxed)
    }

    /// Runs `body` once every commit begun so far is durable in every file: for a reader
    /// that has just queried, that is every commit it could have seen.
    func whenDurable(_ body: @escaping @Sendable (StoreError?) -> Void) {
        let needed = begun.load(ordering: .acquiring)
        if durableCommits.load(ordering: .acquiring) >= needed, !failed.load(ordering: .relaxed) { return body(nil) }
        add(Waiter(commit: needed, needs: .all, run: body))
    }

    /// Queues `waiter`, if any, and starts a pass unless one is running or none is needed.
    private func add(_ waiter: Waiter?) {
        let start = state.withLock { state -> Bool in
            if let waiter { state.waiting.append(waiter) }
            if state.draining || state.waiting.isEmpty { return false }
            state.draining = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    /// Syncs until no waiter is left whose commit has finished. A waiter for a commit still
    /// running stays for the pass after the writer reports it. Those that need the index
    /// alone are answered between its sync and the others'.
    private func drain() {
        while true {
            let covered = finishedCommits.load(ordering: .acquiring)
            let ready = state.withLock { state -> [Waiter]? in
                let (now, later) = (state.waiting.filter { $0.commit <= covered }, state.waiting.filter { $0.commit > covered })
                if now.isEmpty {
                    state.draining = false
                    return nil
                }
                state.waiting = later
                return now
            }
            guard let ready else { return }
            let indexOnly = ready.filter { $0.needs == .index }, rest = ready.filter { $0.needs == .all }
            if let failure = syncing.withLock({ _ in syncIndex(covering: covered) }) {
                ready.forEach { $0.run(failure) }
                continue
            }
            indexOnly.forEach { $0.run(nil) }
            let failure = syncing.withLock { lastAll in syncOthers(covering: covered, since: &lastAll, force: !rest.isEmpty) }
            rest.forEach { $0.run(failure) }
        }
    }

    /// Both steps at once, for `finishedHere`.
    private func syncAll(covering covered: Int) -> StoreError? {
        syncing.withLock { lastAll in
            syncIndex(covering: covered) ?? syncOthers(covering: covered, since: &lastAll, force: true)
        }
    }

    /// Syncs the first file's WAL for the commits up to `covered`, and marks them durable
    /// if the other files hold nothing unsynced. Called holding `syncing`.
    private func syncIndex(covering covered: Int) -> StoreError? {
        if let failure = state.withLock({ $0.failure }) { return failure }
        if dirty.bitwiseAnd(~1, ordering: .acquiringAndReleasing).oldValue & 1 != 0, let failure = sync(0) { return failed(failure) }
        // Another file's bit clear while `syncing` is held: whoever took it synced it.
        if dirty.load(ordering: .acquiring) & ~1 == 0 { durableCommits.max(covered, ordering: .acquiringAndReleasing) }
        return nil
    }

    /// Syncs the other files' WALs, unless not `force`d and they were synced less than
    /// `auditSyncAge` ago, and marks the commits up to `covered` durable. Called holding
    /// `syncing`, after `syncIndex` for the same commits: never the audit file first.
    private func syncOthers(covering covered: Int, since lastAll: inout ContinuousClock.Instant, force: Bool) -> StoreError? {
        if let failure = state.withLock({ $0.failure }) { return failure }
        guard force || ContinuousClock.now - lastAll >= auditSyncAge else { return nil }
        let bits = dirty.bitwiseAnd(1, ordering: .acquiringAndReleasing).oldValue & ~1
        for i in descriptors.indices where bits & (1 << i) != 0 {
            if let failure = sync(i) { return failed(failure) }
        }
        lastAll = .now
        durableCommits.max(covered, ordering: .acquiringAndReleasing)
        return nil
    }

    private func failed(_ failure: StoreError) -> StoreError {
        state.withLock { $0.failure = failure }
        failed.store(true, ordering: .relaxed)
        return failure
    }

    /// A WAL is never deleted while the store's connections are open, but should one have
    /// been replaced the sync is repeated on the file now at that path. None there: SQLite
    /// removes a WAL only once it is copied into the database file and that file synced.
    private func sync(_ i: Int) -> StoreError? {
        if descriptors[i] < 0 { descriptors[i] = open(walPaths[i], O_RDWR | O_CLOEXEC) }
        if descriptors[i] < 0, errno == ENOENT { return nil }
        guard descriptors[i] >= 0, fdatasync(descriptors[i]) == 0 else {
            return .engine("could not sync \(walPaths[i]): \(String(cString: strerror(errno)))")
        }
        guard gw_file_link_count(descriptors[i]) == 0 else { return nil }
        close(descriptors[i])
        descriptors[i] = open(walPaths[i], O_RDWR | O_CLOEXEC)
        return sync(i)
    }
}
