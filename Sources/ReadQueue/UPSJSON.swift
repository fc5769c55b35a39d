import Foundation
import ImagingIndex
import JSONText

/// Workitems in the DICOM JSON model (PS3.18 Annex F) for UPS-RS, and the bodies UPS-RS
/// clients send. Tags used (Protocols/reads.md has the table): Priority 0074,1200,
/// Worklist Label 0074,1202, Expected Completion 0040,4011, Input Information Sequence
/// 0040,4021 (Study Instance UID 0020,000D, Retrieve URL 0008,1190, and the storage unit
/// as Institution Code Sequence 0008,0082), Procedure Step State 0074,1000, Transaction
/// UID 0008,1195, Requesting Service 0032,1033 (the requesting clinic's code).
public enum UPSJSON {
    public static let upsPushSOPClass = "1.2.840.10008.5.1.4.34.6.1"

    /// A create request, checked.
    public struct CreateRequest: Sendable, Equatable {
        public var priority: Workitem.Priority
        public var label: String
        public var expectedCompletion: Int64?
        public var studyInstanceUID: String
        public var storageUnit: String?
        public var retrieveURL: String?
        /// Patient ID (0010,0020), a patient token: lets the gateway find the study in
        /// other regions when this node's index does not hold it.
        public var patientToken: String?
    }

    /// A state change request: the state asked for and the Transaction UID.
    public struct StateRequest: Sendable, Equatable {
        public var state: String
        public var transactionUID: String
        /// A completing reader's report reference (Output Information Sequence's Retrieve URL).
        public var report: String?
    }

    public struct BodyError: Error, Sendable, Equatable {
        /// The tag (or keyword) at fault.
        public let attribute: String
        public let message: String
    }

    public static func create(_ body: [UInt8]) throws(BodyError) -> CreateRequest {
        let o = try object(body)
        if o["00081195"] != nil {
            throw BodyError(attribute: "00081195", message: "A new workitem carries no Transaction UID; it is set when claimed.")
        }
        if let state = string(o, "00741000"), state != "SCHEDULED" {
            throw BodyError(attribute: "00741000", message: "A new workitem's Procedure Step State is SCHEDULED.")
        }
        var priority = Workitem.Priority.medium
        if let p = string(o, "00741200") {
            guard let parsed = Workitem.Priority(dicom: p) else {
                throw BodyError(attribute: "00741200", message: "Priority is HIGH (or STAT), MEDIUM or LOW.")
            }
            priority = parsed
        }
        let label = string(o, "00741202") ?? ""
        guard label.utf8.count <= 64, !label.contains("\\") else {
            throw BodyError(attribute: "00741202", message: "Worklist Label is at most 64 characters.")
        }
        var expected: Int64?
        if let dt = string(o, "00404011") {
            guard let ms = dateTime(dt) else {
                throw BodyError(attribute: "00404011", message: "Expected Completion is a DICOM DT: YYYYMMDDHHMMSS, optionally &ZZXX.")
            }
            expected = ms
        }
        guard case .array(let inputs)? = o["00404021"]?.value, inputs.count == 1, case .object(let input) = inputs[0] else {
            throw BodyError(attribute: "00404021", message: "Input Information Sequence holds one item: the study to read.")
        }
        guard let uid = string(input, "0020000D"), Codes.isUID(uid) else {
            throw BodyError(attribute: "00404021.0020000D", message: "The input item needs a valid Study Instance UID.")
        }
        let retrieve = string(input, "00081190")
        if let retrieve, !retrieve.hasPrefix("https://") {
            throw BodyError(attribute: "00404021.00081190", message: "Retrieve URL must be https.")
        }
        var unit: String?
        if case .array(let codes)? = input["00080082"]?.value {
            guard codes.count == 1, case .object(let code) = codes[0], let value = string(code, "00080100"), Codes.isUSCC(value) else {
                throw BodyError(attribute: "00404021.00080082",
                                message: "Institution Code Sequence holds one item whose Code Value is the storage unit's credit code.")
            }
            unit = value
        }
        let token = string(o, "00100020")
        if let token, !Codes.isPatientToken(token) {
            throw BodyError(attribute: "00100020", message: "Patient ID, when given, is a patient token, never an identifier.")
        }
        return CreateRequest(priority: priority, label: label, expectedCompletion: expected, studyInstanceUID: uid,
                             storageUnit: unit, retrieveURL: retrieve, patientToken: token)
    }

    public static func stateChange(_ body: [UInt8]) throws(BodyError) -> StateRequest {
        let o = try object(body)
        guard let state = string(o, "00741000"), ["IN PROGRESS", "COMPLETED", "CANCELED"].contains(state) else {
            throw BodyError(attribute: "00741000", message: "Procedure Step State is IN PROGRESS, COMPLETED or CANCELED.")
        }
        guard let txn = string(o, "00081195"), Codes.isUID(txn) else {
            throw BodyError(attribute: "00081195", message: "A state change carries the Transaction UID (a valid UID).")
        }
        var report: String?
        if case .array(let outputs)? = o["00404033"]?.value, case .object(let first)? = outputs.first {
            report = string(first, "00081190")
        }
        return StateRequest(state: state, transactionUID: txn, report: report)
    }

    /// The workitem's attributes, keys in ascending tag order. The Transaction UID is
    /// never shown (PS3.4 CC.1.1: only its holder knows it).
    public static func render(_ w: Workitem) -> String {
        var p: [String] = []
        func add(_ tag: String, _ vr: String, _ value: String?) {
            guard let value, !value.isEmpty else { return p.append("\"\(tag)\":{\"vr\":\"\(vr)\"}") }
            p.append("\"\(tag)\":{\"vr\":\"\(vr)\",\"Value\":[\(jsonString(value))]}")
        }
        add("00080016", "UI", upsPushSOPClass)
        add("00080018", "UI", w.uid)
        add("00321033", "LO", w.clinic)
        add("00404011", "DT", dateTime(ms: w.expectedCompletion))
        var input = "{\"00080082\":{\"vr\":\"SQ\",\"Value\":[{\"00080100\":{\"vr\":\"SH\",\"Value\":[\(jsonString(w.storageUnit))]},"
            + "\"00080102\":{\"vr\":\"SH\",\"Value\":[\"USCC\"]}}]},"
        if let url = w.retrieveURL { input += "\"00081190\":{\"vr\":\"UR\",\"Value\":[\(jsonString(url))]}," }
        input += "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\(jsonString(w.studyInstanceUID))]}}"
        p.append("\"00404021\":{\"vr\":\"SQ\",\"Value\":[\(input)]}")
        add("00404041", "CS", "READY")
        add("00741000", "CS", w.stage.upsState)
        add("00741200", "CS", w.readPriority.dicom)
        add("00741202", "LO", w.label)
        add("00741204", "LO", "Remote read")
        if w.stage == .canceled || w.stage == .deadLetter { add("00741238", "LT", w.reason) }
        return "{" + p.joined(separator: ",") + "}"
    }

    /// The native view (`/v1/reads`): everything the gateway knows, Transaction UID and
    /// lease included when `forHolder`.
    public static func native(_ w: Workitem, forHolder: Bool = false) -> String {
        func text(_ s: String?) -> String { s.map(jsonString) ?? "null" }
        var s = "{\"uid\":\(jsonString(w.uid)),\"state\":\(jsonString(w.stage.upsState)),\"stage\":\"\(w.stage.rawValue)\","
        s += "\"priority\":\"\(w.priority.dicom)\",\"triagePriority\":\(text(w.triagePriority?.dicom)),"
        s += "\"readPriority\":\"\(w.readPriority.dicom)\",\"label\":\(jsonString(w.label)),\"clinic\":\(jsonString(w.clinic)),"
        s += "\"study\":{\"studyInstanceUID\":\(jsonString(w.studyInstanceUID)),\"storageUnit\":\(jsonString(w.storageUnit)),"
        s += "\"retrieveURL\":\(text(w.retrieveURL)),\"region\":\(text(w.region))},"
        s += "\"expectedCompletion\":\(jsonString(iso(w.expectedCompletion))),\"created\":\(jsonString(iso(w.createdAt))),"
        s += "\"attempts\":\(w.attempts),\"aiAttempts\":\(w.aiAttempts),\"aiResult\":\(w.aiResult ?? "null"),"
        s += "\"report\":\(text(w.report)),\"reason\":\(text(w.reason)),\"cancelRequested\":\(w.cancelRequested),"
        s += "\"redriveOf\":\(text(w.redriveOf))"
        if forHolder {
            s += ",\"transactionUID\":\(text(w.transactionUID)),\"leaseDeadline\":\(text(w.leaseDeadline.map(iso)))"
        }
        return s + "}"
    }

    // MARK: parts

    private static func object(_ body: [UInt8]) throws(BodyError) -> [String: JSONValue] {
        let decoded = JSONValue.parse(body)
        // A UPS-RS body is one dataset; some clients send it as a one-element array.
        switch decoded {
        case .object(let o)?: return o
        case .array(let a)? where a.count == 1: if case .object(let o) = a[0] { return o }
        default: break
        }
        throw BodyError(attribute: "", message: "The body must be one DICOM JSON dataset (application/dicom+json).")
    }

    private static func string(_ o: [String: JSONValue], _ tag: String) -> String? {
        guard case .array(let values)? = o[tag]?.value, case .string(let s)? = values.first else { return nil }
        return s
    }

    /// DICOM DT `YYYYMMDDHHMM[SS[.F{1,6}]][&ZZXX]`, read as UTC when it has no offset.
    public static func dateTime(_ s: String) -> Int64? {
        var text = Substring(s)
        var offsetMinutes = 0
        if let sign = text.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let zone = Array(text[text.index(after: sign)...].utf8)
            guard zone.count == 4, zone.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            let hours = Int(zone[0] - 48) * 10 + Int(zone[1] - 48), minutes = Int(zone[2] - 48) * 10 + Int(zone[3] - 48)
            guard hours <= 14, minutes < 60 else { return nil }
            offsetMinutes = (hours * 60 + minutes) * (text[sign] == "-" ? -1 : 1)
            text = text[..<sign]
        }
        if let dot = text.firstIndex(of: ".") { text = text[..<dot] }
        let digits = Array(text.utf8)
        guard digits.count == 12 || digits.count == 14, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              Codes.isCalendarDate(String(text.prefix(8))) else { return nil }
        func n(_ a: Int, _ b: Int) -> Int { Int(String(decoding: digits[a..<b], as: UTF8.self))! }
        let hour = n(8, 10), minute = n(10, 12), second = digits.count == 14 ? n(12, 14) : 0
        guard hour < 24, minute < 60, second < 60 else { return nil }
        var parts = tm()
        parts.tm_year = Int32(n(0, 4) - 1900)
        parts.tm_mon = Int32(n(4, 6) - 1)
        parts.tm_mday = Int32(n(6, 8))
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return (Int64(timegm(&parts)) - Int64(offsetMinutes * 60)) * 1000
    }

    /// `ms` as a DICOM DT in UTC, with its offset.
    public static func dateTime(ms: Int64) -> String {
        let t = utc(ms)
        return digits(t.tm_year + 1900, 4) + digits(t.tm_mon + 1, 2) + digits(t.tm_mday, 2) + digits(t.tm_hour, 2)
            + digits(t.tm_min, 2) + digits(t.tm_sec, 2) + "+0000"
    }

    static func iso(_ ms: Int64) -> String {
        let t = utc(ms)
        return digits(t.tm_year + 1900, 4) + "-" + digits(t.tm_mon + 1, 2) + "-" + digits(t.tm_mday, 2) + "T" + digits(t.tm_hour, 2)
            + ":" + digits(t.tm_min, 2) + ":" + digits(t.tm_sec, 2) + "." + digits(Int32(ms % 1000), 3) + "Z"
    }

    private static func utc(_ ms: Int64) -> tm {
        var seconds = time_t(ms / 1000)
        var t = tm()
        gmtime_r(&seconds, &t)
        return t
    }

    /// Zero-padded decimal; String(format:) cost a few per cent of a read cycle's CPU.
    private static func digits(_ n: Int32, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

private extension JSONValue {
    /// A DICOM JSON attribute's object (`{"vr":…,"Value":[…]}`) gives its Value array.
    var value: JSONValue? {
        guard case .object(let o) = self else { return nil }
        return o["Value"]
    }
}
