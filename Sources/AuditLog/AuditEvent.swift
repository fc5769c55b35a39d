import Foundation
import JSONText

/// One audited access (DOMAIN.md §9), in the style of DICOM PS3.15 A.5 / RFC 3881: who
/// (the certificate's SAN URI), what (an event ID from DICOM's DCM code set and an action
/// code), why (HL7 purpose of use), which tokens and studies, the outcome, when. It holds
/// tokens and UIDs, never an identifier.
public struct AuditEvent: Codable, Sendable, Equatable {
    /// DCM event IDs this node uses.
    public enum EventID: String, Codable, Sendable {
        /// An index upload (records imported).
        case importRecords = "110107"
        /// A lookup (native, QIDO-RS, FHIR).
        case query = "110112"
        /// A token-service evaluation (DCM has no closer code than application activity).
        case applicationActivity = "110100"
        /// A refusal by quota.
        case securityAlert = "110113"
        /// A read request (workitem) created or changed.
        case orderRecord = "110109"
    }

    /// RFC 3881 EventActionCode: C create, R read, U update, D delete, E execute.
    public enum Action: String, Codable, Sendable { case create = "C", read = "R", update = "U", delete = "D", execute = "E" }

    /// RFC 3881 EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure.
    public enum Outcome: Int, Codable, Sendable { case success = 0, minorFailure = 4, seriousFailure = 8 }

    public var time: String
    public var requestID: String
    /// `urn:imaging-gateway:ROLE:ORG`, or "anonymous".
    public var actor: String
    public var eventID: EventID
    public var action: Action
    public var outcome: Outcome
    public var purposeOfUse: String?
    /// What the request was, e.g. `POST /v1/index/studies`.
    public var operation: String
    public var patientTokens: [String]
    public var studyInstanceUIDs: [String]
    /// Records stored, studies returned, elements evaluated.
    public var count: Int
    /// The metering counter this event counts toward: uploads, lookups, tokens, refusals.
    public var counter: String
    /// Its position in the log, set by the store as it appends: a moved event names itself.
    public var leafIndex: Int?

    public init(time: Date = Date(), requestID: String, actor: String, eventID: EventID, action: Action,
                outcome: Outcome, purposeOfUse: String? = nil, operation: String, patientTokens: [String] = [],
                studyInstanceUIDs: [String] = [], count: Int = 0, counter: String) {
        self.time = Self.format(time)
        self.requestID = requestID
        self.actor = actor
        self.eventID = eventID
        self.action = action
        self.outcome = outcome
        self.purposeOfUse = purposeOfUse
        self.operation = operation
        self.patientTokens = patientTokens
        self.studyInstanceUIDs = studyInstanceUIDs
        self.count = count
        self.counter = counter
    }

    /// The leaf's data: JSON with keys in sorted order, written by hand because it is made
    /// inside the writer's transaction for every request (Foundation's encoder costs tens of
    /// microseconds there). Any JSON decoder reads it back; the hash is over these bytes.
    public var canonical: [UInt8] {
        var out = JSONWriter(capacity: 320 + 72 * (patientTokens.count + studyInstanceUIDs.count))
        func list(_ key: StaticString, _ items: [String]) {
            out.key(key)
            out.array(items) { $0.string($1) }
        }
        out.beginObject()
        out.field("action", action.rawValue)
        out.field("actor", actor)
        out.field("count", count)
        out.field("counter", counter)
        out.field("eventID", eventID.rawValue)
        out.field("leafIndex", leafIndex)
        out.field("operation", operation)
        out.field("outcome", outcome.rawValue)
        list("patientTokens", patientTokens)
        out.field("purposeOfUse", purposeOfUse)
        out.field("requestID", requestID)
        list("studyInstanceUIDs", studyInstanceUIDs)
        out.field("time", time)
        out.endObject()
        return out.bytes
    }

    /// UTC day, YYYY-MM-DD: the metering period.
    public var day: String { String(time.prefix(10)) }

    /// The UTC day of `date`, YYYY-MM-DD.
    public static func day(of date: Date = Date()) -> String { String(format(date).prefix(10)) }

    /// RFC 3339 UTC with milliseconds, from gmtime_r written straight into the string's
    /// 24 bytes: a DateFormatter would build ICU calendars on every audited request.
    static func format(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var seconds = time_t(t.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let ms = min(999, Int((t - t.rounded(.down)) * 1000))
        let fields: [(value: Int, width: Int, then: UInt8)] = [
            (Int(parts.tm_year) + 1900, 4, UInt8(ascii: "-")), (Int(parts.tm_mon) + 1, 2, UInt8(ascii: "-")),
            (Int(parts.tm_mday), 2, UInt8(ascii: "T")), (Int(parts.tm_hour), 2, UInt8(ascii: ":")),
            (Int(parts.tm_min), 2, UInt8(ascii: ":")), (Int(parts.tm_sec), 2, UInt8(ascii: ".")), (ms, 3, UInt8(ascii: "Z")),
        ]
        return String(unsafeUninitializedCapacity: 24) { out in
            var at = 0
            for field in fields {
                var rest = field.value
                for i in stride(from: at + field.width - 1, through: at, by: -1) {
                    out[i] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                out[at + field.width] = field.then
                at += field.width + 1
            }
            return at
        }
    }
}
