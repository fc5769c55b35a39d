import Foundation
import GatewayNet
import Synchronization
import XCTest

/// The client against the project's own server, over TLS with a client certificate.
final class HTTPClientTests: XCTestCase {
    private func client(role: String = "clinic", certs: String = Fixtures.certs,
                        configure: (inout HTTPClientConfiguration) -> Void = { _ in }) throws -> HTTPClient {
        let tls = try TLSContext(configuration: TLSConfiguration(
            certificateChainPath: "\(certs)/\(role).pem", privateKeyPath: "\(certs)/\(role)-key.pem",
            trustedCAPath: Fixtures.certs + "/ca.pem"), server: false)
        var config = HTTPClientConfiguration(tls: tls)
        configure(&config)
        return HTTPClient(configuration: config)
    }

    /// Work timed on the client's loop (an open-loop benchmark's sends) runs there, in the
    /// order of its times, whatever the order it was scheduled in.
    func testWorkTimedOnTheClientsLoopRunsInTheOrderOfItsTimes() {
        let client = HTTPClient(configuration: HTTPClientConfiguration())
        let ran = Mutex<[Int]>([])
        let done = expectation(description: "all three ran")
        client.onLoop { loop in
            for (n, delay) in [(3, 30), (1, 10), (2, 20)] {
                loop.schedule(after: .milliseconds(delay)) {
                    if ran.withLock({ $0.append(n); return $0.count }) == 3 { done.fulfill() }
                }
            }
        }
        wait(for: [done], timeout: 5)
        XCTAssertEqual(ran.withLock { $0 }, [1, 2, 3])
    }

    func testMutualTLSIdentityAndKeepAlive() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let c = try client()
        for _ in 0..<10 {
            let r = try await c.execute(HTTPRequest(method: "GET", target: "/"), url: "https://localhost:\(s.tlsPort)/whoami")
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "{\"role\":\"clinic\",\"org\":\"91610000MA6TG0001A\"}")
        }
        XCTAssertEqual(s.server.statistics.snapshot.accepted, 1, "ten sequential requests share one connection")
    }

    func testPostBodyAndGzipResponse() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let c = try client()
        let body = (0..<5000).map { UInt8($0 % 200) }
        let echoed = try await c.execute(HTTPRequest(method: "POST", target: "/", body: body),
                                         url: "https://localhost:\(s.tlsPort)/echo")
        XCTAssertEqual(echoed.body, body)
        let big = try await c.execute(HTTPRequest(method: "GET", target: "/"), url: "https://localhost:\(s.tlsPort)/big?n=300000")
        XCTAssertEqual(big.body.count, 300_000, "gzip decoded transparently")
        XCTAssertNil(big.headers["Content-Encoding"])
    }

    func testDeadlinePasses() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let c = try client()
        let started = ContinuousClock.now
        do {
            _ = try await c.execute(HTTPRequest(method: "GET", target: "/"), url: "http://127.0.0.1:\(s.plainPort)/slow",
                                    deadline: .now + .milliseconds(200))
            XCTFail("the deadline should have passed")
        } catch {
            XCTAssertEqual(error, .timedOut)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(550))
    }

    func testConnectAndTLSFailuresAreNamed() async throws {
        let c = try client()
        do {
            _ = try await c.execute(HTTPRequest(method: "GET", target: "/"), url: "http://127.0.0.1:1/x")
            XCTFail("nothing listens on port 1")
        } catch {
            guard case .connectFailed = error else { return XCTFail("\(error)") }
        }
        let other = try TestServer(certs: Fixtures.expiredCRLCerts)
        defer { other.stop() }
        do {
            _ = try await c.execute(HTTPRequest(method: "GET", target: "/"), url: "https://localhost:\(other.tlsPort)/hello")
            XCTFail("a server from another CA must not be trusted")
        } catch {
            guard case .tlsFailed = error else { return XCTFail("\(error)") }
        }
        do {
            _ = try await c.execute(HTTPRequest(method: "GET", target: "/"), url: "ftp://x/y")
            XCTFail()
        } catch {
            guard case .invalidURL = error else { return XCTFail("\(error)") }
        }
    }

    func testPoolCapsConnectionsAndQueuesTheRest() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let c = try client { $0.maxConnectionsPerOrigin = 3 }
        let url = "https://localhost:\(s.tlsPort)/path/x"
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<60 {
                group.addTask { try await c.execute(HTTPRequest(method: "GET", target: "/"), url: url).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        XCTAssertEqual(statuses, Array(repeating: 200, count: 60))
        XCTAssertLessThanOrEqual(s.server.statistics.snapshot.accepted, 3)
    }

    /// Behind one connection held by a slow answer, queued requests end at their own
    /// deadlines and are never sent; those whose deadline is later are sent once the
    /// connection is free. Two thousand waiting at once, as under an open-loop load.
    func testQueuedRequestsEndAtTheirOwnDeadlinesAndAreNeverSent() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let c = try client { $0.maxConnectionsPerOrigin = 1 }
        let base = "http://127.0.0.1:\(s.plainPort)"
        let started = ContinuousClock.now
        let outcomes = Mutex<[(ok: Bool, timedOut: Bool, at: Duration)]>([])
        let done = DispatchGroup()
        func send(_ path: String, within: Duration) {
            done.enter()
            c.execute(HTTPRequest(method: "GET", target: "/"), url: base + path, deadline: .now + within) { result in
                let timedOut = if case .failure(.timedOut) = result { true } else { false }
                let ok = (try? result.get().status) == 200
                outcomes.withLock { $0.append((ok, timedOut, ContinuousClock.now - started)) }
                done.leave()
            }
        }
        send("/slow", within: .seconds(5))
        try await Task.sleep(for: .milliseconds(50))
        for _ in 0..<2_000 { send("/hello", within: .milliseconds(150)) }
        for _ in 0..<20 { send("/hello", within: .seconds(5)) }
        await withCheckedContinuation { cont in done.notify(queue: .global()) { cont.resume() } }
        let all = outcomes.withLock { $0 }
        XCTAssertEqual(all.filter(\.ok).count, 21)
        XCTAssertEqual(all.filter(\.timedOut).count, 2_000)
        let lastTimeout = all.filter(\.timedOut).map(\.at).max() ?? .zero
        XCTAssertLessThan(lastTimeout, .milliseconds(550), "queued requests ended before the slow answer came")
        XCTAssertEqual(s.server.statistics.snapshot.requests, 21, "no timed-out request reached the server")
    }

    func testStaleKeepAliveConnectionIsRetried() async throws {
        let s = try TestServer { $0.idleTimeout = .seconds(1) }
        defer { s.stop() }
        let c = try client()
        let url = "http://127.0.0.1:\(s.plainPort)/hello"
        _ = try await c.execute(HTTPRequest(method: "GET", target: "/"), url: url)
        try await Task.sleep(for: .milliseconds(1600))
        let again = try await c.execute(HTTPRequest(method: "GET", target: "/"), url: url)
        XCTAssertEqual(again.status, 200)
        XCTAssertEqual(s.server.statistics.snapshot.accepted, 2)
    }
}

/// A client that made its own loop gives back the loop's thread, its descriptors and its
/// connections when it is let go: the agent library makes one per lookup.
final class HTTPClientLifetimeTests: XCTestCase {
    private func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }
    private func threads() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("Threads:") }.flatMap { Int($0.split(separator: "\t").last ?? "") } ?? -1
    }

    func testAClientLetGoReleasesItsLoopAndConnections() async throws {
        let s = try TestServer()
        defer { s.stop() }
        let tls = try TLSContext(configuration: TLSConfiguration(
            certificateChainPath: Fixtures.certs + "/clinic.pem", privateKeyPath: Fixtures.certs + "/clinic-key.pem",
            trustedCAPath: Fixtures.certs + "/ca.pem"), server: false)
        func oneClient() async throws -> Int {
            let c = HTTPClient(configuration: HTTPClientConfiguration(tls: tls))
            return try await c.execute(HTTPRequest(method: "GET", target: "/"), url: "https://localhost:\(s.tlsPort)/whoami").status
        }
        let first = try await oneClient()
        XCTAssertEqual(first, 200)
        try await Task.sleep(for: .milliseconds(600))
        let (fds, threads) = (descriptors(), threads())
        for _ in 0..<40 {
            let status = try await oneClient()
            XCTAssertEqual(status, 200)
        }
        var settled = false
        for _ in 0..<50 where !settled {
            try await Task.sleep(for: .milliseconds(100))
            settled = descriptors() <= fds + 4 && self.threads() <= threads + 2 && s.server.statistics.snapshot.open == 0
        }
        XCTAssertTrue(settled, "40 clients later: \(descriptors()) descriptors (\(fds) before), \(self.threads()) threads "
                      + "(\(threads) before), \(s.server.statistics.snapshot.open) connections open at the server")
    }
}
