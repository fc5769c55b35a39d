import Foundation
import ImagingIndex
import JSONText
import XCTest

/// The QIDO-RS study object, read back by JSONSerialization: tags ascending, empty
/// attributes as a bare VR, values where the record has them, includefield honoured.
final class DicomJSONTests: XCTestCase {
    func testStudyObjectIsDicomJSON() throws {
        var record = try StudyRecord.validate(RecordValidationTests.good).get()
        record.studyDescription = "胸部CT \"平扫\"\t"
        let text = DicomJSON.study(record, include: ["00081030"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: [String: Any]])
        let pieces: [Substring] = text.split(separator: "\"")
        let tags = zip(pieces, pieces.dropFirst()).filter { $1.hasPrefix(":{") }.map { String($0.0) }
        XCTAssertEqual(tags, tags.sorted())
        XCTAssertEqual(Set(tags), Set(object.keys))
        XCTAssertEqual(object["00100010"]?.count, 1, "PatientName is a bare VR")
        XCTAssertEqual(object["00100010"]?["vr"] as? String, "PN")
        XCTAssertEqual(object["00100020"]?["Value"] as? [String], [record.patientToken])
        XCTAssertEqual(object["00080061"]?["Value"] as? [String], ["CT", "SR"])
        XCTAssertEqual(object["00201206"]?["Value"] as? [Int], [3])
        XCTAssertEqual(object["00081030"]?["Value"] as? [String], [record.studyDescription!])
        XCTAssertNil(object["00080080"], "InstitutionName only with includefield")
        XCTAssertEqual(object["00081190"]?["Value"] as? [String], [record.retrieveURL + "/studies/" + record.studyInstanceUID])
    }

    /// The retrieve URLs are written in pieces: one slash between the base and `studies`
    /// whether or not the base ends in one, and the series' URL under the study's.
    func testRetrieveURLsJoinWithOneSlash() throws {
        var record = try StudyRecord.validate(RecordValidationTests.good).get()
        let base = record.retrieveURL.hasSuffix("/") ? String(record.retrieveURL.dropLast()) : record.retrieveURL
        let study = base + "/studies/" + record.studyInstanceUID
        for url in [base, base + "/"] {
            record.retrieveURL = url
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(DicomJSON.study(record, include: []).utf8)) as? [String: [String: Any]])
            XCTAssertEqual(object["00081190"]?["Value"] as? [String], [study])
            var out = JSONWriter()
            DicomJSON.series(SeriesRecord(seriesInstanceUID: "1.2.3.4", modality: "CT"), of: record, to: &out)
            let series = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.bytes)) as? [String: [String: Any]])
            XCTAssertEqual(series["00081190"]?["Value"] as? [String], [study + "/series/1.2.3.4"])
        }
    }
}
