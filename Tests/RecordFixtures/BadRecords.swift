import Foundation
import ImagingIndex

/// An index record valid in every field, and a table of bad values, one field each, with
/// the code each must be refused with: the acceptance's table of bad records, checked
/// against the validator (ImagingIndexTests) and through the upload API in one batch
/// with good records (GatewayServerTests).
public enum BadRecords {
    public static let token = "v1:" + Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    public static let storage = "91610000MA6TG0001A"

    public static var good: [String: JSONValue] {
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

    /// (field, value or nil to remove it, expected code)
    public static let cases: [(String, JSONValue?, String)] = [
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
}
