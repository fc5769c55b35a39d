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
