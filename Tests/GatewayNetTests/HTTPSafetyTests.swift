import XCTest

/// The request-smuggling and limit cases of SERVER.md, byte-exact over a plain listener.
/// Each must get its status, a JSON error, and a closed connection.
final class HTTPSafetyTests: XCTestCase {
    nonisolated(unsafe) static var server: TestServer!
    var port: Int { Self.server.plainPort }

    override class func setUp() {
        server = try! TestServer { config in
            config.limits.maxBodyBytes = 1024
            config.limits.maxHeaderBytes = 4096
            config.limits.maxRequestLine = 1024
            config.limits.maxHeaderCount = 20
        }
    }
    override class func tearDown() { server.stop() }

    private func assertRefused(_ request: String, _ status: Int, _ code: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        let (text, closed) = RawClient(port: port).exchange(request)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 \(status) "), "got: \(text)", file: file, line: line)
        XCTAssertTrue(text.contains("\"code\":\"\(code)\""), "got: \(text)", file: file, line: line)
        XCTAssertTrue(text.contains("Connection: close"), "got: \(text)", file: file, line: line)
        XCTAssertTrue(closed, "the connection must be closed after a framing error", file: file, line: line)
    }

    func testContentLengthWithTransferEncoding() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      400, "conflicting_framing")
    }

    func testDifferingDuplicateContentLength() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400,
                      "invalid_content_length")
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd", 400, "invalid_content_length")
    }

    func testIdenticalDuplicateContentLengthIsAccepted() {
        let (text, _) = RawClient(port: port).exchange(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 "), text)
        XCTAssertTrue(text.hasSuffix("\r\n\r\nabc"), text)
    }

    func testMalformedContentLength() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400, "invalid_content_length")
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc", 400, "invalid_content_length")
    }

    func testTransferEncodingNotEndingInChunked() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
                      "invalid_transfer_encoding")
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400,
                      "invalid_transfer_encoding")
    }

    func testUnsupportedTransferCoding() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
                      "unsupported_transfer_coding")
    }

    func testChunkedTwice() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                      400, "invalid_transfer_encoding")
    }

    func testTransferEncodingInHTTP10() {
        assertRefused("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "invalid_transfer_encoding")
    }

    func testObsFold() {
        assertRefused("GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "obs_fold")
    }

    func testBareLF() {
        assertRefused("GET /hello HTTP/1.1\nHost: x\n\n", 400, "bare_lf")
        assertRefused("GET /hello HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400, "bare_lf")
    }

    func testBareCR() {
        assertRefused("GET /hello HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400, "bare_cr")
    }

    func testWhitespaceBeforeColon() {
        assertRefused("GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400, "invalid_header")
    }

    func testControlCharacterInValue() {
        assertRefused("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\u{01}b\r\n\r\n", 400, "invalid_header")
    }

    func testMissingOrDuplicateHost() {
        assertRefused("GET /hello HTTP/1.1\r\n\r\n", 400, "invalid_host")
        assertRefused("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "invalid_host")
    }

    func testMalformedRequestLine() {
        assertRefused("GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request_line")
        assertRefused("GET hello HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request_line")
        assertRefused("G(T /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed_request_line")
    }

    func testUnsupportedVersion() {
        assertRefused("GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported")
    }

    func testRequestLineTooLong() {
        assertRefused("GET /" + String(repeating: "a", count: 2000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long")
    }

    func testHeadersTooLarge() {
        assertRefused("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 5000) + "\r\n\r\n",
                      431, "headers_too_large")
    }

    func testTooManyHeaders() {
        let many = (0..<30).map { "X-\($0): v\r\n" }.joined()
        assertRefused("GET /hello HTTP/1.1\r\nHost: x\r\n\(many)\r\n", 431, "too_many_headers")
    }

    func testBodyTooLarge() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413, "body_too_large")
        let chunks = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n"
            + String(repeating: "c", count: 1024) + "\r\n1\r\nc\r\n0\r\n\r\n"
        assertRefused(chunks, 413, "body_too_large")
    }

    func testChunkSizeTooManyDigits() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\na\r\n0\r\n\r\n",
                      400, "invalid_chunk")
    }

    func testMalformedChunk() {
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "invalid_chunk")
        assertRefused("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400,
                      "invalid_chunk")
    }

    func testUnknownExpectation() {
        assertRefused("GET /hello HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417, "expectation_failed")
    }

    func testUnknownContentEncoding() {
        let (text, _) = RawClient(port: port).exchange(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 1\r\nConnection: close\r\n\r\na")
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 415 "), text)
        XCTAssertTrue(text.contains("unsupported_content_encoding"), text)
    }

    func testNotFoundAndMethodNotAllowedKeepTheConnection() {
        let client = RawClient(port: port)
        client.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\nDELETE /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let (text, closed) = client.read()
        XCTAssertTrue(closed)
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        XCTAssertEqual(statuses, ["404", "405", "200"], text)
        XCTAssertTrue(text.contains("Allow: GET"), text)
        XCTAssertTrue(text.contains("\"code\":\"not_found\""), text)
    }

    func testServerKeepsServingAfterErrors() {
        for _ in 0..<20 { _ = RawClient(port: port).exchange("\u{00}\u{ff}garbage\r\n\r\n") }
        let (text, _) = RawClient(port: port).exchange("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 "), text)
    }
}
