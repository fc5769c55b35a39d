@testable import BenchCore
import Foundation
import GatewayNet
import GatewayServer
import ImagingIndex
import IndexStore
import Logging
import TestScratch
import XCTest

final class SeederTests: XCTestCase {
    func testSeedLoadsExactlyTheStudiesAskedForAcrossStorageUnits() async throws {
        var config = GatewayConfig()
        config.dataDirectory = Scratch.path("gw-seed")
        config.listen = ["127.0.0.1:0"]
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let gateway = try Gateway(config: config, logger: logger)
        let port = try gateway.start()[0]
        defer { gateway.shutdown() }
        let certs = config.dataDirectory + "/dev-certs"
        let tls = try TLSContext(configuration: TLSConfiguration(certificateChainPath: certs + "/node.pem",
                                                                 privateKeyPath: certs + "/node-key.pem",
                                                                 trustedCAPath: certs + "/ca.pem"), server: false)
        let client = HTTPClient(configuration: HTTPClientConfiguration(tls: tls))
        let outcome = Seeder.run(client: client, endpoint: HTTPEndpoint("https://localhost:\(port)")!, from: 0, count: 2500,
                                 batchSize: 1000, connections: 2) { _, _ in }
        XCTAssertEqual(outcome.stored, 2500)
        XCTAssertEqual(outcome.failedBatches, 0)
        let store = try SQLiteIndexStore(path: config.dataDirectory + "/index.sqlite", readers: 1)
        let count = try await store.count()
        XCTAssertEqual(count, 2500)
        var q = StudyQuery(patientToken: SyntheticStudies.token(10))
        q.limit = 10
        let patient = try await store.query(q)
        XCTAssertEqual(patient.count, 4, "four studies per patient")
        XCTAssertEqual(Set(patient.map(\.storageUnit)).count, 4, "spread over storage units")
        let again = Seeder.run(client: client, endpoint: HTTPEndpoint("https://localhost:\(port)")!, from: 0, count: 1000,
                               batchSize: 1000, connections: 1) { _, _ in }
        XCTAssertEqual(again.stored, 1000)
        let unchanged = try await store.count()
        XCTAssertEqual(unchanged, 2500, "a re-run updates, never duplicates")

        let clinic = try TLSContext(configuration: TLSConfiguration(certificateChainPath: certs + "/clinic.pem",
                                                                    privateKeyPath: certs + "/clinic-key.pem",
                                                                    trustedCAPath: certs + "/ca.pem"), server: false)
        let reader = HTTPClient(configuration: HTTPClientConfiguration(tls: clinic))
        for scenario in [Scenarios.tokenLookup, Scenarios.qidoLookup, Scenarios.fhirLookup, Scenarios.qidoMonthCT, Scenarios.healthz] {
            for n in [0, 1, 17] {
                var (request, path) = scenario.makeRequest(n)
                request.target = path
                let r = try await reader.execute(request, url: "https://localhost:\(port)" + path)
                XCTAssertTrue([200, 204].contains(r.status), "\(scenario.name) #\(n): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
            }
        }
        let ct = try await reader.execute(HTTPRequest(method: "GET", target: "/"),
                                          url: "https://localhost:\(port)" + Scenarios.qidoMonthCT.makeRequest(0).path)
        XCTAssertEqual(ct.status, 200, "a seeded month has CT studies")
    }

    func testSyntheticStorageUnitsAreValidCodes() {
        for u in 0..<SyntheticStudies.storageUnitCount {
            XCTAssertTrue(Codes.isUSCC(SyntheticStudies.storageUnit(u)), "unit \(u)")
        }
    }
}
