import Foundation
import Synchronization

extension StudyRecord {
    /// Builds a record from one uploaded JSON object, checking every field; returns all
    /// the field errors at once so an uploader can fix a record in one round.
    public static func validate(_ object: [String: JSONValue]) -> Result<StudyRecord, RecordRejection> {
        var v = FieldReader(object)
        let token = v.string("patientToken", required: true, max: 64) { Codes.isPatientToken($0) ? nil : "invalid-token" }
        let uid = v.string("studyInstanceUID", required: true, max: 64) { Codes.isUID($0) ? nil : "invalid-uid" }
        let accession = v.string("accessionNumber", max: 16, freeText: true)
        let date = v.string("studyDate", required: true, max: 8) { Codes.isDate($0) ? nil : "invalid-date" }
        let time = v.string("studyTime", max: 13) { Codes.isTime($0) ? nil : "invalid-time" }
        let tz = v.string("timezoneOffset", max: 5) { Codes.isTimezoneOffset($0) ? nil : "invalid-timezone" }
        let modalities = v.modalities()
        let bodyPart = v.string("bodyPartExamined", max: 16, freeText: true)
        let description = v.string("studyDescription", max: 64, freeText: true)
        let examItem = v.string("examItemCode", max: 16, freeText: true)
        let seriesCount = v.integer("numberOfStudyRelatedSeries", in: 0...100_000)
        let instances = v.integer("numberOfStudyRelatedInstances", in: 0...10_000_000)
        let sex = v.string("patientSex", max: 1) { ["M", "F", "O"].contains($0) ? nil : "invalid-value" }
        let birthYear = v.integer("patientBirthYear", in: 1900...2199)
        let institution = v.string("institutionName", max: 64, freeText: true)
        let institutionCode = v.string("institutionCode", max: 18) { Codes.isUSCC($0) ? nil : "invalid-uscc" }
        let storage = v.string("storageUnit", required: true, max: 18) { Codes.isUSCC($0) ? nil : "invalid-uscc" }
        let url = v.string("retrieveURL", required: true, max: 2048, freeText: true) { isHTTPSURL($0) ? nil : "invalid-url" }
        let availability = v.string("instanceAvailability", max: 11) {
            ["ONLINE", "NEARLINE", "OFFLINE", "UNAVAILABLE"].contains($0) ? nil : "invalid-value"
        }
        let region = v.string("region", required: true, max: 6) { Codes.isRegion($0) ? nil : "invalid-region" }
        let indexCode = v.string("nhsaIndexCode", max: 200)
        let series = v.series()
        v.rejectUnknownFields()
        if let indexCode, let token, let storage, let date {
            v.checkIndexCode(indexCode, token: token, storageUnit: storage, studyDate: date)
        }
        guard v.errors.isEmpty, let token, let uid, let date, let modalities, let storage, let url, let region else {
            return .failure(RecordRejection(errors: v.errors))
        }
        var record = StudyRecord(patientToken: token, studyInstanceUID: uid, studyDate: date, modalitiesInStudy: modalities,
                                 storageUnit: storage, retrieveURL: url, region: region)
        record.accessionNumber = accession
        record.studyTime = time
        record.timezoneOffset = tz
        record.bodyPartExamined = bodyPart
        record.studyDescription = description
        record.examItemCode = examItem
        record.numberOfStudyRelatedSeries = seriesCount
        record.numberOfStudyRelatedInstances = instances
        record.patientSex = sex
        record.patientBirthYear = birthYear
        record.institutionName = institution
        record.institutionCode = institutionCode
        record.instanceAvailability = availability
        record.nhsaIndexCode = indexCode
        record.series = series
        return .success(record)
    }

    static func isHTTPSURL(_ s: String) -> Bool {
        if lastHTTPSURL.withLock({ $0 == s }) { return true }
        guard s.hasPrefix("https://"), !s.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }),
              let c = URLComponents(string: s), let host = c.host, !host.isEmpty else { return false }
        lastHTTPSURL.withLock { $0 = s }
        return true
    }

    /// The last URL found valid. A hospital's records name one PACS, and URLComponents
    /// (an RFC 3986 parse and an IDNA pass over the host) was 2.3 % of the node's CPU
    /// while it ingested, more than the rest of a record's checks.
    private static let lastHTTPSURL = Mutex<String?>(nil)
}

/// Reads fields off one JSON object, collecting errors and remembering which keys it asked
/// for. The keys are kept in a list and counted as found, not hashed into a set: an object
/// whose every key was asked for (the usual case) is known to have no unknown field by the
/// count alone, and the list is searched only when it has one. What must stay true: each
/// key is asked for once per object, or the count would hide an unknown field.
struct FieldReader {
    private let object: [String: JSONValue]
    private var asked: [String] = []
    private var found = 0
    private(set) var errors: [FieldError] = []

    init(_ object: [String: JSONValue]) {
        self.object = object
        asked.reserveCapacity(object.count)
    }

    private mutating func value(_ key: String) -> JSONValue? {
        asked.append(key)
        let value = object[key]
        if value != nil { found += 1 }
        return value
    }

    mutating func fail(_ field: String, _ code: String, _ message: String) {
        errors.append(FieldError(field, code, message))
    }

    /// A string field; `check` returns an error code or nil. Free text is scanned for
    /// plain identifiers.
    mutating func string(_ key: String, required: Bool = false, max: Int, freeText: Bool = false,
                         check: (String) -> String? = { _ in nil }) -> String? {
        switch value(key) {
        case nil, .null?:
            if required { fail(key, "missing-field", "\(key) is required.") }
            return nil
        case .string(let s)?:
            if s.isEmpty {
                if required { fail(key, "missing-field", "\(key) must not be empty.") }
                return nil
            }
            if freeText, PlainIdentifier.appears(in: s) {
                fail(key, "plain-identifier", "\(key) holds what looks like a resident ID or person code; send tokens only.")
                return nil
            }
            // A string has at most as many characters as UTF-8 bytes; counting characters
            // (grapheme breaking) only when the bytes are over is much cheaper.
            guard s.utf8.count <= max || s.count <= max else {
                fail(key, "too-long", "\(key) is longer than \(max) characters.")
                return nil
            }
            if let code = check(s) {
                fail(key, code, Self.explain(key, code))
                return nil
            }
            return s
        default:
            fail(key, "wrong-type", "\(key) must be a string.")
            return nil
        }
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) -> Int? {
        switch value(key) {
        case nil, .null?: return nil
        case .number(let n)? where n == n.rounded() && range.contains(Int(exactly: n) ?? Int.min): return Int(n)
        case .number?: fail(key, "invalid-value", "\(key) must be an integer in \(range.lowerBound)...\(range.upperBound).")
        default: fail(key, "wrong-type", "\(key) must be a number.")
        }
        return nil
    }

    mutating func modalities() -> [String]? {
        let key = "modalitiesInStudy"
        let given = value(key)
        guard case .array(let items)? = given, !items.isEmpty else {
            fail(key, given == nil ? "missing-field" : "wrong-type", "\(key) must be a non-empty array of modality codes.")
            return nil
        }
        var out: [String] = []
        for item in items {
            guard case .string(let m) = item, Codes.modalities.contains(m) else {
                fail(key, "invalid-modality", "\(key) holds a value that is not a DICOM modality code.")
                return nil
            }
            if !out.contains(m) { out.append(m) }
        }
        return out
    }

    /// `series`: at most 10 000 objects, each checked like a record of its own; an error's
    /// field is named `series[i].field`.
    mutating func series() -> [SeriesRecord]? {
        let key = "series"
        switch value(key) {
        case nil, .null?: return nil
        case .array(let items)? where items.count <= 10_000:
            var out: [SeriesRecord] = []
            var uids: Set<String> = []
            for (i, item) in items.enumerated() {
                guard case .object(let o) = item else {
                    fail("\(key)[\(i)]", "wrong-type", "Each series must be an object.")
                    continue
                }
                var r = FieldReader(o)
                let uid = r.string("seriesInstanceUID", required: true, max: 64) { Codes.isUID($0) ? nil : "invalid-uid" }
                let modality = r.string("modality", required: true, max: 16) { Codes.modalities.contains($0) ? nil : "invalid-modality" }
                let number = r.integer("seriesNumber", in: 0...2_147_483_647)
                let description = r.string("seriesDescription", max: 64, freeText: true)
                let bodyPart = r.string("bodyPartExamined", max: 16, freeText: true)
                let instances = r.integer("numberOfSeriesRelatedInstances", in: 0...1_000_000)
                r.rejectUnknownFields()
                if let uid, !uids.insert(uid).inserted { r.fail("seriesInstanceUID", "duplicate-series", "seriesInstanceUID appears twice.") }
                errors += r.errors.map { FieldError("\(key)[\(i)].\($0.field)", $0.code, $0.message) }
                guard r.errors.isEmpty, let uid, let modality else { continue }
                var s = SeriesRecord(seriesInstanceUID: uid, modality: modality)
                s.seriesNumber = number
                s.seriesDescription = description
                s.bodyPartExamined = bodyPart
                s.numberOfSeriesRelatedInstances = instances
                out.append(s)
            }
            return out
        default:
            fail(key, "wrong-type", "series must be an array of at most 10000 objects.")
            return nil
        }
    }

    /// Fields this version does not know are refused, not dropped: a field named like a
    /// patient identifier is `plain-identifier`, any other `unknown-field`.
    mutating func rejectUnknownFields() {
        guard found < object.count else { return }
        for key in object.keys.sorted() where !asked.contains(key) {
            if PlainIdentifier.isIdentifierFieldName(key) {
                fail(key, "plain-identifier", "\(key) would carry a patient identifier; the index takes tokens only.")
            } else {
                fail(key, "unknown-field", "\(key) is not a field of the study index record.")
            }
        }
    }

    /// `<token>-YYYYMMDDhhmm-<9 body-part>-<13 device>-<storage unit>`, parsed from the right
    /// because a token may itself contain '-'.
    mutating func checkIndexCode(_ code: String, token: String, storageUnit: String, studyDate: String) {
        let key = "nhsaIndexCode"
        let b = Array(code.utf8)
        let tail = 1 + 12 + 1 + 9 + 1 + 13 + 1 + 18
        guard b.count > tail else { return fail(key, "invalid-index-code", "\(key) does not have five parts.") }
        let p = b.count - tail
        let dash = UInt8(ascii: "-")
        guard b[p] == dash, b[p + 13] == dash, b[p + 23] == dash, b[p + 37] == dash else {
            return fail(key, "invalid-index-code", "\(key) parts are not 12, 9, 13 and 18 characters long.")
        }
        let person = Array(b[0..<p]), dateTime = Array(b[(p + 1)..<(p + 13)])
        if person.count == 26 && person.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            return fail(key, "plain-identifier", "\(key) starts with a person management code; replace it with the patient token.")
        }
        guard person == Array(token.utf8) else {
            return fail(key, "invalid-index-code", "\(key) must start with the record's patient token.")
        }
        let dt = String(decoding: dateTime, as: UTF8.self)
        guard Codes.isDate(String(dt.prefix(8))), Codes.isTime(String(dt.suffix(4))) else {
            return fail(key, "invalid-index-code", "\(key) has no valid YYYYMMDDhhmm examination time.")
        }
        let codeChars = { (s: ArraySlice<UInt8>) in s.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) } }
        guard codeChars(b[(p + 14)..<(p + 23)]), codeChars(b[(p + 24)..<(p + 37)]) else {
            return fail(key, "invalid-index-code", "\(key) body-part and device codes take digits and capitals only.")
        }
        guard String(decoding: b[(p + 38)...], as: UTF8.self) == storageUnit else {
            return fail(key, "invalid-index-code", "\(key) must end with the record's storage unit.")
        }
    }

    static func explain(_ key: String, _ code: String) -> String {
        switch code {
        case "invalid-token": return "\(key) must be v<keyVersion>:<base64url of 32 bytes>."
        case "invalid-uid": return "\(key) must be a DICOM UID: digits and dots, at most 64, no leading zeros."
        case "invalid-date": return "\(key) must be a real date as YYYYMMDD."
        case "invalid-time": return "\(key) must be a DICOM time HHMMSS[.FFFFFF]."
        case "invalid-timezone": return "\(key) must be +HHMM or -HHMM."
        case "invalid-uscc": return "\(key) must be an 18-character unified social credit code with a valid check character."
        case "invalid-region": return "\(key) must be a six-digit region code under a province."
        case "invalid-url": return "\(key) must be an https URL."
        default: return "\(key) has a value that is not allowed."
        }
    }
}
