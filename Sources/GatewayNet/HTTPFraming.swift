/// How a request's body is delimited (RFC 9112 §6.3), decided from its head alone.
enum Framing {
    case none
    case length(Int)
    case chunked

    init(request: HTTPRequest, limits: HTTPLimits) throws(HTTPError) {
        var hosts = 0
        var lengths: [String] = []
        var codings: [String] = []
        for (name, value) in request.headers {
            if name.caseInsensitiveEquals("Host") {
                hosts += 1
            } else if name.caseInsensitiveEquals("Content-Length") {
                lengths.append(value)
            } else if name.caseInsensitiveEquals("Transfer-Encoding") {
                codings += value.split(separator: ",").map { $0.trimmingOWS().lowercased() }
            }
        }
        if hosts != 1, request.version == .http11 {
            throw HTTPError(400, "invalid_host", "An HTTP/1.1 request needs exactly one Host header.")
        }
        if !codings.isEmpty {
            guard lengths.isEmpty else {
                throw HTTPError(400, "conflicting_framing", "Content-Length and Transfer-Encoding must not both be sent.")
            }
            guard request.version == .http11 else {
                throw HTTPError(400, "invalid_transfer_encoding", "Transfer-Encoding is not allowed in HTTP/1.0.")
            }
            guard codings.last == "chunked" else {
                throw HTTPError(400, "invalid_transfer_encoding", "A request's Transfer-Encoding must end with chunked.")
            }
            guard codings.count == 1 else {
                if codings.filter({ $0 == "chunked" }).count > 1 {
                    throw HTTPError(400, "invalid_transfer_encoding", "chunked may be applied only once.")
                }
                throw HTTPError(501, "unsupported_transfer_coding", "Only the chunked transfer coding is supported.")
            }
            self = .chunked
            return
        }
        guard !lengths.isEmpty else {
            self = .none
            return
        }
        var length: Int?
        for item in lengths.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let text = item.trimmingOWS()
            guard !text.isEmpty, text.utf8.allSatisfy(isDigit) else {
                throw HTTPError(400, "invalid_content_length", "Content-Length must be a decimal number.")
            }
            guard text.utf8.count <= 18, let n = Int(text), n <= limits.maxBodyBytes else {
                throw HTTPError(413, "body_too_large", "The request body exceeds \(limits.maxBodyBytes) bytes.")
            }
            if let seen = length, seen != n {
                throw HTTPError(400, "invalid_content_length", "Content-Length values disagree.")
            }
            length = n
        }
        self = length! == 0 ? .none : .length(length!)
    }
}

let cr = UInt8(ascii: "\r")
let lf = UInt8(ascii: "\n")
let space = UInt8(ascii: " ")
let tab = UInt8(ascii: "\t")

func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case 0x30...0x39: return b - 0x30
    case 0x41...0x46: return b - 0x41 + 10
    case 0x61...0x66: return b - 0x61 + 10
    default: return nil
    }
}

/// tchar of RFC 9110 §5.6.2.
func isTokenChar(_ b: UInt8) -> Bool {
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
         UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
         UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default: return false
    }
}

/// Lines of a head whose every line ends in CRLF (the caller checked that).
struct LineIterator {
    private let buf: UnsafeRawBufferPointer
    private var at = 0

    init(_ buf: UnsafeRawBufferPointer) {
        self.buf = buf
    }

    mutating func next() -> UnsafeRawBufferPointer? {
        guard at < buf.count else { return nil }
        var end = at
        while end < buf.count, buf[end] != cr { end += 1 }
        let line = UnsafeRawBufferPointer(rebasing: buf[at..<end])
        at = end + 2
        return line
    }
}

extension StringProtocol {
    /// Strips optional whitespace (SP, HTAB) from both ends.
    func trimmingOWS() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
