import ArgumentParser
import Foundation
import GatewayServer
import IndexStore
import PatientTokens

/// `imaging-gateway keys …`: the token service's key file, outside the database.
struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, rotate, retire and list token keys; purge a retired version's tokens.",
        discussion: """
            Rotation: `rotate` adds a new active version and keeps the previous one accepted, so
            agents can tokenize again while lookups still match either. When every hospital has
            re-uploaded, `retire --version N` refuses version N everywhere, and
            `purge --version N` deletes the studies still indexed under it.
            A running node picks up key file changes within a second.
            """,
        subcommands: [Create.self, Rotate.self, Retire.self, Purge.self, List.self])

    struct Location: ParsableArguments {
        @OptionGroup var node: NodeLocation
        @Option(help: "Key file (default: <data-dir>/token-keys.json).") var keyFile: String?

        func resolved() throws -> GatewayConfig {
            var cfg = try node.resolved()
            if let keyFile { cfg.tokens.keyFile = keyFile }
            return cfg
        }

        func load() throws -> (path: String, file: TokenKeyFile) {
            let path = try resolved().tokenKeyFile
            do {
                return (path, try TokenKeyFile.load(path: path))
            } catch {
                throw ValidationError(error.description)
            }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a key file with version 1 active.")
        @OptionGroup var location: Location

        func run() throws {
            let path = try location.resolved().tokenKeyFile
            guard !FileManager.default.fileExists(atPath: path) else {
                throw ValidationError(TokenKeyFile.Failure.exists(path).description)
            }
            try TokenKeyFile.create().save(path: path)
            print("created \(path) with key version 1 (active)")
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a new active version; the old one stays accepted.")
        @OptionGroup var location: Location

        func run() throws {
            var (path, file) = try location.load()
            try file.rotate()
            try file.save(path: path)
            print("key version \(file.active!.version) is active; accepted: \(file.usableVersions.map(String.init).joined(separator: ", "))")
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a version everywhere (not the active one).")
        @OptionGroup var location: Location
        @Option(help: "The version to retire.") var version: Int

        func run() throws {
            var (path, file) = try location.load()
            do {
                try file.retire(version: version)
            } catch {
                throw ValidationError(error.description)
            }
            try file.save(path: path)
            print("key version \(version) retired; run `imaging-gateway keys purge --version \(version)` to delete its tokens' studies")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete the studies indexed under a retired version's tokens.",
            discussion: "Run it with the node stopped; it refuses while the node runs.")
        @OptionGroup var location: Location
        @Option(help: "The retired version whose studies to delete.") var version: Int

        func run() async throws {
            let cfg = try location.resolved()
            let (_, file) = try location.load()
            guard file.retiredVersions.contains(version) else {
                throw ValidationError("key version \(version) is not retired; retire it first")
            }
            let deleted = try await location.node.withStoreExclusively(cfg) { store in
                try await store.purgeTokens(keyVersion: version)
            }
            print("deleted \(deleted) studies indexed under key version \(version)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show versions, states and public keys (never secrets).")
        @OptionGroup var location: Location

        func run() throws {
            let (_, file) = try location.load()
            for key in file.keys.sorted(by: { $0.version < $1.version }) {
                let publicKey = try VOPRFServer(secretKey: file.secretKey(version: key.version) ?? []).publicKey
                print("v\(key.version)\t\(key.state.rawValue)\t\(key.created)\t\(Base64URL.encode(publicKey))")
            }
        }
    }
}
