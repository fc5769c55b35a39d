import Foundation

/// RFC 8259 JSON text straight into `JSONValue`. Foundation's JSONSerialization builds
/// bridged dictionaries and numbers that must then be cast back one value at a time;
/// parsing an upload that way was a sixth of the node's CPU. What must stay true: it
/// accepts the UTF-8 JSON texts JSONSerialization accepts and gives the same values,
/// except where JSONSerialization is laxer than RFC 8259 (a trailing comma, a NUL byte
/// where it stops reading) or gives a number too large for a Double as infinity: those
/// are refused here. `JSONParserTests` checks this against JSONSerialization over
/// thousands of mutated texts, and the record and UPS-RS fuzz targets run through here.
struct JSONParser {
    /// Deeper nesting is refused rather than recursed into: no record or DICOM JSON body
    /// nests this deep, and a hostile one must not exhaust the stack.
    static let maxDepth = 128

    private struct Malformed: Error {}

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    static func parse(_ data: some DataProtocol) -> JSONValue? {
        if let parsed = data.withContiguousStorageIfAvailable({ parse(buffer: $0) }) { return parsed }
        return Array(data).withUnsafeBufferPointer { parse(buffer: $0) }
    }

    private static func parse(buffer: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        var parser = JSONParser(buffer)
        if buffer.starts(with: [0xEF, 0xBB, 0xBF]) { parser.i = 3 }
        guard let value = try? parser.value() else { return nil }
        parser.skipWhitespace()
        return parser.i == buffer.count ? value : nil
    }

    private mutating func value() throws(Malformed) -> JSONValue {
        skipWhitespace()
        guard i < bytes.count else { throw Malformed() }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try number())
        }
    }

    private mutating func object() throws(Malformed) -> JSONValue {
        try descend()
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if take(UInt8(ascii: "}")) { return ascend(.object(members)) }
        repeat {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw Malformed() }
            let key = try string()
            skipWhitespace()
            guard take(UInt8(ascii: ":")) else { throw Malformed() }
            members[key] = try value()
            skipWhitespace()
        } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "}")) else { throw Malformed() }
        return ascend(.object(members))
    }

    private mutating func array() throws(Malformed) -> JSONValue {
        try descend()
        var elements: [JSONValue] = []
        skipWhitespace()
        if take(UInt8(ascii: "]")) { return ascend(.array(elements)) }
        repeat {
            elements.append(try value())
            skipWhitespace()
        } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "]")) else { throw Malformed() }
        return ascend(.array(elements))
    }

    /// Steps over the opening bracket.
    private mutating func descend() throws(Malformed) {
        depth += 1
        guard depth <= Self.maxDepth else { throw Malformed() }
        i += 1
    }

    private mutating func ascend(_ value: JSONValue) -> JSONValue {
        depth -= 1
        return value
    }

    /// A string starting at the quote at `i`. Without escapes (nearly always) its bytes
    /// are checked as UTF-8 and taken whole.
    private mutating func string() throws(Malformed) -> String {
        i += 1
        let start = i
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") {
                defer { i += 1 }
                return try text(UnsafeBufferPointer(rebasing: bytes[start..<i]))
            }
            if byte == UInt8(ascii: "\\") { return try escapedString(from: start) }
            guard byte >= 0x20 else { throw Malformed() }
            i += 1
        }
        throw Malformed()
    }

    private mutating func escapedString(from start: Int) throws(Malformed) -> String {
        var out = Array(bytes[start..<i])
        while i < bytes.count {
            let byte = bytes[i]
            i += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try out.withUnsafeBufferPointer { buffer throws(Malformed) in try text(buffer) }
            case UInt8(ascii: "\\"):
                guard i < bytes.count else { throw Malformed() }
                let escape = bytes[i]
                i += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"): out.append(contentsOf: try unicodeEscape())
                default: throw Malformed()
                }
            case 0..<0x20:
                throw Malformed()
            default:
                out.append(byte)
            }
        }
        throw Malformed()
    }

    /// `\uXXXX` (after the `u`), a surrogate pair taking two; a lone surrogate is refused.
    private mutating func unicodeEscape() throws(Malformed) -> [UInt8] {
        var scalar = UInt32(try hex4())
        if (0xD800..<0xDC00).contains(scalar) {
            guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw Malformed() }
            i += 2
            let low = UInt32(try hex4())
            guard (0xDC00..<0xE000).contains(low) else { throw Malformed() }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let unicode = Unicode.Scalar(scalar) else { throw Malformed() }
        return Array(String(Character(unicode)).utf8)
    }

    private mutating func hex4() throws(Malformed) -> UInt16 {
        guard i + 4 <= bytes.count else { throw Malformed() }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[i]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Malformed()
            }
            value = value << 4 | UInt16(digit)
            i += 1
        }
        return value
    }

    private func text(_ utf8: UnsafeBufferPointer<UInt8>) throws(Malformed) -> String {
        guard let text = String(validating: utf8, as: UTF8.self) else { throw Malformed() }
        return text
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; up to 15 digits with no
    /// fraction or exponent (counts, sizes) are exact without going through text.
    private mutating func number() throws(Malformed) -> Double {
        let start = i
        let negative = take(UInt8(ascii: "-"))
        guard i < bytes.count else { throw Malformed() }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            guard isDigit(bytes[i]) else { throw Malformed() }
            skipDigits()
        }
        let integerEnd = i
        var plain = true
        if take(UInt8(ascii: ".")) {
            plain = false
            guard i < bytes.count, isDigit(bytes[i]) else { throw Malformed() }
            skipDigits()
        }
        if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
            plain = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw Malformed() }
            skipDigits()
        }
        let digitsStart = negative ? start + 1 : start
        if plain, integerEnd - digitsStart <= 15 {
            var value = 0
            for k in digitsStart..<integerEnd { value = value * 10 + Int(bytes[k] - UInt8(ascii: "0")) }
            return negative ? -Double(value) : Double(value)
        }
        guard let value = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)),
              value.isFinite else { throw Malformed() }
        return value
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func skipDigits() {
        while i < bytes.count, isDigit(bytes[i]) { i += 1 }
    }

    private mutating func literal(_ word: StaticString) throws(Malformed) {
        let count = word.utf8CodeUnitCount
        guard i + count <= bytes.count,
              word.withUTF8Buffer({ $0.elementsEqual(UnsafeBufferPointer(rebasing: bytes[i..<i + count])) }) else { throw Malformed() }
        i += count
    }

    /// Steps over `byte` when it is next.
    private mutating func take(_ byte: UInt8) -> Bool {
        guard i < bytes.count, bytes[i] == byte else { return false }
        i += 1
        return true
    }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }
}
