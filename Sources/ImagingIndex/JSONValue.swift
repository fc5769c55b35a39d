import Foundation

/// A decoded JSON value, so that a record can be checked field by field (a wrong type
/// in one field is that field's error, not a failure to decode the batch).
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses JSON text: Foundation's `JSONSerialization`, then a walk over its result.
    /// Several times cheaper than `JSONDecoder` into this type, whose `init(from:)` learns
    /// each value's type by trying one type after another, each miss a thrown error; that
    /// was most of the CPU of a UPS-RS create. nil when the text is not JSON.
    public static func parse(_ bytes: some DataProtocol) -> JSONValue? {
        guard let any = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else { return nil }
        return JSONValue(foundation: any)
    }

    /// The object a JSON text holds, or nil when it holds something else or is not JSON.
    public static func parseObject(_ bytes: some DataProtocol) -> [String: JSONValue]? {
        guard case .object(let o)? = parse(bytes) else { return nil }
        return o
    }

    /// Containers are tested first, and NSNumber last: a cast of a Swift dictionary or
    /// array to NSNumber bridges the whole container to Objective-C before failing.
    private init?(foundation any: Any) {
        if let o = any as? [String: Any] {
            var out: [String: JSONValue] = [:]
            out.reserveCapacity(o.count)
            for (key, element) in o {
                guard let v = JSONValue(foundation: element) else { return nil }
                out[key] = v
            }
            self = .object(out)
        } else if let a = any as? [Any] {
            var out: [JSONValue] = []
            out.reserveCapacity(a.count)
            for element in a {
                guard let v = JSONValue(foundation: element) else { return nil }
                out.append(v)
            }
            self = .array(out)
        } else if let s = any as? String {
            self = .string(s)
        } else if any is NSNull {
            self = .null
        } else if let n = any as? NSNumber {
            // JSONSerialization gives true and false as NSNumbers of ObjC type "c" (char).
            self = String(cString: n.objCType) == "c" ? .bool(n.boolValue) : .number(n.doubleValue)
        } else {
            return nil
        }
    }
}
