import ArgumentParser
import CGatewayShims
import CommandExit
import Dispatch
import Foundation
import GatewayServer
import Logging

@main
struct ImagingGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imaging-gateway",
        abstract: "A regional or national node of the ImagingGateway medical-imaging index.",
        subcommands: [Serve.self, Keys.self, Audit.self, Gather.self, Backup.self],
        defaultSubcommand: Serve.self)

    /// Leaves by `_exit` once the command is done (CommandExit says why). `serve` returns
    /// after the node has stopped: every answer it sent was durable before it was sent.
    static func main() async { await runThenExit() }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node until SIGTERM or SIGINT.",
        discussion: "Settings come from --config (JSON), then IMAGING_GATEWAY_* environment variables, then flags.")

    @Option(help: "JSON config file.") var config: String?
    @Option(help: "Data directory (store, dev certificates).") var dataDir: String?
    @Option(help: "TLS listen addresses, comma-separated host:port.") var listen: String?
    @Option(help: "Plain-HTTP listen addresses (keep on loopback).") var plainListen: String?
    @Option(help: "Six-digit region code.") var region: String?
    @Option(help: "Log level.") var logLevel: String?
    @Option(help: "Event loops (default: one per core).") var loops: Int?
    @Flag(help: "Serve the token service (POST /v1/tokens/evaluate).") var tokenService = false

    func run() throws {
        var cfg: GatewayConfig
        do {
            cfg = try GatewayConfig.load(path: config, environment: ProcessInfo.processInfo.environment)
            let list = { (s: String) in s.split(separator: ",").map(String.init) }
            if let dataDir { cfg.dataDirectory = dataDir }
            if let listen { cfg.listen = list(listen) }
            if let plainListen { cfg.plainListen = list(plainListen) }
            if let region { cfg.region = region }
            if let logLevel { cfg.logLevel = logLevel }
            if let loops { cfg.loops = loops }
            if tokenService { cfg.tokens.service = true }
            try cfg.validate()
        } catch {
            throw ValidationError(error.description)
        }
        let level = Logger.Level(rawValue: cfg.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "imaging-gateway")
        // glibc raises its mmap threshold to the largest block freed (up to 32 MiB), after
        // which a refused 60 MiB bomb body or a batch's buffers come from the heap and stay
        // resident. A fixed threshold keeps blocks of 1 MiB and more in their own mappings,
        // returned to the system when freed; the cost is an mmap per large body.
        // Fixing it also left the trim threshold at 128 KiB: each thread's heap gave its
        // free top back (madvise) and faulted it in again, zeroed, milliseconds later, as
        // SQLite's page caches and the request buffers churned (2 % of the node's CPU in
        // madvise alone under the read-queue benchmark; cycles +10 % with 64 MiB kept).
        _ = gw_fix_malloc_thresholds(1 << 20, 64 << 20)
        let gateway: Gateway
        let lock: DataDirectoryLock
        do {
            // A data directory made here is synced into its parent before anything is
            // acknowledged from it: without that, a power cut could lose its name, and with
            // it every file inside, however well each was synced.
            if !FileManager.default.fileExists(atPath: cfg.dataDirectory) {
                try FileManager.default.createDirectory(atPath: cfg.dataDirectory, withIntermediateDirectories: true)
                let parent = URL(fileURLWithPath: cfg.dataDirectory).standardizedFileURL.deletingLastPathComponent().path
                guard gw_sync_directory(parent) == 0 else { throw ValidationError("cannot sync \(parent)") }
            }
            lock = try DataDirectoryLock(directory: cfg.dataDirectory)
            gateway = try Gateway(config: cfg, logger: logger)
            if let dir = gateway.devCertificateDirectory {
                logger.notice("using development certificates (not for production)", metadata: [
                    "directory": "\(dir)", "ca": "\(dir)/ca.pem",
                    "clients": "\(dir)/<role>.pem and <role>-key.pem"])
            }
            try gateway.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { stop.signal() }
            source.activate()
            sources.append(source)
        }
        logger.info("ready", metadata: ["region": "\(cfg.region)", "role": "\(cfg.role)"])
        // The lock is held until the node has stopped writing, not only until the signal.
        withExtendedLifetime(lock) {
            stop.wait()
            logger.info("shutting down")
            gateway.shutdown()
        }
        sources.forEach { $0.cancel() }
    }
}
