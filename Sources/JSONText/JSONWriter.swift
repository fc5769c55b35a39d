/// JSON written straight into bytes, for answers made of many records: one growing
/// buffer instead of a String per field joined at the end (building a lookup's answer
/// that way was 13 % of a lookup's CPU). The caller keeps the shape valid; the writer
/// only places commas and escapes strings. One flag serves every nesting level because
/// a container that has just closed was an item of its parent, so the parent's next
/// item always needs a comma.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var first = true

    public init(capacity: Int = 512) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        first = true
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        first = false
    }

    public mutating func beginArray() {
        bytes.append(UInt8(ascii: "["))
        first = true
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        first = false
    }

    /// `[…]`, `write` called for each of `items` with the commas placed.
    public mutating func array<Items: Sequence>(_ items: Items, _ write: (inout JSONWriter, Items.Element) -> Void) {
        beginArray()
        for item in items {
            element()
            write(&self, item)
        }
        endArray()
    }

    /// Before each array element.
    public mutating func element() {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
    }

    /// `"key":`, after a comma when the object already has a member. Keys are the
    /// caller's own constants and are written as they are.
    public mutating func key(_ key: StaticString) {
        element()
        bytes.append(UInt8(ascii: "\""))
        raw(key)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// A constant piece of JSON the caller has made valid itself, placed as it is: no
    /// comma, no escaping. For shapes written millions of times (a DICOM attribute's
    /// `"tag":{"vr":"XX","Value":[`), where one append beats a dozen.
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// One JSON value made elsewhere (another answer's body), placed as it is after a
    /// `key` or `element`: the caller vouches that it is exactly one valid value.
    public mutating func value(json: [UInt8]) {
        bytes.append(contentsOf: json)
    }

    /// A member, left out when `value` is nil (absent optionals are omitted).
    public mutating func field(_ key: StaticString, _ value: String?) {
        guard let value else { return }
        self.key(key)
        string(value)
    }

    public mutating func field(_ key: StaticString, _ value: Int?) {
        guard let value else { return }
        self.key(key)
        int(value)
    }

    public mutating func int(_ value: Int) {
        bytes.append(contentsOf: String(value).utf8)
    }

    /// `value` as a JSON string literal: `"` and `\` escaped, `\n` `\r` `\t` by name, other
    /// controls as `\u00xx`, everything else as its UTF-8.
    public mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = value
        text.withUTF8 { utf8 in
            var start = 0
            for (i, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                escape(byte)
                start = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func escape(_ byte: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(byte)
        case UInt8(ascii: "\n"): bytes.append(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): bytes.append(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): bytes.append(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }
}
