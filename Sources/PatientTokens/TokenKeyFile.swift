import CGatewayShims
import Foundation

/// The token service's keys: a JSON file outside the database, mode 0600, replaced
/// atomically (write, fsync, rename, fsync the directory) so a crash leaves the old file or
/// the new one, never half of either.
///
/// Lifecycle of a version: `active` (the one new tokens use; exactly one), `accepted`
/// (after a rotation: still evaluated and matched, so agents can re-tokenize during the
/// overlap), `retired` (refused everywhere; its tokens are purged from the index).
public struct TokenKeyFile: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case active, accepted, retired }

    public struct Key: Codable, Sendable, Equatable {
        public var version: Int
        public var state: State
        public var created: String
        /// 32-byte secret scalar, hex. Never logged, never sent.
        public var secretKey: String
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case exists(String)
        case unreadable(String)
        case unknownVersion(Int)
        case cannotRetireActive(Int)

        public var description: String {
            switch self {
            case .exists(let path): "\(path) already exists; use `keys rotate` to add a version"
            case .unreadable(let why): "the key file cannot be used: \(why)"
            case .unknownVersion(let v): "there is no key version \(v)"
            case .cannotRetireActive(let v): "version \(v) is the active key; rotate first, then retire it"
            }
        }
    }

    public static let format = "imaging-gateway/token-keys/1"
    public var format: String = TokenKeyFile.format
    public var keys: [Key]

    public var active: Key? { keys.first { $0.state == .active } }
    /// Versions whose tokens are evaluated and matched.
    public var usableVersions: [Int] { keys.filter { $0.state != .retired }.map(\.version).sorted() }
    public var retiredVersions: Set<Int> { Set(keys.filter { $0.state == .retired }.map(\.version)) }

    /// A file with one active key, version 1.
    public static func create() throws -> TokenKeyFile {
        TokenKeyFile(keys: [try newKey(version: 1)])
    }

    /// A new active version; the previous active one becomes accepted.
    public mutating func rotate() throws {
        for i in keys.indices where keys[i].state == .active { keys[i].state = .accepted }
        keys.append(try Self.newKey(version: (keys.map(\.version).max() ?? 0) + 1))
    }

    public mutating func retire(version: Int) throws(Failure) {
        guard let i = keys.firstIndex(where: { $0.version == version }) else { throw .unknownVersion(version) }
        guard keys[i].state != .active else { throw .cannotRetireActive(version) }
        keys[i].state = .retired
    }

    public func secretKey(version: Int) -> [UInt8]? {
        guard let key = keys.first(where: { $0.version == version }) else { return nil }
        return Self.bytes(hex: key.secretKey)
    }

    static func newKey(version: Int) throws -> Key {
        let secret = try VOPRFServer.generateSecretKey()
        return Key(version: version, state: .active, created: ISO8601DateFormatter().string(from: Date()),
                   secretKey: secret.map { String(format: "%02x", $0) }.joined())
    }

    static func bytes(hex: String) -> [UInt8]? {
        let chars = Array(hex.utf8)
        guard chars.count == 64 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let b = UInt8(String(decoding: chars[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
        }
        return out
    }

    // MARK: file

    public static func load(path: String) throws(Failure) -> TokenKeyFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable("\(path) cannot be read") }
        guard let file = try? JSONDecoder().decode(TokenKeyFile.self, from: data), file.format == format else {
            throw .unreadable("\(path) is not a \(format) file")
        }
        guard file.keys.filter({ $0.state == .active }).count == 1,
              file.keys.allSatisfy({ (try? VOPRFServer(secretKey: bytes(hex: $0.secretKey) ?? [])) != nil }),
              Set(file.keys.map(\.version)).count == file.keys.count
        else { throw .unreadable("\(path) needs exactly one active key, distinct versions and valid secrets") }
        return file
    }

    public func save(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory.isEmpty ? "." : directory,
                                                withIntermediateDirectories: true)
        let failure = data.withUnsafeBytes { gw_publish_file(path, $0.baseAddress, $0.count, 0o600, 1) }
        guard failure == 0 else { throw Failure.unreadable("cannot replace \(path): errno \(failure)") }
    }
}
