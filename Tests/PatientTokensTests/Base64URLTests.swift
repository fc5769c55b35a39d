import Foundation
import PatientTokens
import XCTest

final class Base64URLTests: XCTestCase {
    /// RFC 4648 §10's vectors, which use no character that differs between the alphabets,
    /// without their padding.
    func testTheRFCVectorsEncodeAndDecode() {
        let vectors = ["": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64URL.encode(Array(plain.utf8)), encoded)
            XCTAssertEqual(Base64URL.decode(encoded), Array(plain.utf8), encoded)
        }
    }

    /// Against Foundation's base64 with the §5 substitutions, for every length up to 100
    /// and bytes that use all 64 characters.
    func testEncodingAgreesWithFoundationsBase64AndRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...100 {
            for _ in 0..<20 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let reference = Data(bytes).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: "")
                XCTAssertEqual(Base64URL.encode(bytes), reference)
                XCTAssertEqual(Base64URL.decode(reference), bytes)
            }
        }
        XCTAssertEqual(Base64URL.encode([0xFB, 0xFF, 0xBF]), "-_-_")
    }

    func testOnlyTheCanonicalTextDecodes() {
        for text in ["Zh", "Zm9", "Zm9vY", "Zm9vYg==", "Zm9vYg=", "+/+/", "Zm 9", "Zm9v\n", "Zé", "Z"] {
            XCTAssertNil(Base64URL.decode(text), text)
        }
        XCTAssertNil(Base64URL.decode("Zm9vYh"), "unused bits set in the last character")
        XCTAssertNil(Base64URL.decode("Zm9vYmF"), "unused bits set in the last character")
        XCTAssertEqual(Base64URL.decode("Zm9vYmE"), Array("fooba".utf8))
    }

    func testATokenReadsBackAsItself() throws {
        let token = PatientToken(keyVersion: 3, output: Array(0..<32))
        XCTAssertEqual(PatientToken(token.description), token)
        XCTAssertNil(PatientToken("v3:" + String(token.description.dropFirst(3).dropLast()) + "B"))
    }
}
