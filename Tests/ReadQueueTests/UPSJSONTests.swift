import ImagingIndex
import ReadQueue
import XCTest

/// PS3.18 DICOM JSON in and out of the read queue, and the JSON parser under it.
final class UPSJSONTests: XCTestCase {
    static func body(_ extra: String = "", input: String = "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.156.7\"]}") -> [UInt8] {
        Array("{\"00741200\":{\"vr\":\"CS\",\"Value\":[\"STAT\"]},\"00404021\":{\"vr\":\"SQ\",\"Value\":[{\(input)}]}\(extra)}".utf8)
    }

    func testACreateBodyIsReadAndEachFaultNamesItsAttribute() throws {
        let asked = try UPSJSON.create(Self.body(",\"00404011\":{\"vr\":\"DT\",\"Value\":[\"20261124093000+0800\"]}"))
        XCTAssertEqual(asked.priority, .high, "STAT is HIGH")
        XCTAssertEqual(asked.studyInstanceUID, "1.2.156.7")
        XCTAssertEqual(asked.expectedCompletion, UPSJSON.dateTime("20261124013000+0000"))
        func fault(_ body: [UInt8]) -> String {
            do {
                _ = try UPSJSON.create(body)
                return "accepted"
            } catch {
                return error.attribute
            }
        }
        XCTAssertEqual(fault(Self.body(",\"00081195\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]}")), "00081195")
        XCTAssertEqual(fault(Self.body(input: "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"01.2\"]}")), "00404021.0020000D")
        XCTAssertEqual(fault(Self.body(",\"00404011\":{\"vr\":\"DT\",\"Value\":[\"2026-11-24\"]}")), "00404011")
        XCTAssertEqual(fault(Self.body(",\"00100020\":{\"vr\":\"LO\",\"Value\":[\"610102199001011234\"]}")), "00100020",
                       "a Patient ID that is not a token is refused")
        XCTAssertEqual(fault(Array("[1,2]".utf8)), "")
    }

    func testDateTimesRoundTripAndRenderInUTC() {
        let ms: Int64 = 1_764_000_000_123
        XCTAssertEqual(UPSJSON.dateTime(UPSJSON.dateTime(ms: ms)), ms / 1000 * 1000)
        XCTAssertEqual(UPSJSON.dateTime(ms: 0), "19700101000000+0000")
        XCTAssertNil(UPSJSON.dateTime("20261324000000"), "month 13")
    }

    func testTheParserKeepsBooleansNumbersAndNestingApart() {
        let v = JSONValue.parse(Array("{\"a\":[true,0,1,2.5,null,\"x\",{\"b\":false}]}".utf8))
        XCTAssertEqual(v, .object(["a": .array([.bool(true), .number(0), .number(1), .number(2.5), .null, .string("x"),
                                                .object(["b": .bool(false)])])]))
        XCTAssertNil(JSONValue.parse(Array("{\"a\":".utf8)))
        XCTAssertNil(JSONValue.parseObject(Array("[1]".utf8)))
        XCTAssertEqual(JSONValue.parse(Array("\"\\u00e9\"".utf8)), .string("é"))
    }
}
