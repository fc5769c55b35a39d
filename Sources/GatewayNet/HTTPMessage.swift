import JSONText

/// Header fields in arrival order; names compare case-insensitively (RFC 9110 §5.1).
public struct HTTPHeaders: Sendable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init(_ fields: [(String, String)] = []) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field of that name with one.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { $0.name.caseInsensitiveEquals(name) }
    }

    public subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Whether a comma-separated field (Connection, Accept-Encoding…) lists `token`,
    /// ignoring case and parameters (`gzip;q=1`). Allocates nothing: it runs per request.
    public func hasToken(_ name: String, _ token: String) -> Bool {
        fields.contains { $0.name.caseInsensitiveEquals(name) && Self.listContains($0.value, token) }
    }

    private static func listContains(_ list: String, _ token: String) -> Bool {
        let bytes = Array(list.utf8), want = Array(token.utf8)
        var i = 0
        while i < bytes.count {
            while i < bytes.count, bytes[i] == space || bytes[i] == tab || bytes[i] == UInt8(ascii: ",") { i += 1 }
            var j = 0
            while i < bytes.count, j < want.count, bytes[i] | 0x20 == want[j] | 0x20 { i += 1; j += 1 }
            var k = i
            while k < bytes.count, bytes[k] == space || bytes[k] == tab { k += 1 }
            if j == want.count, k == bytes.count || bytes[k] == UInt8(ascii: ",") || bytes[k] == UInt8(ascii: ";") {
                return true
            }
            while i < bytes.count, bytes[i] != UInt8(ascii: ",") { i += 1 }
        }
        return false
    }

    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

/// Who is calling, from the verified client certificate's SAN URI. The URI's shape
/// `urn:NAMESPACE:ROLE:ORGANIZATION` is configured by the server, not assumed here.
public struct PeerIdentity: Sendable, Equatable {
    public let uri: String
    public let role: String
    public let organization: String

    /// Parses `uri` if it starts with `prefix` and has exactly a role and an
    /// organization after it.
    public init?(uri: String, prefix: String) {
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        self.uri = uri
        role = String(parts[0])
        organization = String(parts[1])
    }
}

public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target as sent: origin-form path and query.
    public var target: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    public var version: HTTPVersion
    /// The verified client certificate's identity, nil on plain HTTP or without one.
    public var peer: PeerIdentity?
    /// Whether the request arrived over TLS.
    public var isTLS = false
    /// Values bound by the route pattern's `{name}` segments.
    public var pathParameters: [String: String] = [:]

    public init(method: String, target: String, headers: HTTPHeaders = HTTPHeaders(),
                body: [UInt8] = [], version: HTTPVersion = .http11, peer: PeerIdentity? = nil) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.version = version
        self.peer = peer
    }

    public var path: Substring {
        queryMark.map { target[..<$0] } ?? target[...]
    }

    /// Where the query starts. Searched in UTF-8, not by Character: grapheme breaking made
    /// this a visible cost of every request (the router and the audit log both ask).
    private var queryMark: String.Index? { target.utf8.firstIndex(of: UInt8(ascii: "?")) }

    /// Query parameters, percent-decoded; a repeated name keeps every value in order.
    /// Empty pairs (`&&`) are skipped; a pair without `=` has the empty value; the value
    /// runs from the first `=` to the next `&`. Split over the target's bytes: splitting the
    /// String by Character, grapheme breaking and all, was 1.5 % of a token lookup's CPU.
    public var query: [(name: String, value: String)] {
        var target = self.target
        return target.withUTF8 { bytes in
            var pairs: [(name: String, value: String)] = []
            Self.eachPair(bytes) { name, value in
                pairs.append((name: Self.decoded(name), value: Self.decoded(value)))
                return true
            }
            return pairs
        }
    }

    /// The first value of parameter `name`, percent-decoded: what
    /// `query.first { $0.name == name }?.value` gives, found over the target's bytes
    /// without splitting or decoding the other parameters. The audit log reads the purpose
    /// of every request this way; `query` split and decoded all of them, and String's
    /// UTF-8 view walked index by index cost as much as the rest of building the event.
    public func queryValue(_ name: String) -> String? {
        var target = self.target
        return target.withUTF8 { bytes -> String? in
            var found: String?
            Self.eachPair(bytes) { raw, value in
                guard Self.names(raw, name) else { return true }
                found = Self.decoded(value)
                return false
            }
            return found
        }
    }

    /// The query's pairs over the target's bytes, in order, each as its raw name and value
    /// (from the first `=` to the next `&`; empty when there is no `=`), empty pairs
    /// skipped, until `visit` returns false.
    private static func eachPair(_ bytes: UnsafeBufferPointer<UInt8>,
                                 _ visit: (Slice<UnsafeBufferPointer<UInt8>>, Slice<UnsafeBufferPointer<UInt8>>) -> Bool) {
        guard var at = bytes.firstIndex(of: UInt8(ascii: "?")) else { return }
        while at < bytes.endIndex {
            let start = at + 1
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.endIndex
            if start < end {
                let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")) ?? end
                guard visit(bytes[start..<equals], bytes[min(equals + 1, end)..<end]) else { return }
            }
            at = end
        }
    }

    /// Whether `raw`, decoded, is `name`; compared byte for byte when nothing in it is encoded.
    private static func names(_ raw: Slice<UnsafeBufferPointer<UInt8>>, _ name: String) -> Bool {
        if raw.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) { return decoded(raw) == name }
        return raw.elementsEqual(name.utf8)
    }

    private static func decoded(_ raw: Slice<UnsafeBufferPointer<UInt8>>) -> String {
        let text = String(decoding: UnsafeBufferPointer(rebasing: raw), as: UTF8.self)
        return raw.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) ? percentDecode(text[...]) : text
    }

    /// The body's media type, what Content-Type names before any parameter, without the
    /// optional whitespace around it and lowercased (RFC 9110 §8.3.1: type and subtype are
    /// case-insensitive); "" when there is none. `Application/JSON; charset=utf-8` is
    /// `application/json`.
    public var mediaType: String {
        guard let value = headers["Content-Type"] else { return "" }
        let bytes = Array(value.utf8.prefix { $0 != UInt8(ascii: ";") })
        let isSpace = { (b: UInt8) in b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }
        let start = bytes.firstIndex { !isSpace($0) } ?? bytes.endIndex
        let end = bytes.lastIndex { !isSpace($0) }.map { $0 + 1 } ?? start
        return String(decoding: bytes[start..<end].map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Whether the connection may stay open after this exchange (RFC 9112 §9.3).
    public var keepAlive: Bool {
        if headers.hasToken("Connection", "close") { return false }
        return version == .http11 || headers.hasToken("Connection", "keep-alive")
    }
}

public enum HTTPVersion: Sendable, Equatable {
    case http10, http11
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int = 200, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response whose body is `json`, already encoded.
    public static func json(_ json: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: HTTPHeaders([("Content-Type", "application/json")]),
                     body: Array(json.utf8))
    }
}

/// An error that becomes `{"error":{"code":…,"message":…}}` with its status.
/// `code` is a stable machine code; `message` is for a person and never holds request data
/// that could carry a patient identifier.
public struct HTTPError: Error, Sendable, Equatable {
    public let status: Int
    public let code: String
    public let message: String

    public init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var response: HTTPResponse {
        .json("{\"error\":{\"code\":\(jsonString(code)),\"message\":\(jsonString(message))}}",
              status: status)
    }

    /// Text from a request (a parameter or field name) fit to quote in a message: at most
    /// 40 characters of letters, digits and `._:-`, with no run of more than 8 digits, since
    /// the identifiers a message must never carry are long digit runs. Anything else is
    /// shown as a placeholder.
    public static func quote(_ text: some StringProtocol) -> String {
        var digits = 0
        let fits = text.utf8.count <= 40 && text.utf8.allSatisfy { c in
            let digit = c >= 0x30 && c <= 0x39
            digits = digit ? digits + 1 : 0
            let letter = (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A
            return digits <= 8 && (digit || letter || c == 0x2E || c == 0x5F || c == 0x3A || c == 0x2D)
        }
        return fits ? String(text) : "(a name not shown)"
    }
}

func percentDecode(_ s: Substring) -> String {
    guard s.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(s) }
    var bytes: [UInt8] = []
    var it = Array(s.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "+") {
            bytes.append(UInt8(ascii: " "))
        } else if b == UInt8(ascii: "%"), it.count >= 2,
                  let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(v)
            it = it.dropFirst(2)
        } else {
            bytes.append(b)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension StringProtocol {
    /// ASCII case-insensitive equality, without Foundation (header names and tokens are
    /// ASCII; a non-ASCII byte compares exactly).
    func caseInsensitiveEquals(_ other: String) -> Bool {
        if let native = self as? String, native.utf8.count != other.utf8.count { return false }
        var a = utf8.makeIterator(), b = other.utf8.makeIterator()
        while true {
            switch (a.next(), b.next()) {
            case (nil, nil): return true
            case let (x?, y?):
                if x != y {
                    let lx = x | 0x20
                    guard lx == y | 0x20, lx >= 97, lx <= 122 else { return false }
                }
            default: return false
            }
        }
    }
}
