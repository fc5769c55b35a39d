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
/// What must stay true:
/// - No answer before the sync that covers its commit. Commits are numbered (`begin`)
///   before COMMIT and reported (`finished`) after it; a pass covers the commits finished
///   before it began, since an `fdatasync` makes durable whatever was written before it.
/// - A commit becomes visible to readers before it is durable. So every read through the
///   store waits (`whenDurable`) for the commits begun before its query ended: no one is
///   answered with data a crash could still take back.
/// - The index's WAL is synced before the audit file's, as a FULL commit of both would,
///   so a crash after the first sync keeps an upload with its leaves in `audit_pending`
///   (SQLiteAudit) to put back. The one order this cannot promise: if the kernel writes the
///   audit file's frames out on its own before the index's are synced and the machine then
///   loses power, the log keeps a leaf for a change that was neither kept nor acknowledged.
/// - Once a sync fails, no later one is trusted (Linux may drop the pages that failed and
///   report success next time): every waiter from then on gets the error until restart.
final class SQLiteSyncer: @unchecked Sendable {
    private struct Waiter {
        let commit: Int
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
    /// Held through a whole sync (`syncAll`), on this queue or the writer's thread: a sync
    /// that took a commit's `dirty` bits marks it durable only once its syncs are done,
    /// and anyone else covering that commit waits for them.
    private let syncing = Mutex(())
    private let queue = DispatchQueue(label: "index-store.syncer")

    /// `walPaths`: the WAL of each file the writer commits to, index first.
    init(walPaths: [String]) {
        self.walPaths = walPaths
        descriptors = walPaths.map { open($0, O_RDWR | O_CLOEXEC) }
    }

    deinit { descriptors.forEach { if $0 >= 0 { close($0) } } }

    /// The number of the commit the writer is about to make. One writer: each commit
    /// begins after the one before it was reported finished.
    func begin() -> Int { begun.add(1, ordering: .acquiringAndReleasing).newValue }

    /// The writer's commit `number` returned; `wrote[i]` says whether it wrote frames to
    /// `walPaths[i]`. `then` runs once it is durable (nil) or cannot be (the error).
    func finished(_ number: Int, wrote: [Bool], then: @escaping @Sendable (StoreError?) -> Void) {
        markFinished(number, wrote: wrote)
        add(Waiter(commit: number, run: then))
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
            return add(Waiter(commit: number, run: then))
        }
        then(syncing.withLock { _ in syncAll(covering: number) })
        // A reader may be waiting for this very commit, queued when it had not finished:
        // no pass would otherwise come for it.
        add(nil)
    }

    /// Whether commit `number` is durable.
    func isDurable(_ number: Int) -> Bool { durableCommits.load(ordering: .acquiring) >= number }

    /// Runs `body` once every commit begun so far is durable: for a reader that has just
    /// queried, that is every commit it could have seen.
    func whenDurable(_ body: @escaping @Sendable (StoreError?) -> Void) {
        let needed = begun.load(ordering: .acquiring)
        if durableCommits.load(ordering: .acquiring) >= needed, !failed.load(ordering: .relaxed) { return body(nil) }
        add(Waiter(commit: needed, run: body))
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
    /// running stays for the pass after the writer reports it.
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
            let failure = syncing.withLock { _ in syncAll(covering: covered) }
            ready.forEach { $0.run(failure) }
        }
    }

    private func syncAll(covering covered: Int) -> StoreError? {
        if let failure = state.withLock({ $0.failure }) { return failure }
        let bits = dirty.exchange(0, ordering: .acquiringAndReleasing)
        for i in descriptors.indices where bits & (1 << i) != 0 {
            if let failure = sync(i) {
                state.withLock { $0.failure = failure }
                failed.store(true, ordering: .relaxed)
                return failure
            }
        }
        durableCommits.max(covered, ordering: .acquiringAndReleasing)
        return nil
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
        var status = stat()
        guard fstat(descriptors[i], &status) == 0, status.st_nlink == 0 else { return nil }
        close(descriptors[i])
        descriptors[i] = open(walPaths[i], O_RDWR | O_CLOEXEC)
        return sync(i)
    }
}
