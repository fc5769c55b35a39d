@testable import GatewayServer
import ImagingIndex
import XCTest

/// Workitem and transaction UIDs: 2.25 and a version 4 UUID as one decimal integer (PS3.5
/// B.2), checked against integers computed independently.
final class UIDTests: XCTestCase {
    func testAUUIDBecomesItsDecimalIntegerWithVersionAndVariantSet() {
        // X.667's example UUID with its version nibble made 4: f81d4fae-7dec-41d0-a765-00a0c91e6bf6.
        XCTAssertEqual(UIDs.make(high: 0xF81D_4FAE_7DEC_41D0, low: 0xA765_00A0_C91E_6BF6),
                       "2.25.329800735698586855969233156254476430326")
        XCTAssertEqual(UIDs.make(high: 0xF81D_4FAE_7DEC_11D0, low: 0xE765_00A0_C91E_6BF6),
                       "2.25.329800735698586855969233156254476430326", "version and variant bits are forced")
        XCTAssertEqual(UIDs.make(high: 0, low: 0), "2.25.302240678275694148452352")
    }

    func testRandomUIDsAreValidAndDistinct() {
        let made = (0..<1_000).map { _ in UIDs.make() }
        XCTAssertEqual(Set(made).count, made.count)
        for uid in made { XCTAssertTrue(Codes.isUID(uid), uid) }
    }
}
