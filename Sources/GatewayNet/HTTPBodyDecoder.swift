/// Reads a message body delimited by a length, by the chunked coding (RFC 9112 §7.1), or
/// by the connection's close, for requests and responses alike. Bytes go straight into
/// `body`; the body may never pass `maxBody`.
struct HTTPBodyDecoder {
    enum Framing: Equatable {
        case length(Int)
        case chunked
        case untilClose
    }

    private enum State {
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case untilClose
        case done
    }

    private var state: State
    private let limits: HTTPLimits
    var body: [UInt8] = []

    init(_ framing: Framing, limits: HTTPLimits) {
        self.limits = limits
        switch framing {
        case .length(let n):
            state = n == 0 ? .done : .length(remaining: n)
            body.reserveCapacity(n)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Takes what it can of `buf`; returns how much. Call again while it consumes and is
    /// not done.
    mutating func feed(_ buf: UnsafeRawBufferPointer) throws(HTTPError) -> Int {
        switch state {
        case .done:
            return 0
        case .length(let remaining):
            let n = min(remaining, buf.count)
            body.append(contentsOf: buf[0..<n])
            state = n == remaining ? .done : .length(remaining: remaining - n)
            return n
        case .untilClose:
            guard body.count + buf.count <= limits.maxBodyBytes else { throw Self.tooLarge(limits) }
            body.append(contentsOf: buf)
            return buf.count
        case .chunkSize:
            return try chunkSize(buf)
        case .chunkData(let remaining):
            let n = min(remaining, buf.count)
            body.append(contentsOf: buf[0..<n])
            state = n == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            return n
        case .chunkDataEnd:
            guard buf.count >= 2 else { return 0 }
            guard buf[0] == cr, buf[1] == lf else { throw Self.badChunk }
            state = .chunkSize
            return 2
        case .trailers(let seen):
            return try trailer(buf, seen: seen)
        }
    }

    private mutating func chunkSize(_ buf: UnsafeRawBufferPointer) throws(HTTPError) -> Int {
        let maxLine = limits.maxChunkSizeDigits + 1024
        guard let lfAt = buf.firstIndex(of: lf) else {
            if buf.count > maxLine { throw Self.badChunk }
            return 0
        }
        guard lfAt > 0, buf[lfAt - 1] == cr, lfAt <= maxLine else { throw Self.badChunk }
        let line = buf[0..<(lfAt - 1)]
        let digits = line.prefix { hexValue($0) != nil }
        guard !digits.isEmpty else { throw Self.badChunk }
        guard digits.count <= limits.maxChunkSizeDigits else {
            throw HTTPError(400, "invalid_chunk", "A chunk size has more than \(limits.maxChunkSizeDigits) digits.")
        }
        let ext = line[(line.startIndex + digits.count)...]
        guard ext.isEmpty || ext.first == UInt8(ascii: ";") || ext.first == space || ext.first == tab,
              ext.allSatisfy({ $0 == tab || ($0 >= 0x20 && $0 != 0x7F) }) else { throw Self.badChunk }
        var size = 0
        for d in digits {
            let (shifted, overflow) = size.multipliedReportingOverflow(by: 16)
            guard !overflow else { throw Self.tooLarge(limits) }
            size = shifted + Int(hexValue(d)!)
        }
        guard size <= limits.maxBodyBytes - body.count else { throw Self.tooLarge(limits) }
        state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
        return lfAt + 1
    }

    /// Trailer fields are checked like header fields and then dropped: nothing here acts
    /// on them, and merging them into the head is how smuggling starts.
    private mutating func trailer(_ buf: UnsafeRawBufferPointer, seen: Int) throws(HTTPError) -> Int {
        guard let lfAt = buf.firstIndex(of: lf) else {
            if seen + buf.count > limits.maxHeaderBytes { throw Self.trailersTooLarge(limits) }
            return 0
        }
        guard lfAt > 0, buf[lfAt - 1] == cr else { throw HTTPError(400, "bare_lf", "Lines must end with CRLF.") }
        if lfAt == 1 {
            state = .done
            return 2
        }
        _ = try parseHeaderField(UnsafeRawBufferPointer(rebasing: buf[0..<(lfAt - 1)]))
        guard seen + lfAt + 1 <= limits.maxHeaderBytes else { throw Self.trailersTooLarge(limits) }
        state = .trailers(bytes: seen + lfAt + 1)
        return lfAt + 1
    }

    private static let badChunk = HTTPError(400, "invalid_chunk", "The chunked body is malformed.")

    static func tooLarge(_ limits: HTTPLimits) -> HTTPError {
        HTTPError(413, "body_too_large", "The body exceeds \(limits.maxBodyBytes) bytes.")
    }

    private static func trailersTooLarge(_ limits: HTTPLimits) -> HTTPError {
        HTTPError(431, "headers_too_large", "Chunked trailers exceed \(limits.maxHeaderBytes) bytes.")
    }
}

/// Finds the end of a head (the byte after CRLFCRLF), scanning from `scanned` so that a
/// head arriving in pieces is scanned once. Bare LF and bare CR are refused here, once,
/// for every head the gateway reads.
func findHeadEnd(_ buf: UnsafeRawBufferPointer, scanned: inout Int) throws(HTTPError) -> Int? {
    var i = scanned
    while i < buf.count {
        let b = buf[i]
        if b == lf {
            guard i > 0, buf[i - 1] == cr else { throw HTTPError(400, "bare_lf", "Lines must end with CRLF.") }
            if i >= 3, buf[i - 2] == lf, buf[i - 3] == cr { return i + 1 }
        } else if i > 0, buf[i - 1] == cr {
            throw HTTPError(400, "bare_cr", "A CR must be followed by LF.")
        }
        i += 1
    }
    scanned = buf.count
    return nil
}

/// One `name: value` field line (RFC 9112 §5): no obs-fold, no whitespace before the
/// colon, a token name, a value without control characters, OWS trimmed.
func parseHeaderField(_ line: UnsafeRawBufferPointer) throws(HTTPError) -> (String, String) {
    if let first = line.first, first == space || first == tab {
        throw HTTPError(400, "obs_fold", "Header line folding is not allowed.")
    }
    guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
          line[0..<colon].allSatisfy(isTokenChar) else {
        throw HTTPError(400, "invalid_header", "A header field name is malformed.")
    }
    var start = colon + 1, end = line.count
    while start < end, line[start] == space || line[start] == tab { start += 1 }
    while end > start, line[end - 1] == space || line[end - 1] == tab { end -= 1 }
    let value = line[start..<end]
    guard value.allSatisfy({ $0 == tab || ($0 >= 0x20 && $0 != 0x7F) }) else {
        throw HTTPError(400, "invalid_header", "A header field value holds a control character.")
    }
    return (String(decoding: line[0..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self))
}
