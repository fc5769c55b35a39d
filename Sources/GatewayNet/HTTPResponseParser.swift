/// An incremental HTTP/1.1 response parser for the client: status line, fields, then the
/// body by Content-Length, chunked coding, or until close (RFC 9112 §6.3). Interim 1xx
/// responses are skipped.
struct HTTPResponseParser {
    private enum State {
        case head
        case body(HTTPBodyDecoder)
    }

    private let limits: HTTPLimits
    private let requestWasHead: Bool
    private var state = State.head
    private var scanned = 0
    private var pending: HTTPResponse?
    /// Set when the body runs until close: the connection can't be reused.
    private(set) var closeDelimited = false

    init(limits: HTTPLimits, requestWasHead: Bool) {
        self.limits = limits
        self.requestWasHead = requestWasHead
    }

    /// True before any byte of the response was taken.
    var isAtStart: Bool {
        if case .head = state { return scanned == 0 && pending == nil }
        return false
    }

    /// Consumes what it can; returns the response once complete.
    mutating func parse(_ buf: UnsafeRawBufferPointer) throws(HTTPError) -> (consumed: Int, response: HTTPResponse?) {
        switch state {
        case .head:
            return try parseHead(buf)
        case .body(var decoder):
            state = .head
            let n = try decoder.feed(buf)
            guard decoder.isDone else {
                state = .body(decoder)
                return (n, nil)
            }
            return (n, finish(body: decoder.body))
        }
    }

    /// The peer closed: completes a close-delimited body, or reports truncation.
    mutating func finishAtClose() throws(HTTPError) -> HTTPResponse {
        guard case .body(let decoder) = state, closeDelimited else {
            throw HTTPError(502, "truncated_response", "The connection closed before the response was complete.")
        }
        return finish(body: decoder.body)
    }

    private mutating func finish(body: [UInt8]) -> HTTPResponse {
        var response = pending!
        response.body = body
        pending = nil
        state = .head
        scanned = 0
        return response
    }

    private mutating func parseHead(_ buf: UnsafeRawBufferPointer) throws(HTTPError) -> (consumed: Int, response: HTTPResponse?) {
        guard let end = try findHeadEnd(buf, scanned: &scanned) else {
            if buf.count > limits.maxHeaderBytes {
                throw HTTPError(502, "response_head_too_large", "The response head exceeds \(limits.maxHeaderBytes) bytes.")
            }
            return (0, nil)
        }
        scanned = 0
        var lines = LineIterator(UnsafeRawBufferPointer(rebasing: buf[0..<(end - 2)]))
        guard let statusLine = lines.next(), statusLine.count >= 12,
              String(decoding: statusLine[0..<7], as: UTF8.self) == "HTTP/1.",
              statusLine[8] == space, statusLine[9..<12].allSatisfy(isDigit),
              let status = Int(String(decoding: statusLine[9..<12], as: UTF8.self)) else {
            throw HTTPError(502, "malformed_response", "The status line is malformed.")
        }
        var headers = HTTPHeaders()
        while let line = lines.next() {
            let (name, value) = try parseHeaderField(line)
            headers.add(name, value)
        }
        if status >= 100 && status < 200 { return (end, nil) }
        let response = HTTPResponse(status: status, headers: headers)
        let framing = try bodyFraming(status: status, headers: headers)
        guard let framing else { return (end, response) }
        pending = response
        state = .body(HTTPBodyDecoder(framing, limits: limits))
        closeDelimited = framing == .untilClose
        return (end, nil)
    }

    private func bodyFraming(status: Int, headers: HTTPHeaders) throws(HTTPError) -> HTTPBodyDecoder.Framing? {
        if requestWasHead || status == 204 || status == 304 { return nil }
        if let coding = headers["Transfer-Encoding"] {
            guard coding.lowercased().split(separator: ",").last.map({ $0.trimmingOWS() }) == "chunked" else {
                return .untilClose
            }
            return .chunked
        }
        if let length = headers["Content-Length"] {
            guard let n = Int(length.trimmingOWS()), n >= 0 else {
                throw HTTPError(502, "malformed_response", "The Content-Length is malformed.")
            }
            guard n <= limits.maxBodyBytes else { throw HTTPBodyDecoder.tooLarge(limits) }
            return n == 0 ? nil : .length(n)
        }
        return .untilClose
    }
}
