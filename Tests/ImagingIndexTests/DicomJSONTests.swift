import Foundation
import ImagingIndex
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
}
