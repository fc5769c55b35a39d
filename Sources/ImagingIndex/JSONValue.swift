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

    /// Parses JSON text (`JSONParser`); nil when the text is not JSON.
    public static func parse(_ bytes: some DataProtocol) -> JSONValue? {
        JSONParser.parse(bytes)
    }

    /// The object a JSON text holds, or nil when it holds something else or is not JSON.
    public static func parseObject(_ bytes: some DataProtocol) -> [String: JSONValue]? {
        guard case .object(let o)? = parse(bytes) else { return nil }
        return o
    }
}
