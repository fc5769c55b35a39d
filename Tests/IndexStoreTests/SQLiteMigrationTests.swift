import Foundation
import ImagingIndex
@testable import IndexStore
import TestScratch
import XCTest

/// The schema's migrations: a file an older build left is brought up to date, and its
/// studies come back as the current build stores them.
final class SQLiteMigrationTests: XCTestCase {
    /// What an open has still to run is told before it runs, so that a node can say why it
    /// is slow to answer: rebuilding the token index took 5.2 s at 1.2 M studies.
    func testPendingMigrationsAreToldBeforeTheyRun() async throws {
        var told: [Int] = []
        _ = try SQLiteIndexStore(path: Scratch.path("index") + ".sqlite", readers: 1) { told.append($0) }
        XCTAssertEqual(told, [], "a new file is not upgraded")
        let (path, _) = try await stored([IndexStoreContract.record(1)], thenRewoundBy: Self.beforeTheSeriesFlag + """
            PRAGMA user_version = \(SQLiteSchema.migrations.count - 1);
            """)
        _ = try SQLiteIndexStore(path: path, readers: 1) { told.append($0) }
        XCTAssertEqual(told, [1])
        _ = try SQLiteIndexStore(path: path, readers: 1) { told.append($0) }
        XCTAssertEqual(told, [1], "nothing left to run")
    }

    /// A file from before the study's time joined the (modality, date) key: the migration
    /// gives every study's modality rows its time ('' for none), and a search by one
    /// modality then keeps the store's order.
    func testTheModalityKeyGainsTheStudyTimeOnMigration() async throws {
        var records = [IndexStoreContract.record(1), IndexStoreContract.record(2, modalities: ["CT", "MR"]), IndexStoreContract.record(3)]
        records[2].studyTime = nil
        let (path, db) = try await stored(records, thenRewoundBy: Self.beforeTheSeriesFlag + """
            CREATE TABLE old_shape (
                modality TEXT NOT NULL, study_date TEXT NOT NULL,
                study_id INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
                PRIMARY KEY (modality, study_date, study_id)) WITHOUT ROWID;
            INSERT INTO old_shape SELECT modality, study_date, study_id FROM study_modalities;
            DROP TABLE study_modalities;
            ALTER TABLE old_shape RENAME TO study_modalities;
            CREATE INDEX study_modalities_by_study ON study_modalities (study_id);
            PRAGMA user_version = \(SQLiteSchema.migrations.firstIndex { $0.contains("study_modalities_by_time") }!);
            """)
        XCTAssertThrowsError(try db.statement("SELECT study_time FROM study_modalities"), "the old shape has no study_time")
        let store = try SQLiteIndexStore(path: path, readers: 1)
        let migrated = try db.statement(
            "SELECT group_concat(modality || '@' || study_time || '#' || study_id, ' ') FROM (SELECT * FROM study_modalities ORDER BY study_id, modality)")
        XCTAssertTrue(try migrated.step())
        XCTAssertEqual(migrated.string(0), "CT@010000#1 CT@020000#2 MR@020000#2 CT@#3")
        db.resetAll()
        var q = StudyQuery()
        q.modalities = ["CT"]
        let found = try await store.query(q).map(\.studyInstanceUID)
        XCTAssertEqual(found, ["1.2.156.1.2", "1.2.156.1.1", "1.2.156.1.3"])
    }

    /// A file from before the study's time joined the token index: the migration rebuilds
    /// it, and a patient's studies keep the store's order (date, time with none last, then
    /// the study stored latest).
    func testTheTokenIndexGainsTheStudyTimeOnMigration() async throws {
        var records = [IndexStoreContract.record(3), IndexStoreContract.record(1), IndexStoreContract.record(2), IndexStoreContract.record(4), IndexStoreContract.record(5, date: "20241121")]
        records[1].studyTime = "090000"
        records[2].studyTime = "090000"
        records[3].studyTime = nil
        let (path, db) = try await stored(records, thenRewoundBy: Self.beforeTheSeriesFlag + """
            DROP INDEX studies_by_token;
            CREATE INDEX studies_by_token ON studies (patient_token, study_date);
            PRAGMA user_version = \(SQLiteSchema.migrations.firstIndex { $0.contains("(patient_token, study_date, study_time)") }!);
            """)
        let store = try SQLiteIndexStore(path: path, readers: 1)
        let index = try db.statement("SELECT sql FROM sqlite_master WHERE name = 'studies_by_token'")
        XCTAssertTrue(try index.step())
        XCTAssertTrue(index.string(0)?.contains("studies (\n    patient_token, study_date, study_time, id,") ?? false, index.string(0) ?? "")
        db.resetAll()
        let found = try await store.query(StudyQuery(patientToken: IndexStoreContract.token(1))).map(\.studyInstanceUID)
        XCTAssertEqual(found, ["1.2.156.1.2", "1.2.156.1.1", "1.2.156.1.3", "1.2.156.1.4", "1.2.156.1.5"])
    }

    /// A file from before the token index held every column: a study's series are
    /// flagged from what it holds, and a patient's studies come back with them.
    func testTheSeriesAreFlaggedWhenTheTokenIndexCoversTheRest() async throws {
        let records = [IndexStoreContract.record(10), IndexStoreContract.record(11)]
        XCTAssertNotNil(records[0].series)
        let (path, db) = try await stored(records, thenRewoundBy: Self.beforeTheSeriesFlag + """
            PRAGMA user_version = \(SQLiteSchema.migrations.firstIndex { $0.contains("has_series") }!);
            """)
        let store = try SQLiteIndexStore(path: path, readers: 1)
        let flags = try db.statement("SELECT group_concat(has_series, ' ') FROM (SELECT has_series FROM studies ORDER BY id)")
        XCTAssertTrue(try flags.step())
        XCTAssertEqual(flags.string(0), "1 0")
        db.resetAll()
        let found = try await store.query(StudyQuery(patientToken: IndexStoreContract.token(1)))
        XCTAssertEqual(found, records.reversed())
    }

    /// What the migration that gave the token index every column (and `has_series`)
    /// undoes, for a test that rewinds a file to an earlier schema: the migrations after
    /// the version it sets run again, and a column cannot be added twice.
    static let beforeTheSeriesFlag = """
        DROP INDEX studies_by_token;
        ALTER TABLE studies DROP COLUMN has_series;
        CREATE INDEX studies_by_token ON studies (patient_token, study_date, study_time);

        """

    /// A new store's file holding `records`, closed, then turned back into an older build's
    /// file by `sql` (which sets the schema version it rewinds to).
    private func stored(_ records: [StudyRecord], thenRewoundBy sql: String) async throws -> (String, SQLiteConnection) {
        let path = Scratch.path("index") + ".sqlite"
        var store: SQLiteIndexStore? = try SQLiteIndexStore(path: path, readers: 1)
        _ = try await store!.upsert(records)
        store = nil
        let db = try SQLiteConnection(path: path, readOnly: false)
        try db.exec(sql)
        return (path, db)
    }
}
