import Foundation

/// The upward outbox of a regional node: every record it stores is also queued for the
/// national node, in the same transaction, so nothing stored is ever left ungathered and
/// nothing is sent that was not stored.
///
/// What must stay true (tested in Tests/IndexStoreTests): entries come out in the order
/// they were stored (so in order per storage unit); `acknowledge(through:)` removes
/// exactly the entries up to that number, durably; entries survive a restart; numbers
/// are never reused, even after the outbox was empty.
public protocol OutboxStore: Sendable {
    /// Up to `limit` entries numbered after `sequence` (0: from the oldest), oldest first.
    func pending(after sequence: Int, limit: Int) async throws(StoreError) -> [OutboxEntry]
    func acknowledge(through sequence: Int) async throws(StoreError)
    /// How far behind the gathering is: entries waiting, and the age of the oldest.
    func lag() async throws(StoreError) -> (records: Int, seconds: Int)
    /// Drawn once per database: with the entries' numbers, it names a batch uniquely
    /// even across a wiped and recreated data directory.
    func outboxEpoch() async throws(StoreError) -> String
}

public struct OutboxEntry: Sendable, Equatable {
    public let sequence: Int
    /// The record's JSON, as the upload API takes it.
    public let record: String
}
