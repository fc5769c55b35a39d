/// JSON written straight into bytes, for answers made of many records: one growing
/// buffer instead of a String per field joined at the end (building a lookup's answer
/// that way was 13 % of a lookup's CPU). The caller keeps the shape valid; the writer
/// only places commas and escapes strings. One flag serves every nesting level because
/// a container that has just closed was an item of its parent, so the parent's next
/// item always needs a comma.
///
/// Every method is `@inlinable`: a QIDO-RS answer of 100 studies makes some 8 000 calls,
/// and across the module boundary each was a call that checked the array's uniqueness and
/// capacity on its own.
public struct JSONWriter {
    /// What has been written.
    public var bytes: [UInt8] { buffer }
    @usableFromInline var buffer: [UInt8] = []
    @usableFromInline var first = true

    @inlinable
    public init(capacity: Int = 512) {
        buffer.reserveCapacity(capacity)
    }

    @inlinable
    public mutating func beginObject() {
        buffer.append(UInt8(ascii: "{"))
        first = true
    }

    @inlinable
    public mutating func endObject() {
        buffer.append(UInt8(ascii: "}"))
        first = false
    }

    @inlinable
    public mutating func beginArray() {
        buffer.append(UInt8(ascii: "["))
        first = true
    }

    @inlinable
    public mutating func endArray() {
        buffer.append(UInt8(ascii: "]"))
        first = false
    }

    /// `[…]`, `write` called for each of `items` with the commas placed.
    @inlinable
    public mutating func array<Items: Sequence>(_ items: Items, _ write: (inout JSONWriter, Items.Element) -> Void) {
        beginArray()
        for item in items {
            element()
            write(&self, item)
        }
        endArray()
    }

    /// Before each array element.
    @inlinable
    public mutating func element() {
        if !first { buffer.append(UInt8(ascii: ",")) }
        first = false
    }

    /// `"key":`, after a comma when the object already has a member. Keys are the
    /// caller's own constants and are written as they are.
    @inlinable
    public mutating func key(_ key: StaticString) {
        element()
        buffer.append(UInt8(ascii: "\""))
        raw(key)
        buffer.append(UInt8(ascii: "\""))
        buffer.append(UInt8(ascii: ":"))
    }

    /// A constant piece of JSON the caller has made valid itself, placed as it is: no
    /// comma, no escaping. For shapes written millions of times (a DICOM attribute's
    /// `"tag":{"vr":"XX","Value":[`), where one append beats a dozen.
    @inlinable
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }

    /// One JSON value made elsewhere (another answer's body), placed as it is after a
    /// `key` or `element`: the caller vouches that it is exactly one valid value.
    @inlinable
    public mutating func value(json: [UInt8]) {
        buffer.append(contentsOf: json)
    }

    /// A member, left out when `value` is nil (absent optionals are omitted).
    @inlinable
    public mutating func field(_ key: StaticString, _ value: String?) {
        guard let value else { return }
        self.key(key)
        string(value)
    }

    @inlinable
    public mutating func field(_ key: StaticString, _ value: Int?) {
        guard let value else { return }
        self.key(key)
        int(value)
    }

    @inlinable
    public mutating func int(_ value: Int) {
        buffer.append(contentsOf: String(value).utf8)
    }

    /// `value` as a JSON string literal: `"` and `\` escaped, `\n` `\r` `\t` by name, other
    /// controls as `\u00xx`, everything else as its UTF-8.
    @inlinable
    public mutating func string(_ value: String) {
        buffer.append(UInt8(ascii: "\""))
        var text = value
        text.withUTF8 { utf8 in
            var start = 0
            for (i, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                escape(byte)
                start = i + 1
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// Rare (a control character, a quote or a backslash): called, not inlined.
    @usableFromInline
    mutating func escape(_ byte: UInt8) {
        buffer.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): buffer.append(byte)
        case UInt8(ascii: "\n"): buffer.append(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): buffer.append(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): buffer.append(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            buffer.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }
}
