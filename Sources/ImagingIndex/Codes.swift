/// Syntax and check rules of the identifiers an index record carries. Each returns
/// whether its input is valid; callers turn a `false` into a named field error.
public enum Codes {
    /// DICOM UI (PS3.5 §9.1): 1–64 chars, components of digits separated by dots, no
    /// empty component, no leading zero unless the component is "0". At least two
    /// components, as every registered root has: a lone number is more likely an
    /// identifier pasted into the wrong field.
    public static func isUID(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= 64, b.contains(UInt8(ascii: ".")) else { return false }
        var start = 0
        for i in 0...b.count {
            if i == b.count || b[i] == UInt8(ascii: ".") {
                let len = i - start
                guard len > 0, !(len > 1 && b[start] == UInt8(ascii: "0")) else { return false }
                start = i + 1
            } else if !(b[i] >= 0x30 && b[i] <= 0x39) {
                return false
            }
        }
        return true
    }

    /// DICOM DA: YYYYMMDD, a real calendar date from 1900 on.
    public static func isDate(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 8, b.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        let y = number(b[0..<4]), m = number(b[4..<6]), d = number(b[6..<8])
        return y >= 1900 && y <= 2199 && m >= 1 && m <= 12 && d >= 1 && d <= daysIn(month: m, year: y)
    }

    /// A calendar date YYYYMMDD in any year from 0001 to 9999 (proleptic Gregorian): for
    /// search bounds, where a far past or future bound is a legitimate open end.
    public static func isCalendarDate(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 8, b.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        let y = number(b[0..<4]), m = number(b[4..<6]), d = number(b[6..<8])
        return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysIn(month: m, year: y)
    }

    /// DICOM TM: HH, HHMM, HHMMSS or HHMMSS.F{1,6}, each part in range (60 s allowed for
    /// a leap second).
    public static func isTime(_ s: String) -> Bool {
        let b = Array(s.utf8)
        let whole = b.firstIndex(of: UInt8(ascii: ".")) ?? b.count
        guard [2, 4, 6].contains(whole), b[..<whole].allSatisfy(isDigit) else { return false }
        if whole < b.count {
            let fraction = b[(whole + 1)...]
            guard whole == 6, (1...6).contains(fraction.count), fraction.allSatisfy(isDigit) else { return false }
        }
        return number(b[0..<2]) <= 23 && (whole < 4 || number(b[2..<4]) <= 59) && (whole < 6 || number(b[4..<6]) <= 60)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// Timezone Offset From UTC (0008,0201): +HHMM or -HHMM, -1200 to +1400.
    public static func isTimezoneOffset(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 5, b[0] == UInt8(ascii: "+") || b[0] == UInt8(ascii: "-"),
              b[1...].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        let h = number(b[1..<3]), m = number(b[3..<5])
        guard m <= 59 else { return false }
        return b[0] == UInt8(ascii: "+") ? h * 60 + m <= 14 * 60 : h * 60 + m <= 12 * 60
    }

    /// The characters of a unified social credit code (GB 32100-2015): digits and the
    /// capitals without I, O, S, V, Z.
    static let usccAlphabet = Array("0123456789ABCDEFGHJKLMNPQRTUWXY".utf8)
    static let usccWeights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]

    /// An 18-character unified social credit code whose last character is its mod-31
    /// weighted check character.
    public static func isUSCC(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 18 else { return false }
        var sum = 0
        for i in 0..<17 {
            guard let v = usccAlphabet.firstIndex(of: b[i]) else { return false }
            sum += v * usccWeights[i]
        }
        let check = (31 - sum % 31) % 31
        return b[17] == usccAlphabet[check]
    }

    /// Province-level prefixes of GB/T 2260 region codes.
    static let provinces: Set<Int> = [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45,
                                      46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82]

    /// Six ASCII digits: the shape of a division code, whichever division it names. (Swift's
    /// `isNumber` would also take other scripts' digits, and fullwidth ones.)
    public static func isSixDigits<S: StringProtocol>(_ s: S) -> Bool {
        s.utf8.count == 6 && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// A six-digit administrative division code under a real province.
    public static func isRegion(_ s: String) -> Bool {
        isSixDigits(s) && provinces.contains(number(Array(s.utf8)[0..<2]))
    }

    /// DICOM Modality defined terms (PS3.3 C.7.3.1.1.1) that an imaging study index carries.
    public static let modalities: Set<String> = [
        "AR", "ASMT", "AU", "BDUS", "BI", "BMD", "CR", "CT", "CTPROTOCOL", "DG", "DOC", "DX", "ECG", "EPS", "ES", "FID",
        "GM", "HC", "HD", "IO", "IOL", "IVOCT", "IVUS", "KER", "KO", "LEN", "LS", "MG", "MR", "M3D", "NM", "OAM", "OCT",
        "OP", "OPM", "OPT", "OPTBSV", "OPTENF", "OPV", "OSS", "OT", "PLAN", "PR", "PT", "PX", "REG", "RESP", "RF", "RG",
        "RTDOSE", "RTIMAGE", "RTPLAN", "RTRECORD", "RTSTRUCT", "RWV", "SEG", "SM", "SMR", "SR", "SRF", "STAIN", "TG",
        "US", "VA", "XA", "XC",
    ]

    /// `v<keyVersion>:<base64url of 32 bytes>`: a patient token from the token service.
    public static func isPatientToken(_ s: String) -> Bool {
        // Over the UTF-8 alone: a token is ASCII, and finding its colon by Character
        // (grapheme breaking) was most of this check's cost in a lookup.
        let utf8 = s.utf8
        guard utf8.first == UInt8(ascii: "v"), let colon = utf8.firstIndex(of: UInt8(ascii: ":")) else { return false }
        let version = utf8[utf8.index(after: utf8.startIndex)..<colon]
        let value = utf8[utf8.index(after: colon)...]
        return (1...9).contains(version.count) && version.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
            && !(version.count > 1 && version.first == UInt8(ascii: "0"))
            && value.count == 43 && value.allSatisfy(isBase64URL)
            && "AEIMQUYcgkosw048".utf8.contains(value.last!)
    }

    static func isBase64URL(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-")
            || c == UInt8(ascii: "_")
    }

    static func number(_ digits: ArraySlice<UInt8>) -> Int {
        digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
