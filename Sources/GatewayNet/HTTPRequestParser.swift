/// Size limits the parser and the gzip decoder enforce. A limit answers with its status
/// (413, 414, 431) before the offending bytes are buffered, so memory stays bounded by
/// the limits, not by what a client sends.
public struct HTTPLimits: Sendable {
    public var maxRequestLine = 8 * 1024
    public var maxHeaderBytes = 32 * 1024
    public var maxHeaderCount = 100
    public var maxBodyBytes = 16 * 1024 * 1024
    public var maxChunkSizeDigits = 16
    public var maxDecompressedBytes = 64 * 1024 * 1024

    public init() {}
}

/// An incremental HTTP/1.1 request parser (RFC 9112). Feed it whatever bytes have
/// arrived; it consumes what it can and reports at most one event per call, so a caller
/// loops until it reports `.needMore` with nothing consumed.
///
/// Decisions that must stay uniform, because request smuggling lives in the gaps
/// between two parsers' choices: bare LF is rejected everywhere (400); obs-fold is
/// rejected; whitespace before a header colon is rejected; Content-Length with
/// Transfer-Encoding is rejected; a Transfer-Encoding must be exactly `chunked`.
/// Every error closes the connection, since after one the framing can't be trusted.
struct HTTPRequestParser {
    enum Event {
        case needMore
        /// The head asked for `100-continue` and a body is still to come.
        case expectContinue
        case request(HTTPRequest)
    }

    private enum State {
        case head
        case body(HTTPBodyDecoder)
    }

    let limits: HTTPLimits
    private var state = State.head
    private var scanned = 0
    private var pending: HTTPRequest?

    init(limits: HTTPLimits) {
        self.limits = limits
    }

    /// True between requests: nothing of a next request has been taken yet.
    var isIdle: Bool {
        if case .head = state { return pending == nil && scanned == 0 }
        return false
    }

    /// True once a head is parsed and its body is being read.
    var isReadingBody: Bool { pending != nil }

    mutating func parse(_ buf: UnsafeRawBufferPointer) throws(HTTPError) -> (consumed: Int, event: Event) {
        switch state {
        case .head:
            return try parseHead(buf)
        case .body(var decoder):
            // Leave no second reference to the body while appending to it, or every
            // append would copy the whole body.
            state = .head
            let n = try decoder.feed(buf)
            guard decoder.isDone else {
                state = .body(decoder)
                return (n, .needMore)
            }
            pending!.body = decoder.body
            return (n, finish())
        }
    }

    private mutating func finish() -> Event {
        let request = pending!
        pending = nil
        state = .head
        scanned = 0
        return .request(request)
    }

    // MARK: head

    private mutating func parseHead(_ buf: UnsafeRawBufferPointer) throws(HTTPError) -> (consumed: Int, event: Event) {
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        if scanned == 0, buf.first == cr {
            if buf.count < 2 { return (0, .needMore) }
            if buf[1] == lf { return (2, .needMore) }
        }
        let found = try findHeadEnd(buf, scanned: &scanned)
        guard let end = found else {
            if buf.firstIndex(of: lf) == nil, buf.count > limits.maxRequestLine {
                throw HTTPError(414, "uri_too_long", "The request line exceeds \(limits.maxRequestLine) bytes.")
            }
            if buf.count > limits.maxHeaderBytes {
                throw HTTPError(431, "headers_too_large", "The request head exceeds \(limits.maxHeaderBytes) bytes.")
            }
            return (0, .needMore)
        }
        guard end <= limits.maxHeaderBytes else {
            throw HTTPError(431, "headers_too_large", "The request head exceeds \(limits.maxHeaderBytes) bytes.")
        }
        let request = try parseHeadLines(UnsafeRawBufferPointer(rebasing: buf[0..<(end - 2)]))
        let framing = try Framing(request: request, limits: limits)
        scanned = 0
        let expectsContinue = try checkExpect(request, framing: framing)
        switch framing {
        case .none:
            state = .head
            return (end, .request(request))
        case .length(let n):
            pending = request
            state = .body(HTTPBodyDecoder(.length(n), limits: limits))
        case .chunked:
            pending = request
            state = .body(HTTPBodyDecoder(.chunked, limits: limits))
        }
        return (end, expectsContinue ? .expectContinue : .needMore)
    }

    private func checkExpect(_ request: HTTPRequest, framing: Framing) throws(HTTPError) -> Bool {
        guard let expect = request.headers["Expect"] else { return false }
        guard expect.lowercased() == "100-continue" else {
            throw HTTPError(417, "expectation_failed", "Only Expect: 100-continue is supported.")
        }
        if case .none = framing { return false }
        return request.version == .http11
    }

    private func parseHeadLines(_ head: UnsafeRawBufferPointer) throws(HTTPError) -> HTTPRequest {
        var lines = LineIterator(head)
        guard let requestLine = lines.next() else { throw Self.badRequestLine }
        guard requestLine.count <= limits.maxRequestLine else {
            throw HTTPError(414, "uri_too_long", "The request line exceeds \(limits.maxRequestLine) bytes.")
        }
        let (method, target, version) = try parseRequestLine(requestLine)
        var headers = HTTPHeaders()
        var count = 0
        while let line = lines.next() {
            count += 1
            guard count <= limits.maxHeaderCount else {
                throw HTTPError(431, "too_many_headers", "More than \(limits.maxHeaderCount) header fields.")
            }
            let (name, value) = try parseHeaderField(line)
            headers.add(name, value)
        }
        return HTTPRequest(method: method, target: target, headers: headers, version: version)
    }

    private func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTPError) -> (String, String, HTTPVersion) {
        guard let sp1 = line.firstIndex(of: space), sp1 > 0,
              line[0..<sp1].allSatisfy(isTokenChar) else { throw Self.badRequestLine }
        let rest = line[(sp1 + 1)...]
        guard let sp2 = rest.firstIndex(of: space), sp2 > sp1 + 1 else { throw Self.badRequestLine }
        let targetBytes = line[(sp1 + 1)..<sp2]
        guard targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw Self.badRequestLine }
        let versionBytes = line[(sp2 + 1)...]
        let version: HTTPVersion
        switch String(decoding: versionBytes, as: UTF8.self) {
        case "HTTP/1.1": version = .http11
        case "HTTP/1.0": version = .http10
        case let v where v.count == 8 && v.hasPrefix("HTTP/") && v.utf8.dropFirst(5).enumerated()
            .allSatisfy { $0.offset == 1 ? $0.element == UInt8(ascii: ".") : isDigit($0.element) }:
            throw HTTPError(505, "http_version_not_supported", "Only HTTP/1.1 and HTTP/1.0 are served.")
        default: throw Self.badRequestLine
        }
        let method = String(decoding: line[0..<sp1], as: UTF8.self)
        var target = String(decoding: targetBytes, as: UTF8.self)
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
            let afterScheme = target[target.range(of: "//")!.upperBound...]
            let end = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
            // RFC 3986 authority: not empty, no userinfo, an IP-literal closed by its bracket.
            let authority = afterScheme[..<end]
            guard !authority.isEmpty, !authority.contains("@") else { throw Self.badRequestLine }
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]"), authority.index(after: authority.startIndex) < close,
                      authority[authority.index(after: close)...].isEmpty
                        || (authority[authority.index(after: close)...].hasPrefix(":")
                            && authority[authority.index(close, offsetBy: 2)...].allSatisfy(\.isASCII)
                            && authority[authority.index(close, offsetBy: 2)...].allSatisfy(\.isNumber))
                else { throw Self.badRequestLine }
            } else if authority.contains("[") || authority.contains("]") {
                throw Self.badRequestLine
            }
            target = end == afterScheme.endIndex ? "/"
                : afterScheme[end] == "/" ? String(afterScheme[end...]) : "/" + afterScheme[end...]
        } else if target == "*" {
            guard method == "OPTIONS" else { throw Self.badRequestLine }
        } else if !target.hasPrefix("/") {
            throw Self.badRequestLine
        }
        return (method, target, version)
    }

    private static let badRequestLine = HTTPError(400, "malformed_request_line", "The request line is malformed.")
}
