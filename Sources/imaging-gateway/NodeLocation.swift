import ArgumentParser
import Foundation
import GatewayServer
import IndexStore

/// Where an offline command finds a node: its config file and data directory, as `serve`
/// reads them (file, then environment, then the flag).
struct NodeLocation: ParsableArguments {
    @Option(help: "JSON config file.") var config: String?
    @Option(help: "Data directory.") var dataDir: String?

    func resolved() throws -> GatewayConfig {
        var cfg: GatewayConfig
        do {
            cfg = try GatewayConfig.load(path: config, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
        if let dataDir { cfg.dataDirectory = dataDir }
        return cfg
    }

    /// The node's index store, which must exist already.
    func open(_ cfg: GatewayConfig, gathers: Bool = false) throws -> SQLiteIndexStore {
        let path = cfg.dataDirectory + "/index.sqlite"
        guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no database at \(path)") }
        return try SQLiteIndexStore(path: path, readers: 1, gathers: gathers)
    }
}
