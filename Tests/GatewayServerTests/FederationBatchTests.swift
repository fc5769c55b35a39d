import Foundation
import GatewayNet
import GatewayServer
import IndexStore
import Logging
import Synchronization
import XCTest

/// `POST /v1/federation/lookups`: a peer's lookups in one request, each answered and
/// audited as its own GET would be; and the asking side, which sends lookups bound for one
/// peer together by Nagle's rule (one partial batch on the wire; full ones leave at once).
final class FederationBatchTests: XCTestCase {
    static let token = FederationLookupTests.token
    static let other = "v1:" + String(repeating: "G", count: 42) + "Q"

    func testABatchAnswersEachLookupAsItsOwnRequestWould() async throws {
        let node = try TestNode()
        defer { node.stop() }
        let record = "{\"patientToken\":\"\(Self.token)\",\"studyInstanceUID\":\"1.2.156.7.1\",\"studyDate\":\"20241101\","
            + "\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
            + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610000\"}"
        XCTAssertEqual(node.curl("hospital", ["-H", "Content-Type: application/x-ndjson", "--data-binary", record,
                                              node.baseURL + "/v1/index/studies"]).status, 200)
        let lookups: [(id: String, target: String)] = [
            ("batch-a", "/v1/patients/\(Self.token)/studies?purpose=TREAT&scope=all"),
            ("batch-b", "/v1/patients/\(Self.other)/studies?purpose=TREAT"),
            ("batch-c", "/v1/patients/\(Self.token)/studies"),
            ("batch-d", "/v1/index/studies"),
            ("batch-e", "/v1/patients/not-a-token/studies?purpose=TREAT"),
        ]
        let body = "{\"lookups\":[" + lookups.map { "{\"requestID\":\"\($0.id)\",\"target\":\"\($0.target)\"}" }
            .joined(separator: ",") + "]}"
        let answer = post(node, as: "node", body)
        XCTAssertEqual(answer.status, 200, answer.body)
        let answers = (answer.json["answers"] as? [[String: Any]]) ?? []
        XCTAssertEqual(answers.map { $0["status"] as? Int }, [200, 200, 400, 400, 400])
        let pages = answers.map { $0["body"] as? [String: Any] ?? [:] }
        let found = (pages[0]["studies"] as? [[String: Any]] ?? []).compactMap { $0["studyInstanceUID"] as? String }
        XCTAssertEqual(found, ["1.2.156.7.1"])
        XCTAssertEqual(pages[0]["scope"] as? String, "local", "a peer's lookup is never forwarded")
        XCTAssertEqual(pages[1]["count"] as? Int, 0)
        let codes = pages[2...].map { ($0["error"] as? [String: Any])?["code"] as? String }
        XCTAssertEqual(codes, ["purpose_required", "invalid_target", "invalid_token"])

        let store = try SQLiteIndexStore(path: node.gateway.config.dataDirectory + "/index.sqlite", readers: 1)
        let events = try await store.events(from: 0, limit: 1_000).compactMap {
            try JSONSerialization.jsonObject(with: Data($0.text.utf8)) as? [String: Any]
        }
        func audited(_ id: String) -> [[String: Any]] { events.filter { $0["requestID"] as? String == id } }
        XCTAssertEqual(audited("batch-a").first?["studyInstanceUIDs"] as? [String], ["1.2.156.7.1"])
        XCTAssertTrue((audited("batch-a").first?["actor"] as? String ?? "").hasPrefix("urn:imaging-gateway:node:"))
        XCTAssertEqual(audited("batch-b").count, 1, "a lookup that found nothing is audited too")
        XCTAssertEqual(audited("batch-d").count, 0, "a refused target reads nothing")

        XCTAssertEqual(post(node, as: "clinic", body).status, 403, "peers only")
        XCTAssertEqual(post(node, as: "node", "{\"lookups\":[]}").json.code, "invalid_batch")
        XCTAssertEqual(post(node, as: "node", "[1,2").json.code, "invalid_batch")
        XCTAssertEqual(post(node, as: "node", "{\"lookups\":[{\"requestID\":{},\"target\":\"\"}]}").json.code, "invalid_batch")
        let tooMany = "{\"lookups\":[" + Array(repeating: "{\"target\":\"\(lookups[0].target)\"}", count: 65)
            .joined(separator: ",") + "]}"
        XCTAssertEqual(post(node, as: "node", tooMany).json.code, "invalid_batch")
        XCTAssertEqual(node.curl("clinic", [node.baseURL + "/healthz"]).status, 200)
    }

    /// 150 clinics' lookups at once towards a peer that takes 100 ms a request: every one
    /// is answered exactly once, in a few requests of at most 64; the first leaves alone,
    /// and a full batch leaves while another is out. Timing is taken out of it, since a CI
    /// run saw too few lookups arrive within one 100 ms round trip to fill a batch: the
    /// client's connections are opened before the lookups start, and the peer holds the
    /// first request to reach it until a second arrives (3 s at most), so that the lookups
    /// queue behind it however slowly a loaded machine makes them arrive.
    func testLookupsBoundForOnePeerShareRequestsByNaglesRule() async throws {
        let base = TestNode.fixedPortBase()
        let asking = try TestNode.askingRegion(at: base, lookupDeadlineMs: 10_000)
        defer { asking.stop() }
        let certs = asking.certs
        let seen = Mutex<(batches: [Int], open: Int, mostOpen: Int)>(([], 0, 0))
        var router = Router()
        router.add("POST", "/v1/federation/lookups", .async { request in
            let count = (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
                .flatMap { $0["lookups"] as? [Any] }?.count ?? 0
            let first = seen.withLock { s -> Bool in
                s.batches.append(count)
                s.open += 1
                s.mostOpen = max(s.mostOpen, s.open)
                return s.batches.count == 1
            }
            if first {
                let until = ContinuousClock.now + .seconds(3)
                while seen.withLock({ $0.batches.count }) < 2, ContinuousClock.now < until {
                    try await Task.sleep(for: .milliseconds(5))
                }
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
            seen.withLock { $0.open -= 1 }
            let one = "{\"status\":200,\"body\":{\"studies\":[]}}"
            return .json("{\"answers\":[" + Array(repeating: one, count: count).joined(separator: ",") + "]}")
        })
        let peer = try TestNode.peer(port: base + 1, certs: certs, router: router)
        defer { peer.shutdown(grace: .zero) }

        let clientTLS = try TLSContext(configuration: TLSConfiguration(certificateChainPath: certs + "/clinic.pem",
                                                                       privateKeyPath: certs + "/clinic-key.pem",
                                                                       trustedCAPath: certs + "/ca.pem"), server: false)
        var settings = HTTPClientConfiguration(tls: clientTLS)
        settings.maxConnectionsPerOrigin = 150
        let client = HTTPClient(configuration: settings)
        // The 150 connections are opened first, so that the lookups arrive at the pace of
        // requests, not of TLS handshakes (which a loaded machine spreads over seconds).
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<150 {
                group.addTask { _ = try? await client.execute(HTTPRequest(method: "GET", target: "/"), url: asking.baseURL + "/healthz") }
            }
        }
        let statuses = await withTaskGroup(of: String.self) { group in
            for _ in 0..<150 {
                group.addTask {
                    let url = asking.baseURL + "/v1/patients/\(Self.token)/studies?purpose=TREAT"
                    guard let response = try? await client.execute(HTTPRequest(method: "GET", target: "/"), url: url),
                          let page = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                          let regions = page["regions"] as? [[String: Any]]
                    else { return "failed" }
                    return regions.first { $0["region"] as? String == "610000" }?["status"] as? String ?? "missing"
                }
            }
            var all: [String] = []
            for await status in group { all.append(status) }
            return all
        }
        XCTAssertEqual(statuses, Array(repeating: "complete", count: 150))
        let (batches, mostOpen) = seen.withLock { ($0.batches, $0.mostOpen) }
        XCTAssertEqual(batches.reduce(0, +), 150, "every lookup asked exactly once")
        // The first lookup found nothing out and left alone. Its request may reach the peer
        // after the first full batch, whose connection was up first: the order is not asserted.
        XCTAssertTrue(batches.contains(1), "nothing was out: the first lookup left alone, at once: \(batches)")
        XCTAssertLessThanOrEqual(batches.count, 12, "\(batches)")
        XCTAssertLessThanOrEqual(batches.max() ?? 0, 64)
        XCTAssertGreaterThan(mostOpen, 1, "a full batch does not wait: \(batches)")
    }

    /// A peer from before the batch call (it has only the GET route) answers the batch 404;
    /// the lookup is then asked as its own GET, under its request ID, and comes back found.
    func testAPeerWithoutTheBatchCallIsAskedOneGetPerLookup() throws {
        let base = TestNode.fixedPortBase()
        let asking = try TestNode.askingRegion(at: base)
        defer { asking.stop() }
        let certs = asking.certs
        let asked = Mutex<[String]>([])
        var router = Router()
        router.add("GET", "/v1/patients/{token}/studies", .inline { request in
            asked.withLock { $0.append("GET \(request.headers["X-Request-ID"] ?? "-")") }
            return .json("{\"studies\":[{\"patientToken\":\"\(Self.token)\",\"studyInstanceUID\":\"1.2.156.7.2\","
                         + "\"studyDate\":\"20241101\",\"modalitiesInStudy\":[\"CT\"],\"storageUnit\":\"91610000MA6TG0001A\","
                         + "\"retrieveURL\":\"https://pacs.example/dicomweb\",\"region\":\"610000\"}]}")
        })
        let peer = try TestNode.peer(port: base + 1, certs: certs, router: router)
        defer { peer.shutdown(grace: .zero) }
        let answer = asking.curl("clinic", ["-H", "X-Request-ID: old-peer-1",
                                            asking.baseURL + "/v1/patients/\(Self.token)/studies?purpose=TREAT"])
        XCTAssertEqual(answer.status, 200, answer.body)
        let page = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any] ?? [:]
        let regions = (page["regions"] as? [[String: Any]] ?? []).filter { $0["region"] as? String == "610000" }
        XCTAssertEqual(regions.first?["status"] as? String, "complete", answer.body)
        XCTAssertEqual((page["studies"] as? [[String: Any]])?.compactMap { $0["studyInstanceUID"] as? String }, ["1.2.156.7.2"])
        XCTAssertEqual(asked.withLock { $0 }, ["GET old-peer-1"])
    }

    private func post(_ node: TestNode, as role: String, _ body: String) -> (status: Int, body: String, json: [String: Any]) {
        let answer = node.curl(role, ["-H", "Content-Type: application/json", "--data-binary", body,
                                      node.baseURL + "/v1/federation/lookups"])
        let json = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any] ?? [:]
        return (answer.status, answer.body, json)
    }
}

private extension Dictionary where Key == String, Value == Any {
    var code: String? { (self["error"] as? [String: Any])?["code"] as? String }
}
