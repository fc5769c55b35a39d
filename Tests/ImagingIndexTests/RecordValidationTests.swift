import Foundation
import ImagingIndex
import XCTest

/// Every rule of the index record, one bad value at a time, against a record that is
/// otherwise valid: each must be refused with its code on its field, and only that.
final class RecordValidationTests: XCTestCase {
    static let token = "v1:" + Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    static let storage = "91610000MA6TG0001A"

    static var good: [String: JSONValue] {
        [
            "patientToken": .string(token),
            "studyInstanceUID": .string("1.2.840.113619.2.55.3.604688119.969.1268071029.320"),
            "accessionNumber": .string("CT20241122001"),
            "studyDate": .string("20241122"),
            "studyTime": .string("143015.123"),
            "timezoneOffset": .string("+0800"),
            "modalitiesInStudy": .array([.string("CT"), .string("SR")]),
            "bodyPartExamined": .string("CHEST"),
            "studyDescription": .string("胸部CT平扫"),
            "examItemCode": .string("230100001"),
            "numberOfStudyRelatedSeries": .number(3),
            "numberOfStudyRelatedInstances": .number(412),
            "patientSex": .string("F"),
            "patientBirthYear": .number(1968),
            "institutionName": .string("西安市第一医院"),
            "institutionCode": .string(storage),
            "storageUnit": .string(storage),
            "retrieveURL": .string("https://pacs.hospital.example/dicomweb"),
            "instanceAvailability": .string("ONLINE"),
            "region": .string("610100"),
            "nhsaIndexCode": .string("\(token)-202411221430-000000000-0000000000000-\(storage)"),
            "series": .array([.object(["seriesInstanceUID": .string("1.2.840.113619.2.55.3.1"), "modality": .string("CT"),
                                       "seriesNumber": .number(2), "numberOfSeriesRelatedInstances": .number(410)])]),
        ]
    }

    func testTheGoodRecordIsAccepted() throws {
        let record = try StudyRecord.validate(Self.good).get()
        XCTAssertEqual(record.modalitiesInStudy, ["CT", "SR"])
        XCTAssertEqual(record.numberOfStudyRelatedInstances, 412)
        var minimal = Self.good
        for key in ["accessionNumber", "studyTime", "timezoneOffset", "bodyPartExamined", "studyDescription", "examItemCode",
                    "numberOfStudyRelatedSeries", "numberOfStudyRelatedInstances", "patientSex", "patientBirthYear",
                    "institutionName", "institutionCode", "instanceAvailability", "nhsaIndexCode"] {
            minimal[key] = nil
        }
        XCTAssertNoThrow(try StudyRecord.validate(minimal).get(), "optional fields are optional")
    }

    /// (field, value or nil to remove it, expected code)
    static let cases: [(String, JSONValue?, String)] = [
        ("patientToken", nil, "missing-field"),
        ("patientToken", .string(""), "missing-field"),
        ("patientToken", .string("110101199003077777"), "invalid-token"),
        ("patientToken", .string("v1:abc"), "invalid-token"),
        ("patientToken", .string("v01:" + String(repeating: "A", count: 43)), "invalid-token"),
        ("patientToken", .string("v1:" + String(repeating: "A", count: 42) + "B"), "invalid-token"),
        ("patientToken", .number(5), "wrong-type"),
        ("studyInstanceUID", nil, "missing-field"),
        ("studyInstanceUID", .string("1.2.3.04"), "invalid-uid"),
        ("studyInstanceUID", .string("1.2..3"), "invalid-uid"),
        ("studyInstanceUID", .string("1.2.3."), "invalid-uid"),
        ("studyInstanceUID", .string("1.2.abc"), "invalid-uid"),
        ("studyInstanceUID", .string("110105194912310021"), "invalid-uid"),
        ("studyInstanceUID", .string("1." + String(repeating: "2", count: 63)), "too-long"),
        ("accessionNumber", .string("ACC-0123456789ABCDEF"), "too-long"),
        ("accessionNumber", .string("11010519491231002X"), "plain-identifier"),
        ("studyDate", nil, "missing-field"),
        ("studyDate", .string("20240230"), "invalid-date"),
        ("studyDate", .string("2024-11-22"), "too-long"),
        ("studyDate", .string("18991231"), "invalid-date"),
        ("studyTime", .string("250000"), "invalid-time"),
        ("studyTime", .string("1430.5"), "invalid-time"),
        ("timezoneOffset", .string("+1500"), "invalid-timezone"),
        ("timezoneOffset", .string("0800"), "invalid-timezone"),
        ("modalitiesInStudy", nil, "missing-field"),
        ("modalitiesInStudy", .array([]), "wrong-type"),
        ("modalitiesInStudy", .array([.string("CAT")]), "invalid-modality"),
        ("modalitiesInStudy", .string("CT"), "wrong-type"),
        ("bodyPartExamined", .string("CHEST AND ABDOMEN X"), "too-long"),
        ("studyDescription", .string("复查 12345678901234567890123456"), "plain-identifier"),
        ("examItemCode", .array([]), "wrong-type"),
        ("numberOfStudyRelatedSeries", .number(-1), "invalid-value"),
        ("numberOfStudyRelatedInstances", .number(1.5), "invalid-value"),
        ("numberOfStudyRelatedInstances", .string("412"), "wrong-type"),
        ("patientSex", .string("X"), "invalid-value"),
        ("patientBirthYear", .number(1850), "invalid-value"),
        ("institutionName", .string("医院 11010519491231002X 门诊"), "plain-identifier"),
        ("institutionCode", .string("91610000MA6TG0001B"), "invalid-uscc"),
        ("storageUnit", nil, "missing-field"),
        ("storageUnit", .string("91610000MA6TG0001"), "invalid-uscc"),
        ("storageUnit", .string("9161000OMA6TG0001A"), "invalid-uscc"),
        ("retrieveURL", nil, "missing-field"),
        ("retrieveURL", .string("http://pacs.example/dicomweb"), "invalid-url"),
        ("retrieveURL", .string("https:///nohost"), "invalid-url"),
        ("retrieveURL", .string("https://pacs.example/q?id=11010519491231002X"), "plain-identifier"),
        ("instanceAvailability", .string("MAYBE"), "invalid-value"),
        ("region", nil, "missing-field"),
        ("region", .string("991000"), "invalid-region"),
        ("region", .string("61010"), "invalid-region"),
        ("nhsaIndexCode", .string("12345678901234567890123456-202411221430-000000000-0000000000000-91610000MA6TG0001A"),
         "plain-identifier"),
        ("nhsaIndexCode", .string("\(token)-202411221430-000000000-0000000000000"), "invalid-index-code"),
        ("nhsaIndexCode", .string("\(token)-202413221430-000000000-0000000000000-\(storage)"), "invalid-index-code"),
        ("nhsaIndexCode", .string("\(token)-202411221430-00000000a-0000000000000-\(storage)"), "invalid-index-code"),
        ("nhsaIndexCode", .string("\(token)-202411221430-000000000-0000000000000-91110000100000000R"), "invalid-index-code"),
        ("nhsaIndexCode", .string("v2:other-202411221430-000000000-0000000000000-\(storage)"), "invalid-index-code"),
        ("PatientName", .string("张三"), "plain-identifier"),
        ("patient_id", .string("P0001"), "plain-identifier"),
        ("idNumber", .string("x"), "plain-identifier"),
        ("00100020", .string("x"), "plain-identifier"),
        ("birthDate", .string("19680101"), "plain-identifier"),
        ("favouriteColour", .string("blue"), "unknown-field"),
        ("series", .string("none"), "wrong-type"),
    ]

    func testEachBadValueIsRefusedWithItsCode() {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 40)
        for (field, value, code) in Self.cases {
            var record = Self.good
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
        var record = Self.good
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
        var record = try StudyRecord.validate(Self.good).get()
        record.studyDescription = "quote \" backslash \\ newline \n tab \t control \u{01}\u{1f} 中文"
        let decoded = try JSONDecoder().decode(StudyRecord.self, from: Data(record.jsonText.utf8))
        XCTAssertEqual(decoded, record)
    }

    func testMessagesNeverEchoTheValue() {
        var record = Self.good
        record["accessionNumber"] = .string("11010519491231002X")
        guard case .failure(let r) = StudyRecord.validate(record) else { return XCTFail() }
        XCTAssertFalse(r.errors.contains { $0.message.contains("11010519491231002X") })
    }

    /// The last URL found valid is remembered; an invalid one after it is still refused.
    func testURLsAreCheckedEachTimeTheyDiffer() {
        func codes(_ url: String) -> [String] {
            var object = Self.good
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
        var object = Self.good
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
        XCTAssertTrue(Codes.isPatientToken(Self.token))
        XCTAssertTrue(Codes.isRegion("000000") == false)
    }
}
