import Dispatch
import Foundation
@testable import IndexStore
import Synchronization
import TestScratch
import XCTest

/// The readers' one line: a read never waits behind another reader's work while a reader
/// is free, each runs once, and those that wait run in the order they came.
final class SQLiteReaderPoolTests: XCTestCase {
    private func pool(_ count: Int, slowHere: Duration = .milliseconds(1), backOff: Duration = .seconds(1),
                      inBlocks: @escaping @Sendable () -> Int = { 0 }) throws -> SQLiteReaderPool {
        let path = Scratch.path("reader-pool") + ".sqlite"
        try SQLiteConnection(path: path, readOnly: false).exec("PRAGMA journal_mode = WAL; CREATE TABLE t (x)")
        return SQLiteReaderPool(try (0..<count).map { i in
            SQLiteReader(db: try SQLiteConnection(path: path, readOnly: true), queue: DispatchQueue(label: "reader-pool-test.\(i)"))
        }, slowHere: slowHere, backOff: backOff, inBlocks: inBlocks)
    }

    /// Submits a read that holds its reader until the semaphore returned is signalled, and
    /// returns once it is running.
    private static func holdAReader(_ readers: SQLiteReaderPool) -> DispatchSemaphore {
        let held = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        readers.submit { _ in
            holding.signal()
            held.wait()
        }
        holding.wait()
        return held
    }

    /// With one reader held up, every later read runs on the other, in order, while the
    /// first is still held: dealt out in turn, every second one would wait behind it.
    func testReadsGoToTheFreeReaderInTheOrderTheyCame() throws {
        let readers = try pool(2)
        let held = DispatchSemaphore(value: 0)
        let holding = DispatchSemaphore(value: 0)
        let ran = Mutex<[(read: Int, reader: ObjectIdentifier)]>([])
        let done = DispatchSemaphore(value: 0)
        readers.submit { reader in
            holding.signal()
            held.wait()
            ran.withLock { $0.append((0, ObjectIdentifier(reader))) }
            done.signal()
        }
        holding.wait()
        for read in 1...20 {
            readers.submit { reader in
                ran.withLock { $0.append((read, ObjectIdentifier(reader))) }
                done.signal()
            }
        }
        for _ in 1...20 { XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "a read waited behind the held reader") }
        held.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        let order = ran.withLock { $0 }
        XCTAssertEqual(order.map(\.read), Array(1...20) + [0])
        XCTAssertEqual(Set(order.dropLast().map(\.reader)).count, 1, "one reader took every read while the other was held")
        XCTAssertNotEqual(order.first?.reader, order.last?.reader)
    }

    /// A short read with a reader free runs on the caller's thread, before `submit`
    /// returns; with none free it waits in the line and the caller goes on at once.
    func testAReadHereRunsOnTheCallersThreadOnlyWhenAReaderIsFree() throws {
        let readers = try pool(1)
        let caller = pthread_self()
        let ranOn = Mutex<[pthread_t]>([])
        readers.submit(here: true) { _ in ranOn.withLock { $0.append(pthread_self()) } }
        XCTAssertEqual(ranOn.withLock { $0.count }, 1, "the read had not run when submit returned")
        XCTAssertTrue(ranOn.withLock { $0.first.map { pthread_equal($0, caller) != 0 } ?? false })

        let held = Self.holdAReader(readers)
        let done = DispatchSemaphore(value: 0)
        readers.submit(here: true) { _ in
            ranOn.withLock { $0.append(pthread_self()) }
            done.signal()
        }
        XCTAssertEqual(ranOn.withLock { $0.count }, 1, "the caller waited for the busy reader")
        held.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertTrue(ranOn.withLock { $0.last.map { pthread_equal($0, caller) == 0 } ?? false }, "a read that waited ran on the caller's thread")
    }

    /// A read here that took long while its thread read from a disk (a cold cache) sends
    /// the reads after it to the readers' threads until the back-off ends; then they run
    /// here again. A read as slow with no disk read behind it (a thread that waited for a
    /// core) changes nothing, though the thread read from the disk before it.
    func testAfterASlowReadHereFromDiskTheNextGoToTheReadersForAWhile() throws {
        let disk = Atomic<Int>(0)
        let readers = try pool(1, slowHere: .milliseconds(20), backOff: .milliseconds(300)) { disk.load(ordering: .relaxed) }
        let caller = pthread_self()
        func ranHere(sleeping ms: UInt32 = 0, fromDisk: Bool = false) -> Bool {
            let ranOn = Mutex<pthread_t?>(nil)
            let done = DispatchSemaphore(value: 0)
            readers.submit(here: true) { _ in
                if fromDisk { disk.add(8, ordering: .relaxed) }
                usleep(ms * 1_000)
                ranOn.withLock { $0 = pthread_self() }
                done.signal()
            }
            XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
            return ranOn.withLock { $0.map { pthread_equal($0, caller) != 0 } ?? false }
        }
        XCTAssertTrue(ranHere(sleeping: 40), "a read with a reader free ran elsewhere")
        XCTAssertTrue(ranHere(), "a slow read with no disk read behind it sent the next elsewhere")
        disk.add(8, ordering: .relaxed)
        XCTAssertTrue(ranHere(sleeping: 40))
        XCTAssertTrue(ranHere(), "a disk read before a slow read counted as the slow read's")
        XCTAssertTrue(ranHere(sleeping: 40, fromDisk: true))
        XCTAssertFalse(ranHere(), "a read right after a slow one from the disk ran here")
        usleep(400_000)
        XCTAssertTrue(ranHere(), "reads did not come back here after the back-off")
        XCTAssertTrue(ranHere())
    }

    /// `readHere` runs a read on the caller's thread and returns its answer when a reader
    /// is idle; with none idle, or reads backed off, it runs nothing and returns nil (the
    /// caller then submits the read to wait in the line).
    func testReadHereRunsOnlyWithAReaderIdleAndNoBackOff() throws {
        let disk = Atomic<Int>(0)
        let readers = try pool(1, slowHere: .milliseconds(20), backOff: .milliseconds(300)) { disk.load(ordering: .relaxed) }
        let caller = pthread_self()
        XCTAssertEqual(readers.readHere { _ in pthread_equal(pthread_self(), caller) != 0 }, true, "not run here, on the caller's thread")
        let held = Self.holdAReader(readers)
        let ran = Atomic<Bool>(false)
        XCTAssertNil(readers.readHere { _ in ran.store(true, ordering: .relaxed) }, "a busy reader's read ran here")
        held.signal()
        let deadline = Date() + 10
        while readers.readHere({ _ in 0 }) == nil, Date() < deadline { usleep(1_000) }
        XCTAssertEqual(readers.readHere { _ in
            disk.add(8, ordering: .relaxed)
            usleep(40_000)
            return 7
        }, 7)
        XCTAssertNil(readers.readHere { _ in ran.store(true, ordering: .relaxed) }, "a read ran here during the back-off")
        XCTAssertFalse(ran.load(ordering: .relaxed))
    }

    /// The disk reads behind a back-off are the reading thread's own: another thread's (the
    /// checkpointer's, say) do not count as the caller's.
    func testTheDiskReadsCountedAreTheCallingThreadsOwn() throws {
        let path = Scratch.path("in-blocks")
        let size = 4 << 20
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var data = [UInt8](repeating: 7, count: size)
        XCTAssertEqual(write(fd, &data, size), size)
        XCTAssertEqual(fsync(fd), 0)
        XCTAssertEqual(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0, "the file's pages dropped from the OS's cache")
        let mine = SQLiteReaderPool.threadInBlocks()
        let theirs = Mutex((before: 0, after: 0))
        let done = DispatchSemaphore(value: 0)
        Thread {
            let before = SQLiteReaderPool.threadInBlocks()
            var buffer = [UInt8](repeating: 0, count: size)
            _ = pread(fd, &buffer, size, 0)
            theirs.withLock { $0 = (before, SQLiteReaderPool.threadInBlocks()) }
            done.signal()
        }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        let (before, after) = theirs.withLock { $0 }
        guard after > before else { throw XCTSkip("the read came from memory here; nothing to tell apart") }
        XCTAssertEqual(SQLiteReaderPool.threadInBlocks(), mine, "another thread's disk reads counted as this one's")
    }

    /// Many reads from many threads at once, half of them asked to run here: each runs
    /// exactly once.
    func testEveryReadRunsExactlyOnce() throws {
        let readers = try pool(3)
        let count = 5_000
        let runs = Mutex([Int](repeating: 0, count: count))
        let group = DispatchGroup()
        DispatchQueue.concurrentPerform(iterations: count) { read in
            group.enter()
            readers.submit(here: read.isMultiple(of: 2)) { _ in
                runs.withLock { $0[read] += 1 }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(runs.withLock { $0 }, [Int](repeating: 1, count: count))
    }
}
