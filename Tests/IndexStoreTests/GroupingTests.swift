import AuditLog
import Foundation
@testable import IndexStore
import TestScratch
import XCTest

/// What a group commit takes, and in what order (SQLiteIndexStore.drain).
final class GroupingTests: XCTestCase {
    /// Uploads and lookups waiting together: the lookups are committed first, so their
    /// leaves come before the uploads' though they arrived after them; and uploads past
    /// `recordsPerGroup` go in a later transaction, so their leaves come last.
    func testLookupsGoBeforeTheUploadsWaitingWithThem() async throws {
        let store = try SQLiteIndexStore(path: Scratch.path("grouping") + ".sqlite", readers: 1)
        func event(_ operation: String, _ counter: String) -> AuditEvent {
            AuditEvent(requestID: operation, actor: "urn:imaging-gateway:hospital:H1", eventID: .query, action: .read,
                       outcome: .success, operation: operation, count: 1, counter: counter)
        }
        let writerFree = DispatchSemaphore(value: 0)
        store.writeQueue.async { writerFree.wait() }
        let size = SQLiteIndexStore.recordsPerGroup / 2 + 1
        let first = Task {
            try await store.upsert((0..<size).map { IndexStoreContract.record($0, patient: $0) }, audit: event("upload-1", "records"))
        }
        try await Task.sleep(for: .milliseconds(50))
        let second = Task {
            try await store.upsert((size..<2 * size).map { IndexStoreContract.record($0, patient: $0) }, audit: event("upload-2", "records"))
        }
        try await Task.sleep(for: .milliseconds(50))
        let lookup = Task { try await store.append([event("lookup", "lookups")]) }
        try await Task.sleep(for: .milliseconds(50))
        func commits() -> Int { (0...).first { !store.syncer.isDurable($0 + 1) } ?? 0 }
        let before = commits()
        writerFree.signal()
        _ = try await first.value
        _ = try await second.value
        try await lookup.value
        let order = try await store.events(from: 0, limit: 10).map { leaf in
            ["lookup", "upload-1", "upload-2"].first { leaf.text.contains("\"\($0)\"") } ?? "?"
        }
        XCTAssertEqual(order, ["lookup", "upload-1", "upload-2"])
        XCTAssertEqual(commits() - before, 3, "the lookups, then each upload, in transactions of their own")
    }
}
