import Foundation
import GatewayNet
import GatewayServer
import IndexStore
import Logging
import XCTest

/// Three regional nodes in this process, sharing the first one's development CA: a
/// clinic at one region finds a patient's studies held in all three, by scope; a peer
/// that is down is `error`, one that never answers is `timeout` within the deadline,
/// and a lookup from a peer is never forwarded again.
final class FederationLookupTests: XCTestCase {
    static let token = "v1:" + String(repeating: "F", count: 42) + "Q"

    func testScopesRegionsStatusesAndNoForwarding() throws {
        let base = TestNode.fixedPortBase()
        let regions = ["610000", "110000", "440000"]
        let silent = try SilentListener()
        let first = try TestNode { c in
            c.region = regions[0]
            c.listen = ["127.0.0.1:\(base)"]
            c.federation.lookupDeadlineMs = 600
            c.federation.peers = [GatewayConfig.PeerSettings(region: regions[1], url: "https://localhost:\(base + 1)"),
                                  GatewayConfig.PeerSettings(region: regions[2], url: "https://localhost:\(base + 2)"),
                                  GatewayConfig.PeerSettings(region: "500000", url: "https://localhost:\(silent.port)")]
        }
        defer { first.stop() }
        let certs = first.certs
        var others: [TestNode] = []
        for i in 1...2 {
            others.append(try TestNode { c in
                c.region = regions[i]
                c.listen = ["127.0.0.1:\(base + i)"]
                c.tls.certificate = certs + "/node.pem"
                c.tls.privateKey = certs + "/node-key.pem"
                c.tls.clientCA = certs + "/ca.pem"
                c.federation.peers = regions.indices.filter { $0 != i }.map {
                    GatewayConfig.PeerSettings(region: regions[$0], url: "https://localhost:\(base + $0)")
                }
            })
        }
        defer { others.forEach { $0.stop() } }
        for (i, node) in ([first] + others).enumerated() {
            XCTAssertEqual(upload(first, to: node, uid: "1.2.156.3.\(i + 1)", region: regions[i]).status, 200)
        }

        let begun = ContinuousClock.now
        let all = lookup(first, at: first, "")
        XCTAssertLessThan(ContinuousClock.now - begun, .milliseconds(600 + 400), "the silent peer costs the deadline, no more")
        XCTAssertEqual(uids(all), ["1.2.156.3.1", "1.2.156.3.2", "1.2.156.3.3"])
        XCTAssertEqual(statuses(all), ["610000": "complete", "110000": "complete", "440000": "complete", "500000": "timeout"])
        XCTAssertEqual(uids(lookup(first, at: first, "&scope=local")), ["1.2.156.3.1"])
        let one = lookup(first, at: first, "&scope=region:110000")
        XCTAssertEqual(uids(one), ["1.2.156.3.2"])
        XCTAssertEqual(statuses(one), ["110000": "complete"])
        let unknown = first.curl("clinic", [first.baseURL + "/v1/patients/\(Self.token)/studies?purpose=TREAT&scope=region:990000"])
        XCTAssertEqual(unknown.status, 404, unknown.body)

        // The same through QIDO-RS (Warning headers) and FHIR (an OperationOutcome entry).
        let qido = first.curl("clinic", ["-D", "-", "https://localhost:\(first.port)/dicomweb/studies?PatientID=\(Self.token)&purpose=TREAT"])
        XCTAssertEqual(qido.status, 200, qido.body)
        XCTAssertEqual(qido.body.components(separatedBy: "\"0020000D\"").count - 1, 3, qido.body)
        XCTAssertTrue(qido.body.contains("Warning: 299 imaging-gateway \"region 500000: timeout\""), qido.body)
        XCTAssertFalse(qido.body.contains("region 110000"), qido.body)
        let fhir = first.curl("clinic", ["https://localhost:\(first.port)/fhir/ImagingStudy?subject:identifier=\(Self.token)&purpose=TREAT"])
        XCTAssertEqual(fhir.status, 200, fhir.body)
        let bundle = (try? JSONSerialization.jsonObject(with: Data(fhir.body.utf8))) as? [String: Any] ?? [:]
        let entries = bundle["entry"] as? [[String: Any]] ?? []
        let types = entries.compactMap { ($0["resource"] as? [String: Any])?["resourceType"] as? String }
        XCTAssertEqual(types.filter { $0 == "ImagingStudy" }.count, 3, fhir.body)
        XCTAssertTrue(fhir.body.contains("region 500000: timeout"), fhir.body)
        XCTAssertEqual(first.curl("clinic", ["https://localhost:\(first.port)/dicomweb/studies?StudyDate=20241101-20241101&scope=all&purpose=TREAT"]).status,
                       400, "searches other than by patient stay local")

        // A peer's lookup is answered locally, whatever scope it asks for: no loops.
        let asPeer = lookup(first, at: others[0], "&scope=all", role: "node")
        XCTAssertEqual(uids(asPeer), ["1.2.156.3.2"])
        XCTAssertEqual(statuses(asPeer), ["110000": "complete"])
        // An invalid scope is refused from anyone, a peer included (schemathesis found a
        // peer's empty scope answered 200), and region codes are six ASCII digits.
        for (role, scope) in [("clinic", ""), ("node", ""), ("node", "everywhere"), ("clinic", "region:%EF%BC%91%EF%BC%91%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%90")] {
            let refused = first.curl(role, [first.baseURL + "/v1/patients/\(Self.token)/studies?purpose=TREAT&scope=\(scope)"])
            XCTAssertEqual(refused.status, 400, "\(role) scope=\(scope): \(refused.body)")
            XCTAssertTrue(refused.body.contains("invalid_scope"), refused.body)
        }

        // A stopped peer is an error. The silent one timed out three times (native, QIDO-RS,
        // FHIR), so its circuit breaker is open: it is reported as an error at once.
        others[1].stop()
        let started = ContinuousClock.now
        let degraded = lookup(first, at: first, "")
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(550), "no peer waited for: one refused, one skipped")
        XCTAssertEqual(uids(degraded), ["1.2.156.3.1", "1.2.156.3.2"], "the partial answer, said plainly")
        XCTAssertEqual(statuses(degraded)["440000"], "error")
        XCTAssertEqual(statuses(degraded)["500000"], "error")
    }

    /// Peers that answer 500, garbage, a batch without one answer per lookup, or a lookup
    /// answer that is not the lookup's JSON: each is `error`, the caller answers at once
    /// with what it has, and keeps serving.
    func testPeersAnsweringGarbageOr500AreErrors() throws {
        let base = TestNode.fixedPortBase()
        let bad = [("500000", base + 1), ("510000", base + 2), ("520000", base + 3), ("530000", base + 4), ("540000", base + 5)]
        let first = try TestNode { c in
            c.region = "610000"
            c.listen = ["127.0.0.1:\(base)"]
            c.federation.peers = bad.map { GatewayConfig.PeerSettings(region: $0.0, url: "https://localhost:\($0.1)") }
        }
        defer { first.stop() }
        let answers: [HTTPResponse] = [
            HTTPResponse(status: 500, body: Array("oops".utf8)),
            HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]), body: [0xFF, 0x00, 0x7B]),
            .json("{\"answers\":[{\"status\":200,\"body\":{\"studies\":[{\"no\":\"record\"}]}}]}"),
            // Well formed, but no upload would pass it: a peer's records are checked as uploads are.
            .json("{\"answers\":[{\"status\":200,\"body\":{\"studies\":[{\"patientToken\":\"\(Self.token)\","
                  + "\"studyInstanceUID\":\"1.2.3\",\"studyDate\":\"20241399\",\"modalitiesInStudy\":[\"CT\"],"
                  + "\"storageUnit\":\"91610000MA6TG0001A\",\"retrieveURL\":\"https://pacs.example/dicomweb\","
                  + "\"region\":\"530000\"}]}}]}"),
            .json("{\"answers\":[]}"),
        ]
        var servers: [HTTPServer] = []
        for ((_, port), answer) in zip(bad, answers) {
            var router = Router()
            router.add("POST", "/v1/federation/lookups", .inline { _ in answer })
            servers.append(try TestNode.peer(port: port, certs: first.certs, router: router))
        }
        defer { servers.forEach { $0.shutdown(grace: .zero) } }
        let begun = ContinuousClock.now
        let answer = lookup(first, at: first, "")
        XCTAssertLessThan(ContinuousClock.now - begun, .milliseconds(500))
        XCTAssertEqual(statuses(answer), ["610000": "complete", "500000": "error", "510000": "error", "520000": "error",
                                          "530000": "error", "540000": "error"])
        XCTAssertEqual(first.curl("clinic", [first.baseURL + "/healthz"]).status, 200)
    }

    /// A clinic's cross-region lookup is audited where the clinic asked with every study it
    /// received, the peer's included, and the peer's own event (actor: the asking node)
    /// carries the same request ID, so the two logs join.
    func testACrossRegionLookupIsAuditedWithEveryStudyReturnedUnderOneRequestID() async throws {
        let base = TestNode.fixedPortBase()
        let asking = try TestNode.askingRegion(at: base)
        defer { asking.stop() }
        let certs = asking.certs
        let holding = try TestNode { c in
            c.region = "610000"
            c.listen = ["127.0.0.1:\(base + 1)"]
            c.tls.certificate = certs + "/node.pem"
            c.tls.privateKey = certs + "/node-key.pem"
            c.tls.clientCA = certs + "/ca.pem"
        }
        defer { holding.stop() }
        XCTAssertEqual(upload(asking, to: holding, uid: "1.2.156.3.9", region: "610000").status, 200)
        let answer = asking.curl("clinic", ["-H", "X-Request-ID: join-me-1",
                                            asking.baseURL + "/v1/patients/\(Self.token)/studies?purpose=TREAT"])
        XCTAssertEqual(answer.status, 200, answer.body)

        func events(of node: TestNode) async throws -> [[String: Any]] {
            let store = try SQLiteIndexStore(path: node.gateway.config.dataDirectory + "/index.sqlite", readers: 1)
            return try await store.events(from: 0, limit: 1_000).compactMap {
                try JSONSerialization.jsonObject(with: Data($0.text.utf8)) as? [String: Any]
            }.filter { $0["requestID"] as? String == "join-me-1" }
        }
        let here = try await events(of: asking)
        XCTAssertEqual(here.count, 1)
        XCTAssertEqual(here.first?["studyInstanceUIDs"] as? [String], ["1.2.156.3.9"], "the peer's study, audited where it was asked for")
        XCTAssertEqual(here.first?["patientTokens"] as? [String], [Self.token])
        XCTAssertTrue((here.first?["actor"] as? String ?? "").hasPrefix("urn:imaging-gateway:clinic:"), "\(here)")
        let there = try await events(of: holding)
        XCTAssertEqual(there.count, 1)
        XCTAssertEqual(there.first?["studyInstanceUIDs"] as? [String], ["1.2.156.3.9"])
        XCTAssertTrue((there.first?["actor"] as? String ?? "").hasPrefix("urn:imaging-gateway:node:"), "\(there)")
    }

    private func upload(_ certsOf: TestNode, to node: TestNode, uid: String, region: String) -> (status: Int, body: String) {
        let record = "{\"patientToken\":\"\(Self.token)\",\"studyInstanceUID\":\"\(uid)\",\"studyDate\":\"20241101\","
            + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
            + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"\(region)\"}"
        return certsOf.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", record,
                                         "https://localhost:\(node.port)/v1/index/studies"])
    }

    private func lookup(_ certsOf: TestNode, at node: TestNode, _ extra: String, role: String = "clinic") -> [String: Any] {
        let answer = certsOf.curl(role, ["https://localhost:\(node.port)/v1/patients/\(Self.token)/studies?purpose=TREAT" + extra])
        XCTAssertEqual(answer.status, 200, answer.body)
        return (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any] ?? [:]
    }

    private func uids(_ answer: [String: Any]) -> [String] {
        ((answer["studies"] as? [[String: Any]]) ?? []).compactMap { $0["studyInstanceUID"] as? String }.sorted()
    }

    private func statuses(_ answer: [String: Any]) -> [String: String] {
        var out: [String: String] = [:]
        for r in (answer["regions"] as? [[String: Any]]) ?? [] { out[r["region"] as! String] = r["status"] as? String }
        return out
    }
}

extension TestNode {
    /// A node of region 110000 listening on `base`, whose one peer, region 610000, is to
    /// listen on `base + 1`.
    static func askingRegion(at base: Int, lookupDeadlineMs: Int = 800) throws -> TestNode {
        try TestNode { c in
            c.region = "110000"
            c.listen = ["127.0.0.1:\(base)"]
            c.federation.peers = [GatewayConfig.PeerSettings(region: "610000", url: "https://localhost:\(base + 1)")]
            c.federation.lookupDeadlineMs = lookupDeadlineMs
        }
    }

    /// A stand-in peer: `router` over TLS on `port` with the node certificate in `certs`.
    static func peer(port: Int, certs: String, router: Router) throws -> HTTPServer {
        let tls = try TLSContext(configuration: TLSConfiguration(certificateChainPath: certs + "/node.pem",
                                                                 privateKeyPath: certs + "/node-key.pem"), server: true)
        let server = HTTPServer(configuration: HTTPServerConfiguration(listeners: [ListenerConfiguration(host: "127.0.0.1", port: port, tls: tls)]),
                                router: router, logger: Logger(label: "stand-in-peer"))
        _ = try server.start()
        return server
    }
}

/// A TCP port that completes handshakes (the kernel's backlog) but never answers: a
/// stalled peer.
final class SilentListener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
