@testable import GatewayServer
import XCTest

/// The order of an audit event's patient tokens: each once, in the order of their UTF-8
/// bytes, checked against a plain sort of the byte arrays.
final class TokenOrderTests: XCTestCase {
    func testDistinctTokensComeInByteOrder() {
        // Long shared beginnings (past the 16 bytes read as numbers), zero bytes, strings
        // that begin other strings, repeats, and text beyond ASCII.
        let pieces = ["v1:", "v1:AAAAAAAAAAAAAAAA", "\u{0}", "a", "b", "é", "€", "~", ""]
        var tokens: [String] = []
        for _ in 0..<2_000 {
            tokens.append((0..<Int.random(in: 0...4)).map { _ in pieces.randomElement()! }.joined())
        }
        let expected = Set(tokens.map { Array($0.utf8) }).sorted { $0.lexicographicallyPrecedes($1) }
        XCTAssertEqual(Auditor.distinctInByteOrder(tokens).map { Array($0.utf8) }, expected)
        XCTAssertEqual(Auditor.distinctInByteOrder([]), [])
    }
}
