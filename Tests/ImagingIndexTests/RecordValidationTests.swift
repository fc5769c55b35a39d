import Foundation
import ImagingIndex
import RecordFixtures
import XCTest

/// Every rule of the index record, one bad value at a time, against a record that is
/// otherwise valid: each must be refused with its code on its field, and only that.
final class RecordValidationTests: XCTestCase {
    func testTheGoodRecordIsAccepted() throws {
        let record = try StudyRecord.validate(BadRecords.good).get()
        XCTAssertEqual(record.modalitiesInStudy, ["CT", "SR"])
        XCTAssertEqual(record.numberOfStudyRelatedInstances, 412)
        var minimal = BadRecords.good
        for key in ["accessionNumber", "studyTime", "timezoneOffset", "bodyPartExamined", "studyDescription", "examItemCode",
                    "numberOfStudyRelatedSeries", "numberOfStudyRelatedInstances", "patientSex", "patientBirthYear",
                    "institutionName", "institutionCode", "instanceAvailability", "nhsaIndexCode"] {
            minimal[key] = nil
        }
        XCTAssertNoThrow(try StudyRecord.validate(minimal).get(), "optional fields are optional")
    }

    func testEachBadValueIsRefusedWithItsCode() {
        XCTAssertGreaterThanOrEqual(BadRecords.cases.count, 40)
        for (field, value, code) in BadRecords.cases {
            var record = BadRecords.good
            record[field] = value
            switch StudyRecord.validate(record) {
            case .success:
                XCTFail("\(field)=\(String(describing: value)) was accepted; expected \(code)")
            case .failure(let rejection):
                XCTAssertEqual(rejection.errors.map(\.code), [code], "\(field)=\(String(describing: value))")
                XCTAssertEqual(rejection.errors.first?.field, field)
            }
        }
    }

    func testSeriesErrorsNameTheirPlace() {
        var record = BadRecords.good
        record["series"] = .array([
            .object(["seriesInstanceUID": .string("1.2.3"), "modality": .string("CT")]),
            .object(["seriesInstanceUID": .string("1.2.3"), "modality": .string("XX"), "PatientName": .string("x")]),
        ])
        guard case .failure(let r) = StudyRecord.validate(record) else { return XCTFail("accepted") }
        XCTAssertEqual(r.errors.map(\.field), ["series[1].modality", "series[1].PatientName", "series[1].seriesInstanceUID"])
        XCTAssertEqual(r.codes, ["invalid-modality", "plain-identifier", "duplicate-series"])
    }

    /// The hand-written JSON of a record is what JSONDecoder reads back as the same record.
    func testRecordJSONRoundTrips() throws {
        var record = try StudyRecord.validate(BadRecords.good).get()
        record.studyDescription = "quote \" backslash \\ newline \n tab \t control \u{01}\u{1f} 中文"
        let decoded = try JSONDecoder().decode(StudyRecord.self, from: Data(record.jsonText.utf8))
        XCTAssertEqual(decoded, record)
    }

    func testMessagesNeverEchoTheValue() {
        var record = BadRecords.good
        record["accessionNumber"] = .string("11010519491231002X")
        guard case .failure(let r) = StudyRecord.validate(record) else { return XCTFail() }
        XCTAssertFalse(r.errors.contains { $0.message.contains("11010519491231002X") })
    }

    /// The last URL found valid is remembered; an invalid one after it is still refused.
    func testURLsAreCheckedEachTimeTheyDiffer() {
        func codes(_ url: String) -> [String] {
            var object = BadRecords.good
            object["retrieveURL"] = .string(url)
            guard case .failure(let rejection) = StudyRecord.validate(object) else { return [] }
            return rejection.errors.map(\.code)
        }
        XCTAssertEqual(codes("https://pacs.example/dicomweb"), [])
        XCTAssertEqual(codes("https:///nohost"), ["invalid-url"])
        XCTAssertEqual(codes("https://pacs.example/dicom web"), ["invalid-url"])
        XCTAssertEqual(codes("https://pacs.example/dicomweb"), [])
        XCTAssertEqual(codes("http://pacs.example/dicomweb"), ["invalid-url"])
    }

    /// Lengths are in characters: 60 Chinese characters (180 UTF-8 bytes) fit a 64-character field.
    func testLengthsCountCharactersNotBytes() throws {
        var object = BadRecords.good
        object["studyDescription"] = .string(String(repeating: "胸部平扫", count: 15))
        guard case .success(let record) = StudyRecord.validate(object) else { return XCTFail("refused 60 characters") }
        XCTAssertEqual(record.studyDescription?.count, 60)
        object["studyDescription"] = .string(String(repeating: "胸", count: 65))
        guard case .failure(let rejection) = StudyRecord.validate(object) else { return XCTFail("took 65 characters") }
        XCTAssertEqual(rejection.errors.map(\.code), ["too-long"])
    }

    func testCodes() {
        XCTAssertTrue(Codes.isUSCC("91350100M000100Y43"), "the GB 32100 example")
        XCTAssertTrue(Codes.isUSCC("12610000435200100J"))
        XCTAssertFalse(Codes.isUSCC("91350100M000100Y44"))
        XCTAssertTrue(Codes.isDate("20240229"))
        XCTAssertFalse(Codes.isDate("20230229"))
        XCTAssertTrue(Codes.isUID("0.1.2"))
        XCTAssertTrue(Codes.isUID("2.25.329800735698586629295641978511506172918"))
        XCTAssertTrue(Codes.isTime("2359"))
        for valid in ["14", "1430", "143000", "235960", "143000.1", "143000.123456"] {
            XCTAssertTrue(Codes.isTime(valid), valid)
        }
        for invalid in ["", "1", "143", "240000", "236000", "235961", "14300a", "1430.5", "143000.", "143000.1234567",
                        "143000.1.2", ".123", "１４３０"] {
            XCTAssertFalse(Codes.isTime(invalid), invalid)
        }
        XCTAssertTrue(Codes.isTimezoneOffset("-1200"))
        XCTAssertTrue(Codes.isPatientToken(BadRecords.token))
        XCTAssertTrue(Codes.isRegion("000000") == false)
    }
}
