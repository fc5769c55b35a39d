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

    /// The node's index store, which must exist already, for reading (the node may run).
    func open(_ cfg: GatewayConfig, gathers: Bool = false) throws -> SQLiteIndexStore {
        try SQLiteIndexStore(path: try existingDatabase(cfg), readers: 1, gathers: gathers)
    }

    private func existingDatabase(_ cfg: GatewayConfig) throws -> String {
        let path = cfg.dataDirectory + "/index.sqlite"
        guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no database at \(path)") }
        return path
    }

    /// Runs `body` on the node's store with the data directory's lock held, as a command
    /// that writes to the store must: refused while the node (or another such command) runs.
    func withStoreExclusively<T>(_ cfg: GatewayConfig, gathers: Bool = false,
                                 _ body: (SQLiteIndexStore) async throws -> T) async throws -> T {
        _ = try existingDatabase(cfg)
        let lock: DataDirectoryLock
        do {
            lock = try DataDirectoryLock(directory: cfg.dataDirectory)
        } catch {
            throw ValidationError(error.description)
        }
        let result = try await body(try open(cfg, gathers: gathers))
        withExtendedLifetime(lock) {}
        return result
    }
}
