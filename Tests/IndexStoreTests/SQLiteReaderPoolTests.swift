import ChildProcess
import Dispatch
import Foundation
@testable import IndexStore
import Synchronization
import TestScratch
import XCTest

/// The readers' one line: a read never waits behind another reader's work while a reader
/// is free, each runs once, and those that wait run in the order they came.
final class SQLiteReaderPoolTests: XCTestCase {
    private func pool(_ count: Int, rows: Int = 0, in directory: String? = nil) throws -> (readers: SQLiteReaderPool, path: String) {
        let path = directory.map { $0 + "/reader-pool.sqlite" } ?? Scratch.path("reader-pool") + ".sqlite"
        do {
            let writer = try SQLiteConnection(path: path, readOnly: false)
            try writer.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (x)")
            if rows > 0 {
                try writer.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows)) "
                                + "INSERT INTO t SELECT randomblob(200) FROM n")
            }
        }
        return (SQLiteReaderPool(try (0..<count).map { i in
            SQLiteReader(db: try SQLiteConnection(path: path, readOnly: true), queue: DispatchQueue(label: "reader-pool-test.\(i)"))
        }), path)
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
        let readers = try pool(2).readers
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

    /// `readHere` runs a read on the caller's thread and returns its answer when a reader
    /// is idle; with none idle it runs nothing and returns nil (the caller then submits
    /// the read to wait in the line).
    func testReadHereRunsOnTheCallersThreadOnlyWithAReaderIdle() throws {
        let readers = try pool(1).readers
        let caller = pthread_self()
        XCTAssertEqual(readers.readHere { _ in pthread_equal(pthread_self(), caller) != 0 }, true, "not run here, on the caller's thread")
        let held = Self.holdAReader(readers)
        let ran = Atomic<Bool>(false)
        XCTAssertNil(readers.readHere { _ in ran.store(true, ordering: .relaxed) }, "a busy reader's read ran here")
        held.signal()
        let deadline = Date() + 10
        while readers.readHere({ _ in 0 }) == nil, Date() < deadline { usleep(1_000) }
        XCTAssertEqual(readers.readHere { _ in 7 }, 7)
        XCTAssertFalse(ran.load(ordering: .relaxed))
    }

    /// A read here that needs a page the OS does not hold in memory does not wait for the
    /// disk: its statement fails, `readHere` answers nil, and the same read submitted to a
    /// reader's thread answers in full. Once the pages are in memory it runs here.
    func testAReadHereRefusesToWaitForTheDisk() throws {
        let (readers, path) = try pool(1, rows: 20_000)
        try SQLiteAnswersAtOnceTests.dropFromMemory(path)
        let sum = { @Sendable (reader: SQLiteReader) -> Result<Int, StoreError> in
            reader.fresh { db throws(StoreError) in
                let s = try db.statement("SELECT count(*), sum(length(x)) FROM t")
                guard try s.step() else { return -1 }
                return (s.int(0) ?? 0) + (s.int(1) ?? 0)
            }
        }
        let full = 20_000 + 20_000 * 200
        XCTAssertNil(readers.readHere(sum), "a read here waited for the disk")
        let answered = DispatchSemaphore(value: 0)
        let there = Mutex<Result<Int, StoreError>?>(nil)
        readers.submit { reader in
            there.withLock { $0 = sum(reader) }
            answered.signal()
        }
        XCTAssertEqual(answered.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(try there.withLock { $0 }?.get(), full, "the read on a reader's thread")
        let deadline = Date() + 10
        while readers.readHere({ _ in 0 }) == nil, Date() < deadline { usleep(1_000) }
        XCTAssertEqual(try readers.readHere(sum)?.get(), full, "a warm read did not run here")
    }

    /// On a filesystem where the kernel cannot tell what would wait (tmpfs here), a read
    /// here that needs a page from the OS refuses; and that says nothing of other files:
    /// reads here of a file on another filesystem run as before. (A flag for the whole
    /// process, set by the first such file, once sent every later read to the readers.)
    func testAFileTheKernelCannotAnswerForRefusesOnlyItsOwnReads() throws {
        let mountPoint = Scratch.path("nowait-tmpfs")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try ChildProcess.run("/usr/bin/env", ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mountPoint], mergeStderr: true)
        guard mounted.status == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(mounted.stdout)") }
        defer { _ = try? ChildProcess.run("/usr/bin/env", ["umount", "-l", mountPoint]) }
        let count = { @Sendable (reader: SQLiteReader) -> Int? in
            try? reader.fresh { db throws(StoreError) in
                let s = try db.statement("SELECT count(*) FROM t")
                return try s.step() ? s.int(0) : nil
            }.get()
        }
        let onTmpfs = try pool(1, rows: 100, in: mountPoint).readers
        XCTAssertNil(onTmpfs.readHere(count), "a read here of tmpfs, which cannot refuse, was answered")
        let elsewhere = try pool(1, rows: 100).readers
        XCTAssertEqual(elsewhere.readHere(count), 100, "a read here of another filesystem was refused")
    }

    /// Many reads from many threads at once, half of them asked to run here: each runs
    /// exactly once.
    func testEveryReadRunsExactlyOnce() throws {
        let readers = try pool(3).readers
        let count = 5_000
        let runs = Mutex([Int](repeating: 0, count: count))
        let group = DispatchGroup()
        DispatchQueue.concurrentPerform(iterations: count) { read in
            group.enter()
            let run: SQLiteReaderPool.Read = { _ in
                runs.withLock { $0[read] += 1 }
                group.leave()
            }
            if read.isMultiple(of: 2), readers.readHere(run) != nil { return }
            readers.submit(run)
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(runs.withLock { $0 }, [Int](repeating: 1, count: count))
    }
}
