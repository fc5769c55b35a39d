import Foundation
import GatewayNet
import ImagingIndex

/// One uploaded record as parsed: its JSON object, or why the line was not one.
struct ParsedObject {
    let result: Result<[String: JSONValue], RecordRejection>
    var uid: String? {
        if case .success(let o) = result, case .string(let u)? = o["studyInstanceUID"], Codes.isUID(u) { return u }
        return nil
    }

    static func invalid(_ message: String) -> ParsedObject {
        ParsedObject(result: .failure(RecordRejection(errors: [FieldError("", "invalid-json", message)])))
    }
}

/// Splits an upload body into record objects: NDJSON (one object a line; a bad line is
/// that record's error) or a JSON array (which must parse as a whole).
enum UploadBody {
    static func objects(_ request: HTTPRequest, maxBatch: Int) throws(HTTPError) -> [ParsedObject] {
        var objects: [ParsedObject] = []
        switch request.mediaType {
        case "application/x-ndjson", "application/ndjson":
            for line in request.body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
            where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
                guard objects.count < maxBatch else { throw tooMany(maxBatch) }
                if let object = JSONValue.parseObject(line) {
                    objects.append(ParsedObject(result: .success(object)))
                } else {
                    objects.append(.invalid("This line is not a JSON object."))
                }
            }
        case "application/json":
            guard case .array(let array)? = JSONValue.parse(request.body) else {
                throw HTTPError(400, "invalid_json", "The body must be a JSON array of study records.")
            }
            guard array.count <= maxBatch else { throw tooMany(maxBatch) }
            objects = array.map { value in
                if case .object(let o) = value { return ParsedObject(result: .success(o)) }
                return .invalid("This element is not a JSON object.")
            }
        default:
            throw HTTPError(415, "unsupported_media_type", "Send application/x-ndjson or application/json.")
        }
        guard !objects.isEmpty else { throw HTTPError(400, "empty_batch", "The batch holds no record.") }
        return objects
    }

    private static func tooMany(_ max: Int) -> HTTPError {
        HTTPError(413, "batch_too_large", "A batch holds at most \(max) records; split it.")
    }
}

/// A lookup's query parameters, checked: unknown ones are refused, not ignored.
struct QueryParameters {
    private let values: [String: String]

    init(_ request: HTTPRequest, allowed: Set<String>) throws(HTTPError) {
        var values: [String: String] = [:]
        for (name, value) in request.query {
            guard allowed.contains(name) else {
                throw HTTPError(400, "unsupported_parameter", "'\(HTTPError.quote(name))' is not a parameter of this lookup; use: \(allowed.sorted().joined(separator: ", ")).")
            }
            guard values[name] == nil else { throw HTTPError(400, "repeated_parameter", "'\(HTTPError.quote(name))' is given twice.") }
            values[name] = value
        }
        self.values = values
    }

    func purpose() throws(HTTPError) -> String {
        guard let p = values["purpose"], IndexRoutes.purposes.contains(p) else {
            throw HTTPError(400, "purpose_required", "Name the purpose of use: purpose=\(IndexRoutes.purposes.sorted().joined(separator: "|")).")
        }
        return p
    }

    func date(_ name: String) throws(HTTPError) -> String? {
        guard let v = values[name] else { return nil }
        let compact = v.count == 10 && Array(v)[4] == "-" && Array(v)[7] == "-" ? v.replacingOccurrences(of: "-", with: "") : v
        guard Codes.isCalendarDate(compact) else { throw HTTPError(400, "invalid_date", "'\(name)' must be a date, YYYY-MM-DD or YYYYMMDD.") }
        return compact
    }

    func modalities() throws(HTTPError) -> [String] {
        guard let v = values["modality"] else { return [] }
        let list = v.split(separator: ",").map(String.init)
        guard !list.isEmpty, list.allSatisfy(Codes.modalities.contains) else {
            throw HTTPError(400, "invalid_modality", "'modality' takes DICOM modality codes, comma-separated.")
        }
        return list
    }

    /// `local`, `all` or `region:CODE`. A lookup from a peer (role node) is answered from
    /// this node's store only, whatever it asks: lookups are never forwarded twice.
    func scope(callerRole: String?) throws(HTTPError) -> String {
        try ScopedLookup.scope(values["scope"], callerRole: callerRole)
    }

    /// A comma-separated list, when given.
    func string(_ name: String) -> String? { values[name] }

    func has(_ name: String) -> Bool { values[name] != nil }

    func list(_ name: String) -> [String]? {
        values[name].map { $0.split(separator: ",").map(String.init) }
    }

    func integer(_ name: String, default value: Int, in range: ClosedRange<Int>) throws(HTTPError) -> Int {
        guard let v = values[name] else { return value }
        guard let n = Int(v), range.contains(n) else {
            throw HTTPError(400, "invalid_\(name)", "'\(name)' must be an integer in \(range.lowerBound)...\(range.upperBound).")
        }
        return n
    }
}
