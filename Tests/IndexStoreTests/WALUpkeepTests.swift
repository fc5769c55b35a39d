import AuditLog
import Foundation
@testable import IndexStore
import Synchronization
import TestScratch
import XCTest

/// How the writer keeps the index's WAL short without making lookups wait for it
/// (SQLiteIndexStore+WAL).
final class WALUpkeepTests: XCTestCase {
    private static func lookup(_ id: String) -> AuditEvent {
        AuditEvent(requestID: id, actor: "clinic", eventID: .query, action: .read, outcome: .success,
                   operation: "lookup", count: 1, counter: "lookups")
    }

    /// While uploads are held for a restart, lookups are committed and answered and the
    /// upload waits; a hold that no restart ends lapses after `longestHold`, so a WAL that
    /// cannot restart never stops uploads for good.
    func testLookupsGoOnWhileUploadsAreHeldAndAHoldLapses() async throws {
        let store = try SQLiteIndexStore(path: Scratch.path("wal-upkeep") + ".sqlite", readers: 1)
        let lapse = Duration.seconds(1)
        store.writeQueue.sync { store.uploadsHeldSince = .now - SQLiteIndexStore.longestHold + lapse }
        let started = ContinuousClock.now
        let stored = Atomic<Bool>(false)
        let upload = Task {
            _ = try await store.upsert([IndexStoreContract.record(1, patient: 1)])
            stored.store(true, ordering: .relaxed)
        }
        for n in 0..<5 { try await store.append([Self.lookup("lookup-\(n)")]) }
        XCTAssertFalse(stored.load(ordering: .relaxed), "the upload went in while held")
        XCTAssertLessThan(ContinuousClock.now - started, lapse, "the lookups waited for the hold")
        try await upload.value
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, lapse - .milliseconds(50), "the upload did not wait")
        let found = try await store.query(StudyQuery(patientToken: IndexStoreContract.record(1, patient: 1).patientToken))
        XCTAssertEqual(found.count, 1)
    }

    /// A store opened on the files a stopped node left, its WAL still full (as a SIGKILL or
    /// a stop right after an ingest leaves it), copies that WAL in and empties it before
    /// anyone reads, and finds every study it held.
    func testAStoreOpensWithTheWALItFoundCopiedInAndEmptied() async throws {
        let path = Scratch.path("wal-at-open") + ".sqlite"
        let running = try SQLiteIndexStore(path: path, readers: 1)
        let records = (1...200).map { IndexStoreContract.record($0, patient: $0) }
        _ = try await running.upsert(records)
        let copy = Scratch.path("wal-at-open-copy") + ".sqlite"
        for (from, to) in [(path, copy), (SQLiteIndexStore.auditPath(for: path), SQLiteIndexStore.auditPath(for: copy))] {
            for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: from + suffix, toPath: to + suffix) }
        }
        let walSize = { (file: String) in (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? -1 }
        XCTAssertGreaterThan(try walSize(copy + "-wal"), 0, "the copy's WAL held the upload")
        let reopened = try SQLiteIndexStore(path: copy, readers: 1)
        XCTAssertEqual(try walSize(copy + "-wal"), 0)
        let count = try await reopened.count()
        XCTAssertEqual(count, 200)
        let found = try await reopened.query(StudyQuery(patientToken: records[99].patientToken))
        XCTAssertEqual(found, [records[99]])
    }
}
