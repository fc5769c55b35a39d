import Foundation
import ImagingIndex
@testable import IndexStore
import JSONText
import TestScratch
import XCTest

/// `IndexStore.queryAtOnce` in the SQLite store: what is answered on the caller's thread,
/// an event loop's, and what is left to a reader's.
final class SQLiteAnswersAtOnceTests: XCTestCase {
    private let write: @Sendable (any StudyFields, inout JSONWriter) -> Void = { $0.writeNative(to: &$1) }

    /// With a reader idle and every commit durable, a patient's studies are answered at
    /// once, as `query` answers them; a search over dates, which may read much, is not.
    func testAPatientsStudiesAreAnsweredAtOnceWhenNothingNeedWait() async throws {
        let s = try SQLiteIndexStore(path: Scratch.path("index") + ".sqlite", readers: 1)
        _ = try await s.upsert([IndexStoreContract.record(1), IndexStoreContract.record(2), IndexStoreContract.record(3, patient: 2)])
        let patient = StudyQuery(patientToken: IndexStoreContract.token(1))
        let atOnce = try XCTUnwrap(s.queryAtOnce(patient, writing: write), "not answered at once")
        let waited = try await s.query(patient, writing: write, audit: nil)
        XCTAssertEqual(atOnce, waited)
        XCTAssertEqual(atOnce.count, 2)
        var dates = StudyQuery()
        dates.dateFrom = "20240101"
        XCTAssertNil(s.queryAtOnce(dates, writing: write), "a search over dates was answered on the caller's thread")
    }

    /// A patient's studies on pages the OS no longer holds in memory are not answered at
    /// once, which would hold the caller's loop while the disk reads them; `query` answers
    /// them from a reader's thread, and once they are in memory they are answered at once.
    func testStudiesOnTheDiskAreNotAnsweredAtOnce() async throws {
        let path = Scratch.path("index") + ".sqlite"
        do {
            let s = try SQLiteIndexStore(path: path, readers: 1)
            _ = try await s.upsert((1...2_000).map { IndexStoreContract.record($0, patient: $0 % 200) })
        }
        let s = try SQLiteIndexStore(path: path, readers: 1)
        try Self.dropFromMemory(path)
        let patient = StudyQuery(patientToken: IndexStoreContract.token(7))
        XCTAssertTrue(s.queryAtOnce(patient, writing: write) == nil, "answered at once from the disk")
        let waited = try await s.query(patient, writing: write, audit: nil)
        XCTAssertEqual(waited.count, 10)
        let deadline = Date() + 10
        var atOnce = s.queryAtOnce(patient, writing: write)
        while atOnce == nil, Date() < deadline {
            usleep(1_000)
            atOnce = s.queryAtOnce(patient, writing: write)
        }
        XCTAssertEqual(atOnce, waited, "not answered at once once in memory")
    }

    /// Drops the file's pages from the OS's cache, and skips the test where its first page
    /// stayed. That is asked without reading it (mincore(2) on a mapping): a read, even one
    /// that refuses to wait, starts the disk.
    static func dropFromMemory(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(fsync(fd), 0)
        XCTAssertEqual(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0, "the file's pages dropped from the OS's cache")
        let size = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw XCTSkip("cannot map the file to see what the OS holds")
        }
        defer { munmap(map, size) }
        var resident: UInt8 = 0
        guard mincore(map, size, &resident) == 0, resident & 1 == 0 else {
            throw XCTSkip("the file stayed in memory despite POSIX_FADV_DONTNEED")
        }
    }
}
