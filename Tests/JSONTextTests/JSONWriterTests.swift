import Foundation
import JSONText
import XCTest

/// The writer owns its buffer and grows it by hand, so what it writes is read back here by
/// an independent parser (Foundation's), from a writer started at its smallest capacity:
/// every value below makes it grow, one byte at a time and by whole strings at once.
final class JSONWriterTests: XCTestCase {
    func testWhatItWritesParsesBackToTheSameValuesAcrossGrowth() throws {
        var texts = ["", "plain", "quote \" and backslash \\", "é 中文 🩻", String(repeating: "x", count: 5_000)]
        texts.append(String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }))
        for n in [1, 15, 16, 17, 31, 33, 300] { texts.append(String(repeating: "\u{1}\"a", count: n)) }
        let numbers = [0, -1, 7, Int.max, Int.min]
        var out = JSONWriter(capacity: 0)
        out.beginObject()
        out.key("texts")
        out.array(texts) { $0.string($1) }
        out.key("numbers")
        out.array(numbers) { $0.int($1) }
        out.field("absent", nil as String?)
        out.field("present", "yes")
        out.field("count", 3)
        out.key("embedded")
        out.value(json: Array(#"{"a":[1,2,{"b":null}]}"#.utf8))
        out.key("empty")
        out.beginArray()
        out.endArray()
        out.endObject()

        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.bytes)) as? [String: Any])
        XCTAssertEqual(parsed["texts"] as? [String], texts)
        XCTAssertEqual(parsed["numbers"] as? [Int], numbers)
        XCTAssertNil(parsed["absent"])
        XCTAssertEqual(parsed["present"] as? String, "yes")
        XCTAssertEqual(parsed["count"] as? Int, 3)
        let embedded = try XCTUnwrap(parsed["embedded"] as? [String: Any])
        XCTAssertEqual((embedded["a"] as? [Any])?.count, 3)
        XCTAssertEqual((parsed["empty"] as? [Any])?.count, 0)
    }

    /// The scan skips 8-byte words that need no escape: a byte that does must be found
    /// at every position of a word and of the tail after the last whole word, and a byte
    /// next to one (space, '!', '#', '[', ']', DEL, a multi-byte character) never escaped.
    func testEveryEscapeIsFoundAtEveryPositionAndNoOtherByteIsEscaped() {
        let specials: [Character] = ["\u{0}", "\u{1f}", "\n", "\"", "\\", " ", "!", "#", "[", "]", "\u{7f}", "é"]
        for length in 1...40 {
            for position in 0..<length {
                for special in specials {
                    var text = String(repeating: "7", count: length)
                    let at = text.index(text.startIndex, offsetBy: position)
                    text.replaceSubrange(at...at, with: String(special))
                    var out = JSONWriter(capacity: 0)
                    out.string(text)
                    XCTAssertEqual(String(decoding: out.bytes, as: UTF8.self), Self.reference(text), "length \(length) at \(position)")
                }
            }
        }
    }

    /// RFC 8259 §7, written independently of the writer: the two-character escapes where
    /// the writer uses them, \u00XX for the other controls, every other character as is.
    private static func reference(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    func testControlsAreEscapedByNameOrAsUnicode() {
        XCTAssertEqual(jsonString("a\n\r\t\u{1}\u{1f}\"\\"), #""a\n\r\t\u0001\u001f\"\\""#)
        XCTAssertEqual(jsonString("中"), "\"中\"")
    }
}
