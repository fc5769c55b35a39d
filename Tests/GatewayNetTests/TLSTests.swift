import Foundation
import TestScratch
import XCTest

/// TLS and mutual TLS against real peers: curl and openssl s_client.
final class TLSTests: XCTestCase {
    nonisolated(unsafe) static var server: TestServer!
    var certs: String { Fixtures.certs }
    var url: String { "https://localhost:\(Self.server.tlsPort)" }

    override class func setUp() { server = try! TestServer() }
    override class func tearDown() { server.stop() }

    private func curl(_ path: String, role: String? = nil, _ extra: [String] = []) -> RunResult {
        var args = ["-sS", "--http1.1", "--cacert", certs + "/ca.pem", "-w", "\n%{http_code}"]
        if let role { args += ["--cert", "\(certs)/\(role).pem", "--key", "\(certs)/\(role)-key.pem"] }
        return runTool("curl", args + extra + [url + path])
    }

    func testServesWithoutClientCertificate() {
        let r = curl("/hello")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "{\"hello\":\"world\"}\n200")
    }

    func testRoleProtectedRouteNeedsCertificate() {
        let r = curl("/whoami")
        XCTAssertTrue(r.stdout.hasSuffix("401"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\"code\":\"client_certificate_required\""), r.stdout)
    }

    func testPeerIdentityReachesHandler() {
        let r = curl("/whoami", role: "clinic")
        XCTAssertEqual(r.stdout, "{\"role\":\"clinic\",\"org\":\"91610000MA6TG0001A\"}\n200", r.stderr)
    }

    func testWrongRoleIsForbidden() {
        let r = curl("/whoami", role: "reader")
        XCTAssertTrue(r.stdout.hasSuffix("403"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\"code\":\"role_forbidden\""), r.stdout)
    }

    func testRevokedCertificateFailsHandshake() {
        let r = curl("/hello", role: "revoked-clinic")
        XCTAssertNotEqual(r.status, 0, "a revoked certificate must not complete the handshake")
        XCTAssertFalse(r.stdout.contains("world"))
        XCTAssertEqual(curl("/hello", role: "clinic").status, 0, "an unrevoked one still works")
    }

    func testExpiredCRLFailsClosed() throws {
        let expired = try TestServer(certs: Fixtures.expiredCRLCerts)
        defer { expired.stop() }
        let c = Fixtures.expiredCRLCerts
        let r = runTool("curl", ["-sS", "--http1.1", "--cacert", c + "/ca.pem", "--cert", c + "/clinic.pem",
                             "--key", c + "/clinic-key.pem", "https://localhost:\(expired.tlsPort)/hello"])
        XCTAssertNotEqual(r.status, 0, "a CRL past its nextUpdate must reject every client certificate")
    }

    func testUntrustedClientCertificateFailsHandshake() {
        let other = Fixtures.expiredCRLCerts
        let r = runTool("curl", ["-sS", "--http1.1", "--cacert", certs + "/ca.pem", "--cert", other + "/clinic.pem",
                             "--key", other + "/clinic-key.pem", url + "/hello"])
        XCTAssertNotEqual(r.status, 0)
    }

    private func sClient(_ flags: [String]) -> RunResult {
        runTool("openssl", ["s_client", "-connect", "127.0.0.1:\(Self.server.tlsPort)", "-CAfile", certs + "/ca.pem",
                        "-alpn", "http/1.1"] + flags, stdin: Data("Q\n".utf8))
    }

    func testTLS11AndTLS12AreRefusedByDefault() {
        XCTAssertNotEqual(sClient(["-tls1_1"]).status, 0)
        XCTAssertNotEqual(sClient(["-tls1_2"]).status, 0)
    }

    func testTLS13WithALPNAndAEAD() {
        let r = sClient(["-tls1_3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("ALPN protocol: http/1.1"), r.stdout)
        XCTAssertTrue(r.stdout.contains("TLSv1.3"), r.stdout)
        XCTAssertTrue(r.stdout.contains("TLS_AES_128_GCM_SHA256") || r.stdout.contains("TLS_AES_256_GCM_SHA384")
                      || r.stdout.contains("TLS_CHACHA20_POLY1305_SHA256"), r.stdout)
    }

    func testGzipRequestAndResponse() throws {
        let payload = Data((0..<20000).map { UInt8($0 % 251) })
        let dir = Scratch.path("gw-gzip")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try payload.write(to: URL(fileURLWithPath: dir + "/body"))
        XCTAssertEqual(runTool("gzip", ["-kf", dir + "/body"]).status, 0)
        let r = runTool("curl", ["-sS", "--http1.1", "--cacert", certs + "/ca.pem", "-H", "Content-Encoding: gzip",
                             "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(dir)/body.gz",
                             "-o", dir + "/echoed", "-D", dir + "/headers", "--compressed", url + "/echo"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/echoed")), payload)
        let headers = try String(contentsOfFile: dir + "/headers", encoding: .utf8).lowercased()
        XCTAssertTrue(headers.contains("content-encoding: gzip"), headers)
    }

    func testGzipBombHitsTheLimit() throws {
        let dir = Scratch.path("gw-bomb")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let bomb = runTool("/bin/sh", ["-c", "head -c 200000000 /dev/zero | gzip -9 > \(dir)/bomb.gz"])
        XCTAssertEqual(bomb.status, 0)
        let r = runTool("curl", ["-sS", "--http1.1", "--cacert", certs + "/ca.pem", "-H", "Content-Encoding: gzip",
                             "--data-binary", "@\(dir)/bomb.gz", "-w", "\n%{http_code}", url + "/echo"])
        XCTAssertTrue(r.stdout.hasSuffix("413"), r.stdout)
        XCTAssertTrue(r.stdout.contains("decompressed_too_large"), r.stdout)
    }
}
