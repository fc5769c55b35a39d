import AuditLog
import Foundation
import XCTest

/// The leaf's bytes are written by hand for speed; Foundation's encoder, with sorted keys,
/// is the independent reference they must equal byte for byte (a leaf hash is over them).
final class AuditEventTests: XCTestCase {
    private func reference(_ event: AuditEvent) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(event))
    }

    func testCanonicalBytesEqualSortedKeyEncoding() throws {
        var full = AuditEvent(requestID: "req-\"1\"", actor: "urn:imaging-gateway:clinic:91610000MA0000000X",
                              eventID: .query, action: .read, outcome: .minorFailure, purposeOfUse: "TREAT",
                              operation: "GET /v1/patients/{token}/studies", patientTokens: ["v1:abc", "v1:d\\e"],
                              studyInstanceUIDs: ["1.2.3", "1.2.4"], count: 2, counter: "lookups")
        full.leafIndex = 41
        var odd = AuditEvent(requestID: "tab\there\u{01}\nnew 中文", actor: "anonymous", eventID: .securityAlert,
                             action: .execute, outcome: .seriousFailure, operation: "POST /x", counter: "refusals")
        odd.leafIndex = nil
        for event in [full, odd] {
            XCTAssertEqual(String(decoding: event.canonical, as: UTF8.self), String(decoding: try reference(event), as: UTF8.self))
            XCTAssertEqual(try JSONDecoder().decode(AuditEvent.self, from: Data(event.canonical)), event)
        }
    }

    func testTimesAreRFC3339UTCWithMilliseconds() {
        func time(_ seconds: Double) -> String {
            AuditEvent(time: Date(timeIntervalSince1970: seconds), requestID: "r", actor: "a", eventID: .query,
                       action: .read, outcome: .success, operation: "GET /", counter: "lookups").time
        }
        XCTAssertEqual(time(0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(time(1_795_579_506.789), "2026-11-25T04:05:06.789Z")
        XCTAssertEqual(time(253_402_300_799.5), "9999-12-31T23:59:59.500Z")
    }
}
