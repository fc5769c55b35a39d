import Foundation
import PatientTokens
import XCTest

/// DOMAIN.md §7's normalization rules, vector by vector. Each refusal names its rule.
final class NormalizationTests: XCTestCase {
    let today = ISO8601DateFormatter().date(from: "2026-11-24T00:00:00Z")!

    func normalized(_ raw: String) throws -> String {
        try TokenInput.residentID(raw, today: today).normalized
    }

    func refusal(_ raw: String, birthDate: String? = nil, sex: String? = nil) -> NormalizationError? {
        do {
            _ = try TokenInput.residentID(raw, birthDate: birthDate, sex: sex, today: today)
            return nil
        } catch { return error }
    }

    func testValidIDs() throws {
        XCTAssertEqual(try normalized("440307198503124515"), "440307198503124515")
        XCTAssertEqual(try normalized("11010519491231002X"), "11010519491231002X")
        XCTAssertEqual(try TokenInput.residentID("440307198503124515", today: today).kind, .residentID)
    }

    func testLowercaseXSpacesAndFullWidthDigits() throws {
        XCTAssertEqual(try normalized("11010519491231002x"), "11010519491231002X")
        XCTAssertEqual(try normalized(" 440307 19850312 4515 "), "440307198503124515")
        XCTAssertEqual(try normalized("４４０３０７１９８５０３１２４５１５"), "440307198503124515")
        XCTAssertEqual(try normalized("11010519491231002ｘ"), "11010519491231002X")
        XCTAssertEqual(try normalized("4403071985\u{3000}03124515"), "440307198503124515")
    }

    func testFifteenDigitUpgrade() throws {
        XCTAssertEqual(try normalized("130503670401001"), "130503196704010016")
        XCTAssertEqual(refusal("13050367040100X"), .invalidCharacter)
        XCTAssertEqual(refusal("130503671301001"), .impossibleBirthDate)
    }

    func testRefusals() {
        XCTAssertEqual(refusal("440307198503124514"), .checkDigit)
        XCTAssertEqual(refusal("44030719850312451"), .wrongLength(expected: "18 characters (or 15 digits)"))
        XCTAssertEqual(refusal(""), .empty)
        XCTAssertEqual(refusal("   "), .empty)
        XCTAssertEqual(refusal("4403071985031245A5"), .invalidCharacter)
        XCTAssertEqual(refusal("X40307198503124515"), .invalidCharacter)
        // 1985-02-30 with a correct check digit: the date rule, not the checksum, refuses it.
        XCTAssertEqual(refusal(withCheck("44030719850230451")), .impossibleBirthDate)
        XCTAssertEqual(refusal(withCheck("44030718991231451")), .impossibleBirthDate)
        XCTAssertEqual(refusal(withCheck("44030720270101451")), .impossibleBirthDate)
        XCTAssertNil(refusal(withCheck("44030720000229451")), "2000 is a leap year")
        XCTAssertEqual(refusal(withCheck("44030719000229451")), .impossibleBirthDate, "1900 is not")
    }

    func testBirthDateAndSexCrossChecks() {
        XCTAssertNil(refusal("440307198503124515", birthDate: "1985-03-12", sex: "M"))
        XCTAssertEqual(refusal("440307198503124515", birthDate: "19850313"), .birthDateMismatch)
        XCTAssertEqual(refusal("440307198503124515", sex: "F"), .sexMismatch)
        XCTAssertEqual(refusal("11010519491231002X", sex: "f"), nil, "sequence digit 2 is female")
        XCTAssertEqual(refusal("440307198503124515", sex: "U"), .invalidSex)
    }

    func testPersonCodeAndNameKey() throws {
        XCTAssertEqual(try TokenInput.personCode(" 12345678901234567890123456 ").normalized, "12345678901234567890123456")
        XCTAssertThrowsError(try TokenInput.personCode("1234567890123456789012345"))
        XCTAssertThrowsError(try TokenInput.personCode("1234567890123456789012345A"))
        let key = try TokenInput.nameBirthSex(name: " 阿卜杜·热合曼 ", birthDate: "1985-03-12", sex: "m", today: today)
        XCTAssertEqual(key.normalized, "阿卜杜热合曼|19850312|M")
        XCTAssertEqual(key.kind, .nameBirthSex)
        XCTAssertThrowsError(try TokenInput.nameBirthSex(name: "张三", birthDate: "19850230", sex: "M", today: today))
        XCTAssertThrowsError(try TokenInput.nameBirthSex(name: "·", birthDate: "19850301", sex: "M", today: today))
    }

    func testDomainSeparation() throws {
        let id = try TokenInput.residentID("440307198503124515", today: today)
        XCTAssertEqual(String(decoding: id.voprfInput, as: UTF8.self), "imaging-gateway/v1/resident-id|440307198503124515")
    }

    func testErrorsNeverCarryTheValue() {
        for raw in ["440307198503124514", "4403071985031245A5", "44030719850312451"] {
            let message = String(describing: refusal(raw)!)
            XCTAssertFalse(message.contains("4403"), message)
        }
    }

    func testTokenText() {
        let token = PatientToken(keyVersion: 3, output: Array(0..<32))
        XCTAssertEqual(token.description, "v3:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
        XCTAssertEqual(PatientToken(token.description), token)
        XCTAssertNil(PatientToken("v0:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"))
        XCTAssertNil(PatientToken("v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))
        XCTAssertNil(PatientToken("v1:AAEC"))
    }

    private func withCheck(_ seventeen: String) -> String {
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        let sum = zip(seventeen, weights).reduce(0) { $0 + Int(String($1.0))! * $1.1 }
        return seventeen + String(Array("10X98765432")[sum % 11])
    }
}
