import DequeModule
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

    func submit(_ read: @escaping Read) {
        let idle = line.withLock { line -> Int? in
            if let reader = line.idle.popLast() { return reader }
            line.waiting.append(read)
            return nil
        }
        if let idle { run(read, on: idle) }
    }

    private func run(_ read: @escaping Read, on index: Int) {
        let reader = all[index]
        reader.queue.async { [self] in
            read(reader)
            let next = line.withLock { line -> Read? in
                if let next = line.waiting.popFirst() { return next }
                line.idle.append(index)
                return nil
            }
            if let next { run(next, on: index) }
        }
    }
}
