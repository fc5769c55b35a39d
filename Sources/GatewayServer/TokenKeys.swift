import Foundation
import PatientTokens

/// The token keys a node knows, from its key file, reloaded within a second of the file
/// changing (so `imaging-gateway keys rotate|retire` takes effect without a restart).
///
/// Evaluators are pooled per version: a `VOPRFServer` owns a BN_CTX and serves one
/// request at a time, and making one costs a key check, so idle ones are kept.
final class TokenKeys: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var file: TokenKeyFile
    private var modified: Date?
    private var checkedAt = ContinuousClock.now
    private var idle: [Int: [VOPRFServer]] = [:]

    init(path: String) throws(TokenKeyFile.Failure) {
        self.path = path
        file = try TokenKeyFile.load(path: path)
        modified = Self.modificationDate(path)
    }

    /// The file as of at most a second ago. A file that turns unreadable keeps the last good one.
    var current: TokenKeyFile {
        lock.withLock {
            if ContinuousClock.now - checkedAt > .seconds(1) {
                checkedAt = .now
                let date = Self.modificationDate(path)
                if date != modified, let fresh = try? TokenKeyFile.load(path: path) {
                    file = fresh
                    modified = date
                    idle.removeAll()
                }
            }
            return file
        }
    }

    func isRetired(_ version: Int) -> Bool { current.retiredVersions.contains(version) }

    /// Runs `body` with an evaluator for `version`, which must be usable.
    func withEvaluator<T>(version: Int, _ body: (VOPRFServer) throws -> T) throws -> T {
        let snapshot = current
        guard let secret = snapshot.secretKey(version: version) else {
            throw TokenServiceError.unknownVersion(version)
        }
        guard !snapshot.retiredVersions.contains(version) else { throw TokenServiceError.retired(version) }
        let evaluator = try lock.withLock { idle[version]?.popLast() } ?? VOPRFServer(secretKey: secret)
        defer { lock.withLock { idle[version, default: []].append(evaluator) } }
        return try body(evaluator)
    }

    /// The public keys, for agents to pin: version, state and compressed point.
    func publicKeys() throws -> [(version: Int, state: TokenKeyFile.State, publicKey: [UInt8])] {
        let snapshot = current
        return try snapshot.keys.sorted { $0.version < $1.version }.map { key in
            (key.version, key.state, try VOPRFServer(secretKey: snapshot.secretKey(version: key.version) ?? []).publicKey)
        }
    }

    private static func modificationDate(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}

enum TokenServiceError: Error, Equatable {
    case unknownVersion(Int)
    case retired(Int)
}
