import CSQLiteShims
import DequeModule
import Dispatch
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

    init(_ readers: [SQLiteReader]) {
        all = readers
        line = Mutex(Line(idle: Array(readers.indices.reversed())))
    }

    /// Runs `read` on an idle reader's thread, or queues it.
    func submit(_ read: @escaping Read) {
        let idle = line.withLock { line -> Int? in
            if let reader = line.idle.popLast() { return reader }
            line.waiting.append(read)
            return nil
        }
        if let idle { run(read, on: idle) }
    }

    /// `read` run on the calling thread with an idle reader (`queue.sync` on an idle
    /// serial queue does not hop), and what it returned. A short read so run costs no
    /// wake-up of a reader's thread, nor of the caller's on the way back, nor the
    /// continuation a caller waiting for another thread needs: a token lookup took a fifth
    /// to two fifths less of the node's CPU, audited or not (RESULTS.md, session 30).
    ///
    /// Only for short reads (`StudyQuery.isShort`): the caller, an event loop, serves
    /// nothing else meanwhile, so the read may not wait, not for another read (with no
    /// reader idle it runs nothing; a snapshot's expiry or release may hold the queue for
    /// microseconds) and not for the disk. Its SQLite reads refuse a page that is not in
    /// the OS's cache (CSQLiteShims, read_nowait.c); the statement then fails, and nothing
    /// of what it read is kept. In either case the answer is nil, and the caller submits
    /// the read to a reader's thread, where it may wait. Where the kernel cannot tell what
    /// would wait (tmpfs, NFS), a read here refuses every page SQLite's own cache lacks.
    /// (Session 11 ran reads on the caller's thread whether or not the reader was busy, and
    /// a pool thread blocked behind a QIDO-RS search idled a core; sessions 30 to 33 guessed
    /// at the disk from how long the last read took, RESULTS.md, session 34.)
    func readHere<T>(_ read: (SQLiteReader) -> T) -> T? {
        guard let index = line.withLock({ $0.idle.popLast() }) else { return nil }
        let reader = all[index]
        let answer = reader.queue.sync { () -> T? in
            guard gw_sqlite_nowait_begin() != 0 else { return nil }
            let answer = read(reader)
            return gw_sqlite_nowait_end() == 0 ? answer : nil
        }
        finished(index)
        return answer
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
