import Foundation

/// Why an identifier was refused. Messages say what rule failed and never repeat the value.
public enum NormalizationError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case wrongLength(expected: String)
    case invalidCharacter
    case checkDigit
    case impossibleBirthDate
    case birthDateMismatch
    case sexMismatch
    case invalidSex

    public var description: String {
        switch self {
        case .empty: "the identifier is empty"
        case .wrongLength(let expected): "the identifier must have \(expected)"
        case .invalidCharacter: "the identifier has a character outside its alphabet"
        case .checkDigit: "the check character does not match (ISO 7064 MOD 11-2)"
        case .impossibleBirthDate: "the birth date is not a real date between 1900 and today"
        case .birthDateMismatch: "the birth date given does not match the one in the resident ID"
        case .sexMismatch: "the sex given does not match the resident ID's sequence digit"
        case .invalidSex: "sex must be M or F"
        }
    }
}

/// What a token is computed from: a normalized identifier of one kind. The VOPRF input is
/// domain-separated by kind and version, so equal digits of different kinds never collide.
public struct TokenInput: Sendable, Hashable {
    public enum Kind: String, Sendable, CaseIterable {
        case residentID = "resident-id"
        case personCode = "person-code"
        /// name|birthdate|sex: a probable match only, never merged with an ID match.
        case nameBirthSex = "name-birthdate-sex"
    }

    public let kind: Kind
    public let normalized: String

    /// `imaging-gateway/v1/<kind>|<normalized value>` (DOMAIN.md §7).
    public var voprfInput: [UInt8] { Array("imaging-gateway/v1/\(kind.rawValue)|\(normalized)".utf8) }

    /// A resident ID (GB 11643): NFKC, spaces removed, `x` upper-cased, a 15-digit ID
    /// upgraded to 18, the MOD 11-2 check and the birth date verified. When the caller also
    /// knows the birth date (YYYYMMDD) or sex (M/F), they must agree with the ID.
    public static func residentID(_ raw: String, birthDate: String? = nil, sex: String? = nil,
                                  today: Date = Date()) throws(NormalizationError) -> TokenInput {
        var digits = Array(compact(raw).uppercased().utf8)
        guard !digits.isEmpty else { throw .empty }
        if digits.count == 15 {
            guard digits.allSatisfy(isDigit) else { throw .invalidCharacter }
            digits = Array(digits[0..<6]) + Array("19".utf8) + Array(digits[6..<15])
            digits.append(checkCharacter(digits))
        } else {
            guard digits.count == 18 else { throw .wrongLength(expected: "18 characters (or 15 digits)") }
            guard digits[0..<17].allSatisfy(isDigit), isDigit(digits[17]) || digits[17] == UInt8(ascii: "X") else {
                throw .invalidCharacter
            }
            guard checkCharacter(digits) == digits[17] else { throw .checkDigit }
        }
        let born = String(decoding: digits[6..<14], as: UTF8.self)
        guard isRealBirthDate(born, today: today) else { throw .impossibleBirthDate }
        if let birthDate, compact(birthDate).replacingOccurrences(of: "-", with: "") != born {
            throw .birthDateMismatch
        }
        if let sex {
            let male = (digits[16] - UInt8(ascii: "0")) % 2 == 1
            switch compact(sex).uppercased() {
            case "M": guard male else { throw .sexMismatch }
            case "F": guard !male else { throw .sexMismatch }
            default: throw .invalidSex
            }
        }
        return TokenInput(kind: .residentID, normalized: String(decoding: digits, as: UTF8.self))
    }

    /// The national health insurance person management code: 26 digits.
    public static func personCode(_ raw: String) throws(NormalizationError) -> TokenInput {
        let value = compact(raw)
        guard !value.isEmpty else { throw .empty }
        guard value.utf8.allSatisfy(isDigit) else { throw .invalidCharacter }
        guard value.utf8.count == 26 else { throw .wrongLength(expected: "26 digits") }
        return TokenInput(kind: .personCode, normalized: value)
    }

    /// The secondary key when no ID exists: NFKC name without whitespace or middle dots,
    /// birth date YYYYMMDD (dashes allowed), sex M or F.
    public static func nameBirthSex(name: String, birthDate: String, sex: String,
                                    today: Date = Date()) throws(NormalizationError) -> TokenInput {
        let cleanName = String(compact(name).unicodeScalars.filter { !middleDots.contains($0) })
        guard !cleanName.isEmpty else { throw .empty }
        let born = compact(birthDate).replacingOccurrences(of: "-", with: "")
        guard born.utf8.count == 8, born.utf8.allSatisfy(isDigit), isRealBirthDate(born, today: today) else {
            throw .impossibleBirthDate
        }
        let normalizedSex = compact(sex).uppercased()
        guard normalizedSex == "M" || normalizedSex == "F" else { throw .invalidSex }
        return TokenInput(kind: .nameBirthSex, normalized: "\(cleanName)|\(born)|\(normalizedSex)")
    }

    // MARK: rules

    /// U+00B7 middle dot, U+30FB katakana middle dot, U+2022 bullet, U+2027 hyphenation point.
    static let middleDots: Set<Unicode.Scalar> = ["\u{00B7}", "\u{30FB}", "\u{2022}", "\u{2027}", "\u{FF65}"]
    static let weights: [Int] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    static let checkCharacters = Array("10X98765432".utf8)

    /// NFKC (full-width digits become ASCII) with all whitespace removed.
    static func compact(_ s: String) -> String {
        String(s.precomposedStringWithCompatibilityMapping.unicodeScalars.filter {
            !CharacterSet.whitespacesAndNewlines.contains($0)
        })
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// ISO 7064 MOD 11-2 over the first 17 digits.
    static func checkCharacter(_ digits: [UInt8]) -> UInt8 {
        let sum = zip(digits.prefix(17), weights).reduce(0) { $0 + Int($1.0 - UInt8(ascii: "0")) * $1.1 }
        return checkCharacters[sum % 11]
    }

    static func isRealBirthDate(_ yyyymmdd: String, today: Date) -> Bool {
        guard yyyymmdd.utf8.count == 8, let year = Int(yyyymmdd.prefix(4)),
              let month = Int(yyyymmdd.dropFirst(4).prefix(2)), let day = Int(yyyymmdd.suffix(2)),
              year >= 1900, (1...12).contains(month), day >= 1
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard day <= days else { return false }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Asia/Shanghai")!
        let now = calendar.dateComponents([.year, .month, .day], from: today)
        return (year, month, day) <= (now.year!, now.month!, now.day!)
    }
}
