import Foundation
import ImagingIndex

/// The outbox table: records queued by `seq` inside the upload's transaction, read in
/// order, deleted once the national node acknowledged them.
enum SQLiteOutbox {
    static func queue(_ records: [StudyRecord], on db: SQLiteConnection, now: Int) throws(StoreError) {
        let insert = try db.statement("INSERT INTO outbox (record, created_at) VALUES (?1, ?2)")
        for record in records {
            insert.reset()
            insert.bind(1, record.jsonText)
            insert.bind(2, now)
            _ = try insert.step()
        }
    }

    static func pending(_ db: SQLiteConnection, after sequence: Int, limit: Int) throws(StoreError) -> [OutboxEntry] {
        let s = try db.statement("SELECT seq, record FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        s.bind(1, sequence)
        s.bind(2, limit)
        var out: [OutboxEntry] = []
        while try s.step() { out.append(OutboxEntry(sequence: s.int(0) ?? 0, record: s.string(1) ?? "")) }
        return out
    }

    static func acknowledge(through sequence: Int, on db: SQLiteConnection) throws(StoreError) {
        let s = try db.statement("DELETE FROM outbox WHERE seq <= ?1")
        s.bind(1, sequence)
        _ = try s.step()
    }

    static func lag(_ db: SQLiteConnection, now: Int) throws(StoreError) -> (records: Int, seconds: Int) {
        let s = try db.statement("SELECT count(*), min(created_at) FROM outbox")
        _ = try s.step()
        let count = s.int(0) ?? 0
        return (count, count == 0 ? 0 : max(0, now - (s.int(1) ?? now)))
    }
}

extension SQLiteIndexStore {
    /// Queues every study of `storageUnit` for the national node again, oldest stored
    /// first, and returns how many. For a national node that lost studies (restored from
    /// an older backup): a study sent again unchanged is not queued by its upload, so a
    /// resend no longer refills it. Runs in transactions of `chunk` studies, each its own
    /// commit, so a unit of millions neither holds the writer for long nor grows one
    /// transaction's WAL without bound; other writes go on between them. The national
    /// node takes the records as uploads, so queuing one twice is harmless.
    public func requeue(storageUnit: String, chunk: Int = 10_000) async throws(StoreError) -> Int {
        guard gathers else { throw .engine("this node gathers to no national node: nothing to queue for") }
        var queued = 0, after = 0
        while true {
            let (count, last) = try await requeueChunk(storageUnit: storageUnit, after: after, limit: max(1, chunk))
            queued += count
            guard let last else { return queued }
            after = last
        }
    }

    /// One chunk: the unit's studies with row ids after `after`, in row-id order (the
    /// table's own order, walked once over all chunks; the storage-unit index would make
    /// each chunk sort the whole unit).
    private func requeueChunk(storageUnit: String, after: Int, limit: Int) async throws(StoreError) -> (Int, last: Int?) {
        try await onWriter { writer throws(StoreError) in
            var records: [StudyRecord] = []
            var last: Int?
            try writer.transaction { () throws(StoreError) in
                let s = try writer.statement("""
                    SELECT \(SQLiteSchema.columns), id FROM studies NOT INDEXED
                    WHERE id > ?1 AND storage_unit = ?2 ORDER BY id LIMIT ?3
                    """)
                s.bind(1, after)
                s.bind(2, storageUnit)
                s.bind(3, limit)
                while try s.step() {
                    records.append(SQLiteQuery.record(s))
                    last = s.int(SQLiteSchema.columnCount)
                }
                try SQLiteOutbox.queue(records, on: writer, now: Int(Date().timeIntervalSince1970))
            }
            return (records.count, last)
        }
    }
}

/// The store's outbox (OutboxStore): read on the readers, acknowledged in a group commit.
extension SQLiteIndexStore {
    public func pending(after sequence: Int, limit: Int) async throws(StoreError) -> [OutboxEntry] {
        try await read { db throws(StoreError) in try SQLiteOutbox.pending(db, after: sequence, limit: limit) }
    }

    public func outboxEpoch() async throws(StoreError) -> String {
        try await read { db throws(StoreError) in
            let s = try db.statement("SELECT value FROM node_meta WHERE key = 'outbox_epoch'")
            _ = try s.step()
            return s.string(0) ?? ""
        }
    }

    public func lag() async throws(StoreError) -> (records: Int, seconds: Int) {
        try await read { db throws(StoreError) in try SQLiteOutbox.lag(db, now: Int(Date().timeIntervalSince1970)) }
    }

    public func acknowledge(through sequence: Int) async throws(StoreError) {
        try await groupWrite { db throws(StoreError) in try SQLiteOutbox.acknowledge(through: sequence, on: db) }
    }
}
