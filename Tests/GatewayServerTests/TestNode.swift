import Foundation
import GatewayServer
import Logging

/// A node in this process on a free loopback port, with development certificates in a
/// fresh data directory; `stop()` shuts it down.
struct TestNode {
    let gateway: Gateway
    let port: Int
    var certs: String { gateway.config.dataDirectory + "/dev-certs" }

    init(configure: (inout GatewayConfig) -> Void = { _ in }) throws {
        var config = GatewayConfig()
        config.dataDirectory = NSTemporaryDirectory() + "gw-test-\(UUID().uuidString)"
        config.listen = ["127.0.0.1:0"]
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        gateway = try Gateway(config: config, logger: logger)
        port = try gateway.start()[0]
    }

    func stop() { gateway.shutdown() }

    /// The repository root, where scripts/setup.sh made `.venv`.
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}
