import ChildProcess
import Foundation
import GatewayNet
import JSONText
import Logging
import TestScratch
import XCTest

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Certificates from Certs/make-dev-certs.sh, made once per test process: the script is
/// under test too.
enum Fixtures {
    static let certs: String = make(crlDays: 30)
    static let expiredCRLCerts: String = make(crlDays: 0)

    private static func make(crlDays: Int) -> String {
        let dir = Scratch.processPath("gw-certs-\(crlDays)")
        let result = runTool("/bin/bash", [repoRoot + "/Certs/make-dev-certs.sh", dir], env: ["CRL_DAYS": "\(crlDays)"])
        precondition(result.status == 0, "make-dev-certs.sh failed: \(result.stderr)")
        return dir
    }
}

struct RunResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs a real peer (curl, openssl) and collects its output.
@discardableResult
func runTool(_ tool: String, _ args: [String], env: [String: String] = [:], stdin: Data? = nil) -> RunResult {
    let r = try! ChildProcess.run(tool.hasPrefix("/") ? tool : "/usr/bin/env", tool.hasPrefix("/") ? args : [tool] + args,
                                  environment: ProcessInfo.processInfo.environment.merging(env) { $1 }, input: stdin ?? Data())
    return RunResult(status: r.status, stdout: r.stdout, stderr: r.stderr)
}

/// A server on loopback with routes that let tests see what the server understood.
final class TestServer {
    let server: HTTPServer
    let tlsPort: Int
    let plainPort: Int

    init(configure: (inout HTTPServerConfiguration) -> Void = { _ in }, crl: Bool = true,
         certs: String = Fixtures.certs) throws {
        var tls = TLSConfiguration(certificateChainPath: certs + "/node.pem", privateKeyPath: certs + "/node-key.pem",
                                   trustedCAPath: certs + "/ca.pem", crlPath: crl ? certs + "/crl.pem" : nil)
        tls.identityPrefix = "urn:imaging-gateway:"
        let context = try TLSContext(configuration: tls, server: true)
        var config = HTTPServerConfiguration(listeners: [
            ListenerConfiguration(host: "127.0.0.1", port: 0, tls: context),
            ListenerConfiguration(host: "127.0.0.1", port: 0, tls: nil),
        ])
        config.loopCount = 2
        configure(&config)
        var router = Router()
        router.add("GET", "/hello", .inline { _ in .json("{\"hello\":\"world\"}") })
        router.add("GET", "/path/{id}", .inline { r in .json("{\"id\":\(jsonString(r.pathParameters["id"] ?? ""))}") })
        router.add("POST", "/echo", .inline { r in
            HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/octet-stream")]), body: r.body)
        })
        router.add("GET", "/big", .inline { r in
            let n = Int(r.query.first { $0.name == "n" }?.value ?? "") ?? 1 << 20
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain")]),
                                body: [UInt8](repeating: UInt8(ascii: "a"), count: n))
        })
        router.add("GET", "/slow", .async { _ in
            try await Task.sleep(for: .milliseconds(600))
            return .json("{\"slow\":true}")
        })
        // The kernel's name of the thread a handler's task runs on, before and after it
        // waits: where `async`, `awaiting` and `immediate` put it.
        let threads: @Sendable (HTTPRequest) async throws -> HTTPResponse = { _ in
            let before = Self.threadName()
            try await Task.sleep(for: .milliseconds(5))
            return .json("{\"before\":\(jsonString(before)),\"after\":\(jsonString(Self.threadName()))}")
        }
        router.add("GET", "/thread/async", .async(threads))
        router.add("GET", "/thread/awaiting", .awaiting(threads))
        router.add("GET", "/thread/immediate", .immediate(atOnce: { _ in nil }, threads))
        // Answered at once, refused at once, or left to the task.
        router.add("GET", "/at-once/{what}", .immediate(atOnce: { r in
            switch r.pathParameters["what"] {
            case "here": return .json("{\"by\":\"atOnce\"}")
            case "refused": throw HTTPError(409, "refused_at_once", "Refused before any task.")
            default: return nil
            }
        }) { _ in .json("{\"by\":\"task\"}") })
        router.add("GET", "/whoami", roles: ["clinic", "hospital"], .inline { r in
            .json("{\"role\":\(jsonString(r.peer?.role ?? "")),\"org\":\(jsonString(r.peer?.organization ?? ""))}")
        })
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = HTTPServer(configuration: config, router: router, logger: logger)
        let ports = try server.start()
        tlsPort = ports[0]
        plainPort = ports[1]
    }

    func stop() { server.shutdown(grace: .seconds(2)) }

    static func threadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A blocking TCP client for byte-exact requests: what curl would never send.
final class RawClient {
    let fd: Int32

    init(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(r == 0, "connect failed")
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the peer closes or `until` appears `count` times, or 5 s pass.
    func read(until marker: String? = nil, count: Int = 1) -> (text: String, closed: Bool) {
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            if let marker, String(decoding: data, as: UTF8.self).components(separatedBy: marker).count > count {
                return (String(decoding: data, as: UTF8.self), false)
            }
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { return (String(decoding: data, as: UTF8.self), n == 0) }
            data += buf[0..<n]
        }
    }

    /// Sends a request and reads the whole exchange until the server closes.
    func exchange(_ text: String) -> (text: String, closed: Bool) {
        send(text)
        return read()
    }
}
