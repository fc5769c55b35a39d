@testable import GatewayNet
import XCTest

/// The parser fed in every split: a request must parse the same whether it arrives
/// whole, byte by byte, or cut anywhere.
final class ParserTests: XCTestCase {
    private func parseAll(_ chunks: [[UInt8]], limits: HTTPLimits = HTTPLimits()) throws -> [HTTPRequest] {
        var parser = HTTPRequestParser(limits: limits)
        var buffer: [UInt8] = []
        var out: [HTTPRequest] = []
        for chunk in chunks {
            buffer += chunk
            while true {
                let result = buffer.withUnsafeBytes { b in Result { () throws(HTTPError) in try parser.parse(b) } }
                let (consumed, event) = try result.get()
                buffer.removeFirst(consumed)
                if case .request(let r) = event { out.append(r) }
                if consumed == 0, case .needMore = event { break }
            }
        }
        return out
    }

    private let sample = Array(("\r\nPOST /a/b?x=1&y=%20z HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "3\r\nabc\r\n2;e=1\r\nde\r\n0\r\nT: v\r\n\r\n"
        + "GET /next HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\n").utf8)

    /// One parameter's value found over the bytes is the value the full parse gives it:
    /// first of repeats, decoded, empty, absent, encoded names, a name inside another.
    func testQueryValueIsWhatTheFullParseGives() {
        let targets = ["/a", "/a?", "/a?purpose=TREAT", "/a?limit=5&purpose=ETREAT", "/a?purpose=HOP%45RAT&purpose=TREAT",
                       "/a?xpurpose=A&purpose=B", "/a?purpose", "/a?purpose=&x=1", "/a?&&purpose=C&", "/a?purp%6Fse=D",
                       "/a?purpose=a+b%2", "/a?p=1=2&purpose==3", "/a?x=1"]
        for target in targets {
            let request = HTTPRequest(method: "GET", target: target)
            for name in ["purpose", "p", "x", "missing"] {
                XCTAssertEqual(request.queryValue(name), request.query.first { $0.name == name }?.value, "\(name) in \(target)")
            }
        }
        XCTAssertEqual(HTTPRequest(method: "GET", target: "/a?x=1&purpose=HOP%45RAT").queryValue("purpose"), "HOPERAT")
    }

    /// Every pair in order, repeats kept, empty pairs skipped, the value from the first `=`,
    /// each side decoded on its own; split at the byte `&`, even before a combining mark.
    func testTheQueryIsEveryPairDecoded() {
        let cases: [(String, [String])] = [
            ("/a", []), ("/a?", []), ("/a?&&", []), ("/a?x=1&y=%20z", ["x=1", "y= z"]), ("/a?p&q=", ["p=", "q="]),
            ("/a?=v", ["=v"]), ("/a?p=1=2", ["p=1=2"]), ("/a?a+b=c+d&a=2&&a=3", ["a b=c d", "a=2", "a=3"]),
            ("/a?purp%6Fse=D", ["purpose=D"]), ("/a?x=%2&y=%zz", ["x=%2", "y=%zz"]), ("/a?n=%E4%B8%AD", ["n=中"]),
            ("/a?u=https://h/p?q", ["u=https://h/p?q"]), ("/a?x=1&\u{301}y=2", ["x=1", "\u{301}y=2"]),
        ]
        for (target, pairs) in cases {
            XCTAssertEqual(HTTPRequest(method: "GET", target: target).query.map { "\($0.name)=\($0.value)" }, pairs, target)
        }
    }

    func testTheMediaTypeIsContentTypeWithoutParametersOrCase() {
        let cases: [(String?, String)] = [
            (nil, ""), ("", ""), ("application/json", "application/json"), ("Application/JSON; charset=utf-8", "application/json"),
            (" \tapplication/dicom+json ;q=1", "application/dicom+json"), ("text/plain;", "text/plain"), (" ; x=y", ""),
            ("application/x-NDJSON\t", "application/x-ndjson"), ("application/jsön", "application/jsön"),
        ]
        for (value, expected) in cases {
            var headers = HTTPHeaders()
            if let value { headers.add("content-type", value) }
            XCTAssertEqual(HTTPRequest(method: "POST", target: "/", headers: headers).mediaType, expected, "\(value ?? "none")")
        }
    }

    func testEverySplitGivesTheSameRequests() throws {
        let whole = try parseAll([sample])
        XCTAssertEqual(whole.count, 2)
        XCTAssertEqual(whole[0].method, "POST")
        XCTAssertEqual(String(whole[0].path), "/a/b")
        XCTAssertEqual(whole[0].query.map(\.value), ["1", " z"])
        XCTAssertEqual(whole[0].body, Array("abcde".utf8))
        XCTAssertEqual(whole[1].target, "/next")
        XCTAssertEqual(whole[1].headers["x-empty"], "")
        for cut in 1..<sample.count {
            let split = try parseAll([Array(sample[..<cut]), Array(sample[cut...])])
            XCTAssertEqual(split.map(\.target), whole.map(\.target), "cut at \(cut)")
            XCTAssertEqual(split.map(\.body), whole.map(\.body), "cut at \(cut)")
        }
        let bytewise = try parseAll(sample.map { [$0] })
        XCTAssertEqual(bytewise.map(\.body), whole.map(\.body))
    }

    func testAbsoluteFormTargetIsReducedToPath() throws {
        let r = try parseAll([Array("GET http://h:80/p?q HTTP/1.1\r\nHost: h\r\n\r\n".utf8)])
        XCTAssertEqual(r.first?.target, "/p?q")
    }

    func testIncompleteHeadOverLimitIsRefusedEarly() {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 100
        let head = Array(("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 200)).utf8)
        XCTAssertThrowsError(try parseAll([head], limits: limits)) { error in
            XCTAssertEqual((error as? HTTPError)?.status, 431)
        }
    }

    func testGzipRoundTripAndBound() throws {
        let data = [UInt8](repeating: 7, count: 100_000)
        let packed = Gzip.compress(data)
        XCTAssertLessThan(packed.count, 1000)
        XCTAssertEqual(try Gzip.decompress(packed, limit: 100_000), data)
        XCTAssertThrowsError(try Gzip.decompress(packed, limit: 99_999)) { XCTAssertEqual($0 as? Gzip.Failure, .tooLarge) }
        XCTAssertThrowsError(try Gzip.decompress([1, 2, 3], limit: 10)) { XCTAssertEqual($0 as? Gzip.Failure, .corrupt) }
        XCTAssertThrowsError(try Gzip.decompress(Array(packed.dropLast(4)), limit: 100_000))
    }

    func testPeerIdentity() {
        let id = PeerIdentity(uri: "urn:imaging-gateway:clinic:91610000MA6TG1234X", prefix: "urn:imaging-gateway:")
        XCTAssertEqual(id?.role, "clinic")
        XCTAssertEqual(id?.organization, "91610000MA6TG1234X")
        XCTAssertNil(PeerIdentity(uri: "urn:other:clinic:x", prefix: "urn:imaging-gateway:"))
        XCTAssertNil(PeerIdentity(uri: "urn:imaging-gateway:clinic", prefix: "urn:imaging-gateway:"))
        XCTAssertNil(PeerIdentity(uri: "urn:imaging-gateway:clinic:x:y", prefix: "urn:imaging-gateway:"))
    }
}
