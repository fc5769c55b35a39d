import Foundation
@testable import IndexStore
import TestScratch
import XCTest

/// What SQLite plans for the searches a clinic makes most, on an empty store of the
/// current schema: the plan, not the time, so that a column or an index changed without
/// thought fails here rather than in a benchmark.
final class SQLiteQueryPlanTests: XCTestCase {
    private var db: SQLiteConnection!

    override func setUpWithError() throws {
        let path = Scratch.path("index") + ".sqlite"
        _ = try SQLiteIndexStore(path: path, readers: 1)
        db = try SQLiteConnection(path: path, readOnly: true)
    }

    private func plan(_ q: StudyQuery) throws -> [String] {
        let plan = try db.statement("EXPLAIN QUERY PLAN " + SQLiteQuery.sql(for: q).text)
        var steps: [String] = []
        while try plan.step() { steps.append(plan.string(3) ?? "") }
        db.resetAll()
        return steps
    }

    private var byPatient: StudyQuery { StudyQuery(patientToken: IndexStoreContract.token(1)) }

    private var byPatientAndDates: StudyQuery {
        var q = byPatient
        q.dateFrom = "20240101"
        q.dateTo = "20241231"
        return q
    }

    /// A patient's studies, with or without dates, and one modality over dates come out of
    /// their index already in the store's order: a sort there opened a temporary B-tree per
    /// query (RESULTS.md, session 20).
    func testFrequentSearchesSortNothing() throws {
        var byModality = StudyQuery()
        byModality.modalities = ["CT"]
        byModality.dateFrom = "20241101"
        byModality.dateTo = "20241130"
        var paged = byPatient
        paged.offset = 10
        for q in [paged, byPatientAndDates, byModality] {
            let steps = try plan(q)
            XCTAssertFalse(steps.isEmpty)
            XCTAssertFalse(steps.contains { $0.contains("TEMP B-TREE") }, "\(steps)")
        }
    }

    /// A patient's studies, with or without dates and modalities, are read from the token
    /// index alone and never from the table: the index carries every column the answer
    /// has (RESULTS.md, session 35). A column added to the table and not to that index
    /// fails here.
    func testAPatientsStudiesAreReadFromTheTokenIndexAlone() throws {
        var byPatientAndModality = byPatient
        byPatientAndModality.modalities = ["CT", "MR"]
        for q in [byPatient, byPatientAndDates, byPatientAndModality] {
            let steps = try plan(q)
            XCTAssertTrue(steps.contains { $0.hasPrefix("SEARCH s USING COVERING INDEX studies_by_token") }, "\(steps)")
        }
    }
}
