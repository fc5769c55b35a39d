import Foundation
import ImagingIndex
import IndexStore
import JSONText
import XCTest

/// A study's series in the IndexStore contract: they come back with the study however it
/// is found, and follow its re-uploads. (The SQLite store reads a patient's studies from
/// an index that holds a flag for the series, not the series themselves.)
extension IndexStoreContract {
    func testAStudysSeriesFollowItsUpdatesHoweverItIsFound() async throws {
        let s = try store()
        let withSeries = Self.record(10, date: "20241002")
        let without = Self.record(11, date: "20241001")
        XCTAssertNotNil(withSeries.series)
        XCTAssertNil(without.series)
        _ = try await s.upsert([withSeries, without])
        var byUID = StudyQuery()
        byUID.studyInstanceUIDs = [withSeries.studyInstanceUID, without.studyInstanceUID]
        var byPatientAndModality = StudyQuery(patientToken: Self.token(1))
        byPatientAndModality.modalities = ["CT"]
        let queries = [StudyQuery(patientToken: Self.token(1)), byPatientAndModality, byUID]
        for q in queries {
            let found = try await s.query(q)
            XCTAssertEqual(found, [withSeries, without], "as uploaded: \(q)")
        }
        var dropped = withSeries
        dropped.series = nil
        var added = without
        added.series = withSeries.series.map { $0.map { var x = $0; x.seriesInstanceUID = "1.2.156.1.11.1"; return x } }
        let outcomes = try await s.upsert([dropped, added])
        XCTAssertEqual(outcomes, [.updated, .updated])
        for q in queries {
            let found = try await s.query(q)
            XCTAssertEqual(found, [dropped, added], "re-uploaded: \(q)")
            if let atOnce = s.queryAtOnce(q, writing: { $0.writeNative(to: &$1) }) {
                var expected = JSONWriter()
                expected.array(found) { $1.writeNative(to: &$0) }
                XCTAssertEqual(String(decoding: atOnce.json, as: UTF8.self), String(decoding: expected.bytes, as: UTF8.self))
            }
        }
    }
}
