/// Serializes a response head and body into the connection's output buffer, so head
/// and body leave in one write (one TLS record for small answers).
enum ResponseEncoder {
    static func encode(_ response: HTTPResponse, into out: inout [UInt8], date: [UInt8],
                       keepAlive: Bool, headRequest: Bool) {
        out.append(contentsOf: statusLine(response.status))
        out.append(contentsOf: "Date: ".utf8)
        out.append(contentsOf: date)
        let bodyless = response.status == 204 || response.status == 304 || response.status < 200
        if !bodyless {
            out.append(contentsOf: "\r\nContent-Length: ".utf8)
            out.append(contentsOf: String(response.body.count).utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        for (name, value) in response.headers {
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        if !keepAlive { out.append(contentsOf: "Connection: close\r\n".utf8) }
        out.append(contentsOf: "\r\n".utf8)
        if !headRequest && !bodyless { out.append(contentsOf: response.body) }
    }

    static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    private static let statusLines: [Int: [UInt8]] = Dictionary(uniqueKeysWithValues:
        (100...599).compactMap { status in reason(status).map { (status, Array("HTTP/1.1 \(status) \($0)\r\n".utf8)) } })

    private static func statusLine(_ status: Int) -> [UInt8] {
        statusLines[status] ?? Array("HTTP/1.1 \(status) Status\r\n".utf8)
    }

    static func reason(_ status: Int) -> String? {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        case 507: return "Insufficient Storage"
        default: return nil
        }
    }
}
