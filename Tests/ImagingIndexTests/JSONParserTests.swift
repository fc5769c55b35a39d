import Foundation
@testable import ImagingIndex
import XCTest

/// `JSONValue.parse` against Foundation's JSONSerialization as the reference: the same
/// texts accepted, the same values, over hand-picked cases and thousands of mutations.
/// Where the reference is laxer than RFC 8259 (a trailing comma; a NUL byte, where it
/// stops reading) this parser refuses, and the tests say so. Numbers are compared to a
/// few units in the last place: the reference rounds some long decimals 1–2 ULP off
/// (123456789.012345678 among them), where this parser agrees with strtod and CPython.
final class JSONParserTests: XCTestCase {
    /// JSONSerialization's answer as a JSONValue; nil when it refuses the text.
    static func reference(_ bytes: [UInt8]) -> JSONValue? {
        guard let any = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else { return nil }
        return convert(any)
    }

    private static func convert(_ any: Any) -> JSONValue? {
        if let o = any as? [String: Any] {
            var out: [String: JSONValue] = [:]
            for (k, v) in o {
                guard let value = convert(v) else { return nil }
                out[k] = value
            }
            return .object(out)
        }
        if let a = any as? [Any] {
            var out: [JSONValue] = []
            for v in a {
                guard let value = convert(v) else { return nil }
                out.append(value)
            }
            return .array(out)
        }
        if let s = any as? String { return .string(s) }
        if any is NSNull { return .null }
        if let n = any as? NSNumber { return String(cString: n.objCType) == "c" ? .bool(n.boolValue) : .number(n.doubleValue) }
        return nil
    }

    static let valid = [
        #"{"a":1,"b":[true,false,null],"c":"x","d":-0.5e-3,"e":{"f":[]},"g":{}}"#,
        #"  [ 1 , 2.25 , -3 , 1E2 , 0 , 123456789012345678 , 1.5e+300 ]  "#,
        #""plain""#, "42", "-0", "true", "null", "[]", "{}",
        #"{"esc":"q\"b\\s\/n\nr\rt\tb\bf\fu\u00e9\u4e2d\ud83d\ude00"}"#,
        #"{"中文":"胸部CT平扫","emoji":"😀"}"#,
        #"[{"00404021":{"vr":"SQ","Value":[{"0020000D":{"vr":"UI","Value":["1.2.3"]}}]}}]"#,
        "{\"studyDate\":\"20241122\",\"numberOfStudyRelatedSeries\":3,\"modalitiesInStudy\":[\"CT\",\"SR\"]}",
    ]

    static let invalid = [
        "", " ", "{", "}", "{\"a\"}", "{a:1}", "[01]", "[1.]", "[.5]", "[-]", "[1e]", "[+1]",
        "[tru]", "[nul]", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\u{01}b\"",
        "[1] [2]", "{\"a\":1}}", "[\"\\", "[1,2", "{\"a\":}", "[,1]", "'a'", "[NaN]", "[Infinity]",
    ]

    func testSameAnswersAsJSONSerializationOnChosenTexts() {
        for text in Self.valid {
            let bytes = Array(text.utf8)
            XCTAssertNotNil(JSONValue.parse(bytes), text)
            XCTAssertTrue(Self.same(JSONValue.parse(bytes), Self.reference(bytes)), text)
        }
        for text in Self.invalid {
            let bytes = Array(text.utf8)
            XCTAssertNil(JSONValue.parse(bytes), text)
            XCTAssertNil(Self.reference(bytes), "the reference accepts \(text)")
        }
        for text in ["[1,]", "{\"a\":1,}", "[1]\u{0}x", "\u{0}"] {
            XCTAssertNil(JSONValue.parse(Array(text.utf8)), "refused here: \(text.debugDescription)")
        }
        XCTAssertNil(JSONValue.parse([0x22, 0xC3, 0x28, 0x22]), "invalid UTF-8")
        XCTAssertEqual(JSONValue.parse([0xEF, 0xBB, 0xBF] + Array("[1]".utf8)), .array([.number(1)]), "a UTF-8 BOM is skipped")
    }

    func testNestingIsBoundedWithoutRecursingPastIt() {
        let deep = JSONParser.maxDepth
        XCTAssertNotNil(JSONValue.parse(Array((String(repeating: "[", count: deep) + String(repeating: "]", count: deep)).utf8)))
        XCTAssertNil(JSONValue.parse(Array((String(repeating: "[", count: deep + 1) + String(repeating: "]", count: deep + 1)).utf8)))
        XCTAssertNil(JSONValue.parse(Array(String(repeating: "{\"a\":[", count: 100_000).utf8)))
    }

    /// Every text made by changing, inserting or deleting a few bytes of a valid one is
    /// accepted by both or by neither, with equal values.
    func testSameAnswersAsJSONSerializationOnMutations() {
        var rng = SplitMix64(seed: 0x5EED)
        let alphabet = Array("{}[]\",:\\/ 0123456789.eE+-tfnulrsabu".utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        var disagreements: [String] = []
        for n in 0..<20_000 {
            var bytes = Array(Self.valid[n % Self.valid.count].utf8)
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let at = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
                let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                switch rng.next() % 3 {
                case 0 where !bytes.isEmpty: bytes[at] = byte
                case 1: bytes.insert(byte, at: at)
                default: if !bytes.isEmpty { bytes.remove(at: at) }
                }
            }
            let ours = JSONValue.parse(bytes)
            if bytes.contains(0) {
                if ours != nil { disagreements.append(String(decoding: bytes, as: UTF8.self)) }
                continue
            }
            let theirs = Self.reference(bytes)
            let laxer = ours == nil && Self.hasTrailingComma(bytes)
            if !Self.same(ours, theirs) && !laxer && !Self.numberOutOfRange(theirs) {
                disagreements.append(String(decoding: bytes, as: UTF8.self))
            }
        }
        XCTAssertEqual(disagreements.count, 0, "first: \(disagreements.prefix(5))")
    }

    static func same(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (.number(let x)?, .number(let y)?): return x == y || abs(x - y) <= 4 * max(x.ulp, y.ulp)
        case (.array(let x)?, .array(let y)?): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x)?, .object(let y)?): return x.keys == y.keys && x.allSatisfy { same($0.value, y[$0.key]) }
        default: return a == b
        }
    }

    /// A comma followed, past whitespace, by a closing bracket (inside a string or not:
    /// the mutations are short, and a false match only skips one comparison).
    static func hasTrailingComma(_ bytes: [UInt8]) -> Bool {
        let meaningful = bytes.filter { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        return zip(meaningful, meaningful.dropFirst()).contains { $0 == UInt8(ascii: ",") && ($1 == UInt8(ascii: "]") || $1 == UInt8(ascii: "}")) }
    }

    /// A number beyond a Double's range, which the reference gives as infinity and this
    /// parser refuses.
    static func numberOutOfRange(_ value: JSONValue?) -> Bool {
        switch value {
        case .number(let n)?: return !n.isFinite
        case .array(let a)?: return a.contains { numberOutOfRange($0) }
        case .object(let o)?: return o.values.contains { numberOutOfRange($0) }
        default: return false
        }
    }
}

struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
