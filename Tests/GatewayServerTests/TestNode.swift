import ChildProcess
import Foundation
import GatewayServer
import Logging
import TestScratch

/// A node in this process on a free loopback port, with development certificates in a
/// fresh data directory; `stop()` shuts it down.
struct TestNode {
    let gateway: Gateway
    let port: Int
    var certs: String { gateway.config.dataDirectory + "/dev-certs" }

    init(configure: (inout GatewayConfig) -> Void = { _ in }) throws {
        var config = GatewayConfig()
        config.dataDirectory = Scratch.path("gw-test")
        config.listen = ["127.0.0.1:0"]
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        gateway = try Gateway(config: config, logger: logger)
        port = try gateway.start()[0]
    }

    func stop() { gateway.shutdown() }

    var baseURL: String { "https://localhost:\(port)" }

    /// curl with `role`'s development client certificate; the status and the body.
    func curl(_ role: String, _ args: [String]) -> (status: Int, body: String) {
        TestProcess.curl(certs: certs, role, args)
    }

    /// A base for a few fixed ports a test must know before its nodes start (a peer's
    /// address, a node restarted on its old port): random, and below Linux's ephemeral
    /// range (32768–60999), where an outgoing connection could hold it (and a connect to
    /// a port there with nothing listening can take that port itself).
    static func fixedPortBase() -> Int { Int.random(in: 20_000..<32_000) }

    /// The repository root, where .ci/setup.sh made `.venv`.
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}

/// The binaries `swift test` built beside the test bundle, and running them.
enum TestProcess {
    static func built(_ name: String) -> String {
        let here = Bundle(for: AnchorClass.self).bundleURL
        return [here, here.deletingLastPathComponent()].map { $0.appendingPathComponent(name).path }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "\(name)-not-built"
    }

    /// Runs to the end; the exit status and standard output and error together.
    static func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
        do {
            let r = try ChildProcess.run(executable, arguments, mergeStderr: true)
            return (r.status, r.stdout)
        } catch {
            return (-1, "\(error)")
        }
    }

    /// curl with the client certificate `role` from the development certificates in
    /// `certs`; the status and the body (standard error is not mixed in).
    static func curl(certs: String, _ role: String, _ args: [String]) -> (status: Int, body: String) {
        let text = try! ChildProcess.run("/usr/bin/env", ["curl", "-sS", "--http1.1", "--cacert", certs + "/ca.pem", "--cert",
                                                          "\(certs)/\(role).pem", "--key", "\(certs)/\(role)-key.pem",
                                                          "-w", "\n%{http_code}"] + args).stdout
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    private final class AnchorClass {}
}
