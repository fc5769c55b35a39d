import Foundation
import PatientTokens
import XCTest

final class TokenKeyFileTests: XCTestCase {
    /// The key file is written beside its name and renamed over it. What a crash left
    /// beside it, with whatever mode, neither survives nor lends the secrets its mode.
    func testSavingOverAStaleTemporaryFileKeepsTheSecretsPrivate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("token-key-file-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/token-keys.json"
        XCTAssertTrue(FileManager.default.createFile(atPath: path + ".tmp", contents: Data("{\"keys\":[".utf8),
                                                     attributes: [.posixPermissions: 0o644]), "the stale temporary file made")
        let file = try TokenKeyFile.create()
        try file.save(path: path)
        XCTAssertEqual(try TokenKeyFile.load(path: path), file)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
    }
}
