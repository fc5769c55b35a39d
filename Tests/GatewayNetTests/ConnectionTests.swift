import Foundation
import XCTest

/// Connection behaviour: keep-alive, pipelining, 100-continue, timeouts, the connection
/// cap, large responses, graceful shutdown.
final class ConnectionTests: XCTestCase {
    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let s = try TestServer()
        defer { s.stop() }
        let client = RawClient(port: s.plainPort)
        // The slow async request comes first: the fast ones behind it must wait their turn.
        client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /path/one HTTP/1.1\r\nHost: x\r\n\r\n"
            + "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfive!"
            + "GET /path/two%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let (text, closed) = client.read()
        XCTAssertTrue(closed)
        let bodies = text.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.components(separatedBy: "HTTP/1.1").first! }
        XCTAssertEqual(bodies, ["{\"slow\":true}", "{\"id\":\"one\"}", "five!", "{\"id\":\"two b\"}"], text)
    }

    func testChunkedRequestBody() throws {
        let s = try TestServer()
        defer { s.stop() }
        let (text, _) = RawClient(port: s.plainPort).exchange(
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 "), text)
        XCTAssertTrue(text.hasSuffix("\r\n\r\nhello world"), text)
    }

    func testExpectContinue() throws {
        let s = try TestServer()
        defer { s.stop() }
        let client = RawClient(port: s.plainPort)
        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        let (interim, _) = client.read(until: "\r\n\r\n")
        XCTAssertEqual(interim, "HTTP/1.1 100 Continue\r\n\r\n")
        client.send("data")
        let (text, closed) = client.read()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 "), text)
        XCTAssertTrue(text.hasSuffix("data"), text)
        XCTAssertTrue(closed)
    }

    func testExpectContinueOverLimitIsRefusedWithoutReadingTheBody() throws {
        let s = try TestServer { $0.limits.maxBodyBytes = 10 }
        defer { s.stop() }
        let (text, closed) = RawClient(port: s.plainPort).exchange(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 413 "), text)
        XCTAssertTrue(closed)
    }

    func testSlowHeaderClientIsClosedWhileOthersAreServed() throws {
        let s = try TestServer { $0.headerTimeout = .seconds(2) }
        defer { s.stop() }
        let slow = RawClient(port: s.plainPort)
        let request = Array("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let started = Date()
        var closedAfter: TimeInterval?
        for byte in request {
            slow.send([byte])
            let fast = runTool("curl", ["-sS", "--max-time", "2", "http://127.0.0.1:\(s.plainPort)/hello"])
            XCTAssertEqual(fast.stdout, "{\"hello\":\"world\"}", "other clients keep being served")
            Thread.sleep(forTimeInterval: 1)
            var probe = pollfd(fd: slow.fd, events: Int16(POLLIN), revents: 0)
            if poll(&probe, 1, 0) > 0 { closedAfter = Date().timeIntervalSince(started); break }
        }
        let (text, closed) = slow.read()
        XCTAssertNotNil(closedAfter, "the trickling client must be cut off before it finishes its head")
        XCTAssertLessThan(closedAfter ?? 99, 4.5)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 408 "), text)
        XCTAssertTrue(closed)
    }

    func testIdleKeepAliveConnectionIsClosed() throws {
        let s = try TestServer { $0.idleTimeout = .seconds(1) }
        defer { s.stop() }
        let client = RawClient(port: s.plainPort)
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(client.read(until: "world\"}").text.hasPrefix("HTTP/1.1 200 "))
        let (rest, closed) = client.read()
        XCTAssertEqual(rest, "", "an idle close sends nothing")
        XCTAssertTrue(closed)
    }

    func testConnectionCapAnswersInsteadOfHanging() throws {
        let s = try TestServer { $0.maxConnections = 2 }
        defer { s.stop() }
        let held = [RawClient(port: s.plainPort), RawClient(port: s.plainPort)]
        Thread.sleep(forTimeInterval: 0.2)
        let (text, closed) = RawClient(port: s.plainPort).read()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 503 "), text)
        XCTAssertTrue(text.contains("over_capacity"), text)
        XCTAssertTrue(closed)
        let tls = runTool("curl", ["-sS", "--max-time", "3", "--cacert", Fixtures.certs + "/ca.pem",
                               "https://localhost:\(s.tlsPort)/hello"])
        XCTAssertNotEqual(tls.status, 0, "over the cap a TLS connection is closed at once")
        XCTAssertNotEqual(tls.status, 28, "closed, not timed out")
        _ = held
    }

    func testWaitsShrinkAsConnectionsFillTheCap() throws {
        let s = try TestServer {
            $0.maxConnections = 4
            $0.headerTimeout = .seconds(30)
            $0.timeoutAtCapacity = .seconds(1)
        }
        defer { s.stop() }
        let first = RawClient(port: s.plainPort)
        first.send("GET /hello HTTP/1.1\r\n")
        Thread.sleep(forTimeInterval: 2)
        var probe = pollfd(fd: first.fd, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&probe, 1, 0), 0, "one connection of four: a slow head has its whole 30 s")
        let others = (0..<3).map { _ in RawClient(port: s.plainPort) }
        others.forEach { $0.send("GET /hello HTTP/1.1\r\n") }
        let (text, closed) = first.read()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 408 "), "at the cap the oldest slow head has had its 1 s: \(text)")
        XCTAssertTrue(closed)
        let (served, _) = RawClient(port: s.plainPort).exchange("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(served.hasPrefix("HTTP/1.1 200 "), "its slot serves the next client: \(served)")
        _ = others
    }

    func testLargeResponseReachesASlowReader() throws {
        let s = try TestServer()
        defer { s.stop() }
        let n = 8 << 20
        let r = runTool("curl", ["-sS", "--limit-rate", "20M", "--cacert", Fixtures.certs + "/ca.pem", "-o", "/dev/null",
                             "-w", "%{size_download}", "https://localhost:\(s.tlsPort)/big?n=\(n)"])
        XCTAssertEqual(r.stdout, "\(n)", r.stderr)
    }

    func testHeadHasNoBody() throws {
        let s = try TestServer()
        defer { s.stop() }
        let (text, _) = RawClient(port: s.plainPort).exchange("HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 "), text)
        XCTAssertTrue(text.contains("Content-Length: 17"), text)
        XCTAssertTrue(text.hasSuffix("\r\n\r\n"), text)
    }

    func testHTTP10ClosesUnlessKeepAlive() throws {
        let s = try TestServer()
        defer { s.stop() }
        let (text, closed) = RawClient(port: s.plainPort).exchange("GET /hello HTTP/1.0\r\n\r\n")
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 "), text)
        XCTAssertTrue(closed)
    }

    func testGracefulShutdownFinishesInFlightRequests() throws {
        let s = try TestServer()
        let busy = RawClient(port: s.plainPort)
        let idle = RawClient(port: s.plainPort)
        busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.1)
        let started = Date()
        s.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5)
        let (text, closed) = busy.read()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 "), text)
        XCTAssertTrue(text.contains("Connection: close"), text)
        XCTAssertTrue(closed)
        XCTAssertTrue(idle.read().closed, "idle connections are closed at shutdown")
        let refused = RawClient.tryConnect(port: s.plainPort)
        XCTAssertFalse(refused, "no longer accepting")
    }
}

extension RawClient {
    static func tryConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
