import DequeModule
import Dispatch
import Glibc
import Synchronization

/// The readers behind one line of waiting reads: a read goes to an idle reader, the one
/// that finished last (its page cache is the warmest), or else waits for whichever
/// reader finishes first.
///
/// Why not each read to the next reader in turn: a reader's queue is serial, so reads
/// dealt out in turn wait behind the reads dealt to their own reader even while another
/// reader is idle, and a QIDO-RS search holds a reader ten times as long as a token
/// lookup does. One line for all readers is the bank's queue against the supermarket's:
/// the same work, a shorter tail.
///
/// What must stay true: every read submitted runs exactly once, in the order submitted
/// when it had to wait; and a reader takes its next read in a block of its own on its
/// queue, so that what else runs there (`SQLiteReader.release`, a snapshot's expiry) is
/// never held off by a long line of reads.
final class SQLiteReaderPool: Sendable {
    typealias Read = @Sendable (SQLiteReader) -> Void

    let all: [SQLiteReader]
    private struct Line {
        var waiting = Deque<Read>()
        /// Indexes into `all` of the readers with nothing to do, the last to finish last.
        var idle: [Int]
    }
    private let line: Mutex<Line>

    /// A read run here that took longer than `slowHere` while its thread read from the
    /// disk waited for the disk: on a warm cache a token lookup takes tens
    /// of microseconds. For `backOff` after it, reads go to the readers' threads, so that a
    /// cold cache (after a restart, or an index larger than memory) does not hold every
    /// connection of the caller's loop behind each disk read: on a 10 M node just started
    /// with the OS's cache dropped, `/healthz` beside the lookups waited a median 2.9 ms for
    /// its loop, against 0.2–0.3 ms with the back-off or every read on a reader's thread
    /// (RESULTS.md, session 30). A slow read with no disk read behind it is a thread that
    /// waited for a core, which two busy cores make common: backing off for those cost
    /// warm lookups 2–15 %. The disk reads counted are the thread's own during that read:
    /// the process's included the checkpointer's, which under audited lookups set off four
    /// back-offs in 12 s (RESULTS.md, session 31); and those since the thread's last slow
    /// read included any one disk read in the seconds before, which on a warm 1 M node set
    /// off five back-offs in 14 s, a third of the time with every lookup on a reader's
    /// thread (RESULTS.md, session 32). Counting costs a `getrusage` a read, some 0.2 µs.
    private let slowHere: UInt64
    private let backOff: UInt64
    /// Until when (uptime nanoseconds) no read runs here.
    private let notHereUntil = Atomic<UInt64>(0)
    /// The calling thread's blocks read from a disk so far.
    private let inBlocks: @Sendable () -> Int

    init(_ readers: [SQLiteReader], slowHere: Duration = .milliseconds(1), backOff: Duration = .seconds(1),
         inBlocks: @escaping @Sendable () -> Int = SQLiteReaderPool.threadInBlocks) {
        all = readers
        line = Mutex(Line(idle: Array(readers.indices.reversed())))
        self.slowHere = Self.nanoseconds(slowHere)
        self.backOff = Self.nanoseconds(backOff)
        self.inBlocks = inBlocks
    }

    /// Blocks the calling thread has read from a disk: misses of the OS's cache, not
    /// copies from it.
    static func threadInBlocks() -> Int {
        var usage = rusage()
        getrusage(rusageThread, &usage)
        return usage.ru_inblock
    }

    /// Linux's RUSAGE_THREAD, which Glibc's module declares only under _GNU_SOURCE.
    private static let rusageThread: __rusage_who_t = 1

    private static func nanoseconds(_ d: Duration) -> UInt64 {
        UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000)
    }

    /// Runs `read` on an idle reader, or queues it. With `here`, an idle reader runs it on
    /// the calling thread (`queue.sync` on an idle serial queue does not hop), so a short
    /// read costs no wake-up of a reader's thread, nor of the caller's on the way back: a
    /// token lookup took a fifth to two fifths less of the node's CPU, audited or not
    /// (RESULTS.md, session 30). Only for short reads (`StudyQuery.isShort`): the caller, an
    /// event loop, serves nothing else meanwhile. A read that finds every reader busy waits
    /// in the line as any other, so the caller never waits for another read; it may wait
    /// for a snapshot's expiry or release on that queue, which take microseconds. (Session 11
    /// ran reads on the caller's thread whether or not the reader was busy, and a pool
    /// thread blocked behind a QIDO-RS search idled a core.)
    func submit(here: Bool = false, _ read: @escaping Read) {
        let idle = line.withLock { line -> Int? in
            if let reader = line.idle.popLast() { return reader }
            line.waiting.append(read)
            return nil
        }
        guard let idle else { return }
        let start = here ? DispatchTime.now().uptimeNanoseconds : 0
        guard here, start >= notHereUntil.load(ordering: .relaxed) else { return run(read, on: idle) }
        runHere(read, on: idle, since: start)
    }

    /// `read` run here as `submit(here: true)` runs it, and what it returned; nil, with
    /// nothing run, when no reader is idle or reads are backed off. The caller that gets
    /// its answer here needs no continuation, nor the hop back to its executor that
    /// resuming one costs.
    func readHere<T>(_ read: (SQLiteReader) -> T) -> T? {
        let start = DispatchTime.now().uptimeNanoseconds
        guard start >= notHereUntil.load(ordering: .relaxed), let idle = line.withLock({ $0.idle.popLast() }) else { return nil }
        return runHere(read, on: idle, since: start)
    }

    /// Runs `read` on the calling thread with reader `index`, taken idle, and gives it back.
    private func runHere<T>(_ read: (SQLiteReader) -> T, on index: Int, since start: UInt64) -> T {
        let reader = all[index]
        let blocks = inBlocks()
        let result = reader.queue.sync { read(reader) }
        let end = DispatchTime.now().uptimeNanoseconds
        if end - start > slowHere, inBlocks() > blocks { notHereUntil.store(end + backOff, ordering: .relaxed) }
        finished(index)
        return result
    }

    private func run(_ read: @escaping Read, on index: Int) {
        let reader = all[index]
        reader.queue.async { [self] in
            read(reader)
            finished(index)
        }
    }

    /// Reader `index` takes the next waiting read, on its own queue, or goes idle.
    private func finished(_ index: Int) {
        let next = line.withLock { line -> Read? in
            if let next = line.waiting.popFirst() { return next }
            line.idle.append(index)
            return nil
        }
        if let next { run(next, on: index) }
    }
}
