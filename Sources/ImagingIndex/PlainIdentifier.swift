/// Recognizes what must never reach a node in clear: a resident ID (18 characters, 17
/// digits and a digit or X whose ISO 7064 MOD 11-2 check holds) or a 26-digit person
/// management code, standing alone in text; and field names that carry them.
enum PlainIdentifier {
    private static let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    private static let checks = Array("10X98765432".utf8)

    static func appears(in text: String) -> Bool {
        let b = Array(text.utf8)
        var i = 0
        while i < b.count {
            guard isDigit(b[i]) else { i += 1; continue }
            var j = i
            while j < b.count, isDigit(b[j]) || b[j] == UInt8(ascii: "X") || b[j] == UInt8(ascii: "x") { j += 1 }
            let run = Array(b[i..<j])
            if run.count == 26, run.allSatisfy(isDigit) { return true }
            if run.count == 18, run[0..<17].allSatisfy(isDigit), residentIDCheck(run) { return true }
            i = j
        }
        return false
    }

    private static func residentIDCheck(_ id: [UInt8]) -> Bool {
        var sum = 0
        for k in 0..<17 { sum += Int(id[k] - 0x30) * weights[k] }
        let last = id[17] == UInt8(ascii: "x") ? UInt8(ascii: "X") : id[17]
        return checks[sum % 11] == last
    }

    private static let identifierNames: Set<String> = [
        "patientname", "patientid", "name", "idnumber", "idcard", "idno", "residentid", "residentidnumber",
        "identitycard", "sfzh", "personcode", "personmanagementcode", "patientbirthdate", "birthdate", "phone",
        "mobile", "address", "00100010", "00100020", "00100030",
    ]

    /// Compares without case and without `_`, `-`, `.`, `,` and spaces.
    static func isIdentifierFieldName(_ key: String) -> Bool {
        identifierNames.contains(String(key.lowercased().filter { !"_-., ".contains($0) }))
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}
