import Foundation
@testable import GatewayServer
import TestScratch
import XCTest

final class GatewayConfigTests: XCTestCase {
    private func write(_ json: String) throws -> String {
        let path = Scratch.path("gw-config") + ".json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testFileOverDefaultsThenEnvironment() throws {
        let path = try write(#"{"region":"610000","timeouts":{"idleSeconds":5},"limits":{"maxBodyBytes":1024}}"#)
        let config = try GatewayConfig.load(path: path, environment: [
            "IMAGING_GATEWAY_LISTEN": "127.0.0.1:9443, [::1]:9443", "IMAGING_GATEWAY_ROLE": "national"])
        XCTAssertEqual(config.region, "610000")
        XCTAssertEqual(config.role, "national")
        XCTAssertEqual(config.listen, ["127.0.0.1:9443", "[::1]:9443"])
        XCTAssertEqual(config.timeouts.idleSeconds, 5)
        XCTAssertEqual(config.timeouts.headerSeconds, 60, "unset keys keep their defaults")
        XCTAssertEqual(config.limits.maxBodyBytes, 1024)
        XCTAssertEqual(config.limits.maxDecompressedBytes, 64 << 20)
    }

    func testInvalidValuesAreNamed() throws {
        XCTAssertThrowsError(try GatewayConfig.load(path: try write(#"{"region":"61"}"#), environment: [:])) {
            XCTAssertTrue("\($0)".contains("six-digit"), "\($0)")
        }
        XCTAssertThrowsError(try GatewayConfig.load(path: try write(#"{"listen":["nohost"]}"#), environment: [:])) {
            XCTAssertTrue("\($0)".contains("nohost"), "\($0)")
        }
        XCTAssertThrowsError(try GatewayConfig.load(path: try write(#"{"loops":"two"}"#), environment: [:])) {
            XCTAssertTrue("\($0)".contains("loops"), "\($0)")
        }
        XCTAssertThrowsError(try GatewayConfig.load(path: "/nonexistent/gw.json", environment: [:]))
        let peers: [(String, String)] = [
            (#"{"region":"610000","federation":{"peers":[{"region":"610000","url":"https://a:1"}]}}"#, "other than this node's"),
            (#"{"federation":{"peers":[{"region":"110000","url":"http://a:1"}]}}"#, "https URL"),
            (#"{"federation":{"peers":[{"region":"11","url":"https://a:1"}]}}"#, "six-digit"),
            (#"{"federation":{"peers":[{"region":"١١٠٠٠٠","url":"https://a:1"}]}}"#, "six-digit"),
            (#"{"federation":{"lookupDeadlineMs":5}}"#, "lookupDeadlineMs"),
            (#"{"audit":{"retentionDays":30}}"#, "retentionDays"),
            (#"{"audit":{"witnesses":["http://national:8443"]}}"#, "audit.witnesses"),
            (#"{"audit":{"quotas":[{"counter":"coffee","perDay":1}]}}"#, "counter must be one of"),
            (#"{"tokens":{"maxBatch":0}}"#, "tokens.maxBatch"),
            (#"{"timeouts":{"headerSeconds":0}}"#, "timeouts must be at least 1 second"),
            (#"{"timeouts":{"atCapacitySeconds":-5}}"#, "timeouts must be at least 1 second"),
        ]
        for (json, expected) in peers {
            XCTAssertThrowsError(try GatewayConfig.load(path: try write(json), environment: [:]), json) {
                XCTAssertTrue("\($0)".contains(expected), "\(json) → \($0)")
            }
        }
        let ok = try GatewayConfig.load(path: try write(#"{"region":"610000","federation":{"peers":[{"region":"110000","url":"https://bj:8443"}]},"audit":{"enabled":false},"tokens":{"service":true}}"#),
                                        environment: ["IMAGING_GATEWAY_AUDIT": "on"])
        XCTAssertEqual(ok.federation.peers, [GatewayConfig.PeerSettings(region: "110000", url: "https://bj:8443")])
        XCTAssertEqual(ok.federation.lookupDeadlineMs, 800)
        XCTAssertTrue(ok.audit.enabled, "the environment wins over the file")
        XCTAssertTrue(ok.tokens.service)
    }

    func testCheckpointsAreWitnessedByTheNationalNodeUnlessListedOtherwise() throws {
        let national = #""federation":{"gatherTo":"https://national:8443"}"#
        XCTAssertEqual(try GatewayConfig.load(path: try write("{\(national)}"), environment: [:]).auditWitnesses,
                       ["https://national:8443"])
        XCTAssertEqual(try GatewayConfig.load(path: try write(#"{"audit":{"witnesses":[]},"# + national + "}"),
                                              environment: [:]).auditWitnesses, [], "an empty list turns witnessing off")
        XCTAssertEqual(try GatewayConfig.load(path: try write(#"{"audit":{"witnesses":["https://peer:8443"]}}"#),
                                              environment: [:]).auditWitnesses, ["https://peer:8443"])
        XCTAssertEqual(try GatewayConfig.load(path: try write("{}"), environment: [:]).auditWitnesses, [])
    }

    func testAddressSplitting() {
        XCTAssertEqual(GatewayConfig.split("[::]:8443")?.host, "::")
        XCTAssertEqual(GatewayConfig.split("0.0.0.0:80")?.port, 80)
        XCTAssertNil(GatewayConfig.split(":80"))
        XCTAssertNil(GatewayConfig.split("host:99999"))
    }
}
