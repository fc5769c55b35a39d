/// JSON written straight into bytes, for answers made of many records: one growing
/// buffer instead of a String per field joined at the end (building a lookup's answer
/// that way was 13 % of a lookup's CPU). The caller keeps the shape valid; the writer
/// only places commas and escapes strings. One flag serves every nesting level because
/// a container that has just closed was an item of its parent, so the parent's next
/// item always needs a comma.
///
/// Every method is `@inlinable`: a QIDO-RS answer of 100 studies makes some 8 000 calls.
/// The buffer is the writer's own memory, not an `[UInt8]`: appending to an array checks
/// its uniqueness and goes through the generic copy, and those 8 000 appends were 5 % of
/// the node's CPU on that search. Owning the memory is why the writer cannot be copied:
/// a copy would share the buffer and free it twice.
public struct JSONWriter: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var count = 0
    @usableFromInline var capacity: Int
    @usableFromInline var first = true

    @inlinable
    public init(capacity: Int = 512) {
        self.capacity = Swift.max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// What has been written, copied out.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    @inlinable
    mutating func put(_ byte: UInt8) {
        if count == capacity { grow(to: count + 1) }
        base[count] = byte
        count += 1
    }

    @inlinable
    mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        if count + bytes.count > capacity { grow(to: count + bytes.count) }
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    /// At least doubles, so that appending n bytes one by one copies O(n) in all.
    @usableFromInline
    mutating func grow(to needed: Int) {
        let larger = Swift.max(needed, capacity * 2)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: larger)
        moved.moveInitialize(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = larger
    }

    @inlinable
    public mutating func beginObject() {
        put(UInt8(ascii: "{"))
        first = true
    }

    @inlinable
    public mutating func endObject() {
        put(UInt8(ascii: "}"))
        first = false
    }

    @inlinable
    public mutating func beginArray() {
        put(UInt8(ascii: "["))
        first = true
    }

    @inlinable
    public mutating func endArray() {
        put(UInt8(ascii: "]"))
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
        if !first { put(UInt8(ascii: ",")) }
        first = false
    }

    /// `"key":`, after a comma when the object already has a member. Keys are the
    /// caller's own constants and are written as they are.
    @inlinable
    public mutating func key(_ key: StaticString) {
        element()
        put(UInt8(ascii: "\""))
        raw(key)
        put(UInt8(ascii: "\""))
        put(UInt8(ascii: ":"))
    }

    /// A constant piece of JSON the caller has made valid itself, placed as it is: no
    /// comma, no escaping. For shapes written millions of times (a DICOM attribute's
    /// `"tag":{"vr":"XX","Value":[`), where one append beats a dozen.
    @inlinable
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { put($0) }
    }

    /// One JSON value made elsewhere (another answer's body), placed as it is after a
    /// `key` or `element`: the caller vouches that it is exactly one valid value.
    @inlinable
    public mutating func value(json: [UInt8]) {
        json.withUnsafeBufferPointer { put($0) }
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

    /// Its decimal digits, written from the last into a few bytes of stack: a String made
    /// for each number cost a QIDO-RS answer 200 of them.
    @inlinable
    public mutating func int(_ value: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var i = buffer.count
            var rest = value.magnitude
            repeat {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            if value < 0 {
                i -= 1
                buffer[i] = UInt8(ascii: "-")
            }
            put(UnsafeRawBufferPointer(rebasing: buffer[i...]).assumingMemoryBound(to: UInt8.self))
        }
    }

    /// `value` as a JSON string literal: `"` and `\` escaped, `\n` `\r` `\t` by name, other
    /// controls as `\u00xx`, everything else as its UTF-8.
    @inlinable
    public mutating func string(_ value: String) {
        put(UInt8(ascii: "\""))
        unquoted(value)
        put(UInt8(ascii: "\""))
    }

    /// `string` of text that is already UTF-8 bytes (a column still in the database's
    /// row): the caller vouches that they are valid UTF-8.
    @inlinable
    public mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        put(UInt8(ascii: "\""))
        unquoted(utf8: utf8)
        put(UInt8(ascii: "\""))
    }

    /// `value` escaped as inside a JSON string literal, without the quotes: for a string
    /// written in pieces between quotes the caller places itself (with `raw`).
    ///
    /// Most strings here (UIDs, tokens, dates, URLs) need no escape at all, so the scan
    /// first skips whole 8-byte words that hold none of the three kinds of byte, and goes
    /// byte by byte only from the first word that does: 4 % of a QIDO-RS search was this
    /// scan, a byte at a time.
    @inlinable
    public mutating func unquoted(_ value: String) {
        var text = value
        text.withUTF8 { unquoted(utf8: $0) }
    }

    /// `unquoted` of text that is already UTF-8 bytes, valid UTF-8 by the caller's word.
    @inlinable
    public mutating func unquoted(utf8: UnsafeBufferPointer<UInt8>) {
        var i = 0
        if let words = UnsafeRawPointer(utf8.baseAddress) {
            while i + 8 <= utf8.count, !Self.mayNeedEscape(words.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
        }
        var start = 0
        while i < utf8.count {
            let byte = utf8[i]
            if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                put(UnsafeBufferPointer(rebasing: utf8[start..<i]))
                escape(byte)
                start = i + 1
            }
            i += 1
        }
        put(UnsafeBufferPointer(rebasing: utf8[start...]))
    }

    /// Whether one of the word's 8 bytes is below 0x20, a quote or a backslash (the
    /// bit tricks of "a zero byte in a word": a byte below n borrows into its top bit when
    /// n is subtracted, unless its own top bit was set; a byte equal to c is zero after
    /// xor with c). Never false for such a word; may be true for a word without one,
    /// which only sends the rest of the string to the byte-by-byte loop.
    @inlinable
    static func mayNeedEscape(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let tops: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
        let backslash = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
        let control = (word &- ones &* 0x20) & ~word
        return ((quote &- ones) & ~quote | (backslash &- ones) & ~backslash | control) & tops != 0
    }

    /// Rare (a control character, a quote or a backslash): called, not inlined.
    @usableFromInline
    mutating func escape(_ byte: UInt8) {
        put(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): put(byte)
        case UInt8(ascii: "\n"): put(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): put(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): put(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            for b in [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]] { put(b) }
        }
    }
}
