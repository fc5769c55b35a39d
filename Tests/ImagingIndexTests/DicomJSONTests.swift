import Foundation
import ImagingIndex
import JSONText
import RecordFixtures
import XCTest

/// The QIDO-RS study object, read back by JSONSerialization: tags ascending, empty
/// attributes as a bare VR, values where the record has them, includefield honoured.
final class DicomJSONTests: XCTestCase {
    func testStudyObjectIsDicomJSON() throws {
        var record = try StudyRecord.validate(BadRecords.good).get()
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
        var record = try StudyRecord.validate(BadRecords.good).get()
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

    /// The exact bytes of a study and a series, so that a faster way of writing them
    /// cannot change what clients get.
    func testStudyAndSeriesBytesArePinned() throws {
        var record = try StudyRecord.validate(BadRecords.good).get()
        record.patientToken = "v1:T"
        record.studyDescription = "a\"b"
        XCTAssertEqual(DicomJSON.study(record, include: ["00080080", "00081030"]), Self.pinnedStudy)
        var out = JSONWriter()
        DicomJSON.series(try XCTUnwrap(record.series?.first), of: record, to: &out)
        XCTAssertEqual(String(decoding: out.bytes, as: UTF8.self), Self.pinnedSeries)
    }

    static let pinnedStudy = #"{"00080005":{"vr":"CS","Value":["ISO_IR 192"]}"#
        + #","00080020":{"vr":"DA","Value":["20241122"]}"#
        + #","00080030":{"vr":"TM","Value":["143015.123"]}"#
        + #","00080050":{"vr":"SH","Value":["CT20241122001"]}"#
        + #","00080056":{"vr":"CS","Value":["ONLINE"]}"#
        + #","00080061":{"vr":"CS","Value":["CT","SR"]}"#
        + #","00080080":{"vr":"LO","Value":["西安市第一医院"]}"#
        + #","00080090":{"vr":"PN"}"#
        + #","00080201":{"vr":"SH","Value":["+0800"]}"#
        + #","00081030":{"vr":"LO","Value":["a\"b"]}"#
        + #","00081190":{"vr":"UR","Value":["https://pacs.hospital.example/dicomweb/studies/1.2.840.113619.2.55.3.604688119.969.1268071029.320"]}"#
        + #","00100010":{"vr":"PN"}"#
        + #","00100020":{"vr":"LO","Value":["v1:T"]}"#
        + #","00100030":{"vr":"DA"}"#
        + #","00100040":{"vr":"CS","Value":["F"]}"#
        + #","0020000D":{"vr":"UI","Value":["1.2.840.113619.2.55.3.604688119.969.1268071029.320"]}"#
        + #","00200010":{"vr":"SH"}"#
        + #","00201206":{"vr":"IS","Value":[3]}"#
        + #","00201208":{"vr":"IS","Value":[412]}}"#

    static let pinnedSeries = #"{"00080005":{"vr":"CS","Value":["ISO_IR 192"]}"#
        + #","00080060":{"vr":"CS","Value":["CT"]}"#
        + #","0008103E":{"vr":"LO"}"#
        + #","00081190":{"vr":"UR","Value":["https://pacs.hospital.example/dicomweb/studies/1.2.840.113619.2.55.3.604688119.969.1268071029.320/series/1.2.840.113619.2.55.3.1"]}"#
        + #","00180015":{"vr":"CS"}"#
        + #","0020000D":{"vr":"UI","Value":["1.2.840.113619.2.55.3.604688119.969.1268071029.320"]}"#
        + #","0020000E":{"vr":"UI","Value":["1.2.840.113619.2.55.3.1"]}"#
        + #","00200011":{"vr":"IS","Value":[2]}"#
        + #","00201209":{"vr":"IS","Value":[410]}}"#
}
