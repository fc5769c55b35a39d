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

    /// The node's index database, which must exist.
    func existingDatabase(_ cfg: GatewayConfig) throws -> String {
        let path = cfg.dataDirectory + "/index.sqlite"
        guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no database at \(path)") }
        return path
    }

    /// Runs `body` on the node's audit log. With no node running it opens the store with
    /// the lock held, which first files any leaves a crash left pending; beside a running
    /// node (which did that when it started) it reads through a read-only connection.
    func withAuditLog<T>(_ cfg: GatewayConfig, _ body: (any AuditLogReading) async throws -> T) async throws -> T {
        try await withStore(cfg, gathers: false, whenHeld: { try await body(try SQLiteAuditSnapshot(path: $0)) }, body)
    }

    /// Runs `body` on the node's store, which must exist already, with the data directory's
    /// lock held: refused while the node (or another such command) runs.
    func withStoreExclusively<T>(_ cfg: GatewayConfig, gathers: Bool = false,
                                 _ body: (SQLiteIndexStore) async throws -> T) async throws -> T {
        try await withStore(cfg, gathers: gathers, whenHeld: { _ in nil }, body)
    }

    /// `body` on the store with the lock held; when someone else holds it, `whenHeld` on the
    /// database's path, or a refusal naming the holder where that gives nil.
    private func withStore<T>(_ cfg: GatewayConfig, gathers: Bool, whenHeld: (String) async throws -> T?,
                              _ body: (SQLiteIndexStore) async throws -> T) async throws -> T {
        let path = try existingDatabase(cfg)
        let lock: DataDirectoryLock
        do {
            lock = try DataDirectoryLock(directory: cfg.dataDirectory)
        } catch {
            if case .held = error, let answer = try await whenHeld(path) { return answer }
            throw ValidationError(error.description)
        }
        let result = try await body(try SQLiteIndexStore(path: path, readers: 1, gathers: gathers))
        withExtendedLifetime(lock) {}
        return result
    }
}
