import Foundation
import ImagingIndex
import IndexStore
import XCTest

/// The tests every `SupervisionStore` must pass (see its documentation). An
/// implementation's test case subclasses this and opens a store from `makeStore(at:)`: a
/// new empty one when `location` is nil, else the one at `location` again.
class SupervisionStoreContract: XCTestCase {
    typealias Store = IndexStore & SupervisionStore

    func makeStore(at location: String?) throws -> (store: Store, location: String)? { nil }

    func open(at location: String? = nil) throws -> (store: Store, location: String) {
        guard let s = try makeStore(at: location) else { throw XCTSkip("the contract runs in subclasses") }
        return s
    }

    static let clinic = "91610000MA6TG0001A"

    static func token(_ p: Int) -> String { "v1:" + String(repeating: "S", count: 41) + "\(p % 10)A" }

    static func study(_ p: Int, _ uid: String, date: String, modality: String = "CT", bodyPart: String = "CHEST",
                      unit: String = "12610000435200100J") -> StudyRecord {
        var s = StudyRecord(patientToken: token(p), studyInstanceUID: uid, studyDate: date, modalitiesInStudy: [modality],
                            storageUnit: unit, retrieveURL: "https://pacs.example/dicomweb", region: "610100")
        s.bodyPartExamined = bodyPart
        return s
    }

    static func check(_ p: Int, day: String, at ms: Int64, candidate: Bool, bodyPart: String? = "CHEST",
                      institution: String = clinic) -> PriorCheck {
        PriorCheck(checkedAt: ms, day: day, untilDay: CivilDay(day)!.adding(days: 30).text, institution: institution, region: "610000",
                   patientToken: token(p), modality: "CT", bodyPart: bodyPart, examItem: nil, windowDays: 30,
                   repeatCandidate: candidate, priors: candidate ? 1 : 0)
    }

    /// Studies by storage unit and month, checks and candidates by institution and month,
    /// each with its distinct patients; a repeat is a matching study indexed after a
    /// candidate check and dated inside its window — not the prior, not another body
    /// part, not one dated past the window, not one indexed before the check and sent
    /// again unchanged after it, counted once however many checks it follows.
    func testEachColumnCountsWhatItsDocumentationSays() async throws {
        let (store, _) = try open()
        _ = try await store.upsert([Self.study(1, "1.1", date: "20261101"), Self.study(2, "1.2", date: "20261102"),
                                    Self.study(2, "1.3", date: "20261003", modality: "MR"),
                                    Self.study(2, "1.4", date: "20261112", bodyPart: "HEAD")], audit: nil)
        let indexedSecond = Int64(Date().timeIntervalSince1970)
        let later = (indexedSecond + 1) * 1000
        try await store.record(Self.check(1, day: "20261110", at: later, candidate: true), audit: nil)
        try await store.record(Self.check(1, day: "20261111", at: later, candidate: true), audit: nil)
        try await store.record(Self.check(2, day: "20261110", at: later, candidate: true, bodyPart: "HEAD"), audit: nil)
        try await store.record(Self.check(3, day: "20261112", at: later, candidate: false), audit: nil)
        try await store.record(Self.check(4, day: "20261001", at: later, candidate: false, institution: "12610000435200100J"), audit: nil)
        while Int64(Date().timeIntervalSince1970) <= indexedSecond { try await Task.sleep(for: .milliseconds(50)) }
        _ = try await store.upsert([Self.study(1, "2.1", date: "20261115"),                      // a repeat of both checks
                                    Self.study(1, "2.2", date: "20261115", bodyPart: "ABDOMEN"),  // another body part
                                    Self.study(1, "2.3", date: "20270101"),                       // past the window
                                    Self.study(2, "2.4", date: "20261120", bodyPart: "HEAD"),    // a repeat
                                    Self.study(2, "1.4", date: "20261112", bodyPart: "HEAD")], audit: nil)  // resent

        let rows = try await store.supervision(SupervisionQuery(fromMonth: "202610", toMonth: "202611"))
        func row(_ institution: String, _ month: String) -> SupervisionRow? {
            rows.first { $0.institution == institution && $0.month == month }
        }
        let unit = "12610000435200100J"
        XCTAssertEqual(row(unit, "202611")?.studiesIndexed, SupervisionCount(6, patients: 2), "\(rows)")
        XCTAssertEqual(row(unit, "202610")?.studiesIndexed, SupervisionCount(1, patients: 1))
        XCTAssertEqual(row(unit, "202610")?.priorChecks, SupervisionCount(1, patients: 1))
        XCTAssertEqual(row(Self.clinic, "202611")?.priorChecks, SupervisionCount(4, patients: 3))
        XCTAssertEqual(row(Self.clinic, "202611")?.repeatCandidates, SupervisionCount(3, patients: 2))
        XCTAssertEqual(row(Self.clinic, "202611")?.repeatStudies, SupervisionCount(2, patients: 2))
        XCTAssertNil(rows.first { $0.month == "202701" }, "outside the months asked")
        let narrowed = try await store.supervision(SupervisionQuery(fromMonth: "202610", toMonth: "202611", region: "440000"))
        XCTAssertEqual(narrowed, [], "another region")
    }

    /// A query that records its check: the check sees the query's results and is stored.
    func testAQueryRecordsTheCheckItMakesOfItsResults() async throws {
        let (store, _) = try open()
        _ = try await store.upsert([Self.study(5, "5.1", date: "20261101"), Self.study(6, "6.1", date: "20261101")], audit: nil)
        let found = try await store.query(StudyQuery(patientToken: Self.token(5)), audit: nil) { found in
            Self.check(5, day: "20261105", at: 0, candidate: !found.isEmpty)
        }
        XCTAssertEqual(found.map(\.studyInstanceUID), ["5.1"])
        let rows = try await store.supervision(SupervisionQuery(fromMonth: "202611", toMonth: "202611"))
        XCTAssertEqual(rows.first { $0.institution == Self.clinic }?.repeatCandidates, SupervisionCount(1, patients: 1))
    }

    /// Checks are durable on return and go with their token's key version when it is purged.
    func testChecksSurviveARestartAndArePurgedWithTheirKey() async throws {
        let (store, location) = try open()
        try await store.record(Self.check(1, day: "20261110", at: 0, candidate: true), audit: nil)
        let reopened = try open(at: location).store
        let query = SupervisionQuery(fromMonth: "202611", toMonth: "202611")
        let kept = try await reopened.supervision(query)
        XCTAssertEqual(kept.first?.priorChecks, SupervisionCount(1, patients: 1))
        _ = try await reopened.purgeTokens(keyVersion: 1)
        let purged = try await reopened.supervision(query)
        XCTAssertEqual(purged, [])
    }
}
