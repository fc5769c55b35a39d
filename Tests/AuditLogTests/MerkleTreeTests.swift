import AuditLog
import Foundation
import TestScratch
import XCTest

/// The tree and its proofs against an independent implementation written here from the
/// RFC 6962 §2.1 definitions (over raw leaf data, recursively), and against the published
/// RFC 6962 test tree of eight leaves.
final class MerkleTreeTests: XCTestCase {
    // MARK: the independent implementation

    static func h(_ b: [UInt8]) -> [UInt8] { MerkleTree.sha256(b) }
    static func k(_ n: Int) -> Int { var k = 1; while k * 2 < n { k *= 2 }; return k }

    static func mth(_ d: ArraySlice<[UInt8]>) -> [UInt8] {
        if d.isEmpty { return h([]) }
        if d.count == 1 { return h([0] + d.first!) }
        let split = d.startIndex + k(d.count)
        return h([1] + mth(d[..<split]) + mth(d[split...]))
    }

    static func path(_ m: Int, _ d: ArraySlice<[UInt8]>) -> [[UInt8]] {
        if d.count <= 1 { return [] }
        let kk = k(d.count), split = d.startIndex + kk
        return m < kk ? path(m, d[..<split]) + [mth(d[split...])] : path(m - kk, d[split...]) + [mth(d[..<split])]
    }

    static func subproof(_ m: Int, _ d: ArraySlice<[UInt8]>, _ b: Bool) -> [[UInt8]] {
        if m == d.count { return b ? [] : [mth(d)] }
        let kk = k(d.count), split = d.startIndex + kk
        return m <= kk ? subproof(m, d[..<split], b) + [mth(d[split...])] : subproof(m - kk, d[split...], false) + [mth(d[..<split])]
    }

    static let data: [[UInt8]] = (0..<37).map { i in Array("event \(i) \(String(repeating: "x", count: i % 5))".utf8) }

    // MARK: tests

    func testRFC6962TestTree() {
        let leaves: [[UInt8]] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                 "606162636465666768696a6b6c6d6e6f"].map(Self.bytes)
        let hashes = leaves.map(MerkleTree.leafHash)
        XCTAssertEqual(Self.hex(MerkleTree.root(hashes[...])), "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
        XCTAssertEqual(Self.hex(MerkleTree.root(hashes[0..<1])), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        XCTAssertEqual(Self.hex(MerkleTree.root([][...])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testRootsAndInclusionProofsMatchTheDefinition() {
        let hashes = Self.data.map(MerkleTree.leafHash)
        for n in 1...Self.data.count {
            let root = MerkleTree.root(hashes[0..<n])
            XCTAssertEqual(root, Self.mth(Self.data[0..<n]), "root of \(n)")
            for m in 0..<n {
                let proof = MerkleTree.inclusionProof(index: m, hashes[0..<n])
                XCTAssertEqual(proof, Self.path(m, Self.data[0..<n]), "path \(m) of \(n)")
                XCTAssertTrue(MerkleTree.verifyInclusion(leaf: hashes[m], index: m, treeSize: n, proof: proof, root: root))
                XCTAssertFalse(MerkleTree.verifyInclusion(leaf: hashes[(m + 1) % Self.data.count], index: m, treeSize: n,
                                                          proof: proof, root: root) && n > 1, "another leaf at \(m) of \(n)")
                if !proof.isEmpty {
                    var bad = proof
                    bad[bad.count - 1][0] ^= 1
                    XCTAssertFalse(MerkleTree.verifyInclusion(leaf: hashes[m], index: m, treeSize: n, proof: bad, root: root))
                }
            }
        }
    }

    func testFrontierRootsEqualTheFullComputationAtEverySize() {
        let hashes = (0..<70).map { MerkleTree.leafHash([UInt8($0)]) }
        var frontier = MerkleFrontier()
        XCTAssertEqual(frontier.root, MerkleTree.root([][...]))
        for n in 1...hashes.count {
            frontier.append(hashes[n - 1])
            XCTAssertEqual(frontier.size, n)
            XCTAssertEqual(frontier.hashes.count, n.nonzeroBitCount, "one subtree root per set bit of \(n)")
            XCTAssertEqual(frontier.root, MerkleTree.root(hashes[0..<n]), "root of \(n)")
            XCTAssertEqual(MerkleFrontier(size: n, bytes: frontier.bytes), frontier, "kept and read back at \(n)")
        }
        var resumed = MerkleFrontier(size: 37, bytes: {
            var f = MerkleFrontier()
            f.append(contentsOf: hashes.prefix(37))
            return f.bytes
        }())!
        resumed.append(contentsOf: hashes[37...])
        XCTAssertEqual(resumed, frontier, "extending a kept frontier equals building it in one go")
        XCTAssertNil(MerkleFrontier(size: 6, hashes: [hashes[0]]), "6 leaves need two subtree roots")
        XCTAssertNil(MerkleFrontier(size: 1, bytes: [1, 2, 3]))
    }

    func testConsistencyProofsMatchTheDefinition() {
        let hashes = Self.data.map(MerkleTree.leafHash)
        for n in 1...Self.data.count {
            for m in 1...n {
                let proof = MerkleTree.consistencyProof(first: m, hashes[0..<n])
                XCTAssertEqual(proof, Self.subproof(m, Self.data[0..<n], true), "proof \(m) → \(n)")
                let first = MerkleTree.root(hashes[0..<m]), second = MerkleTree.root(hashes[0..<n])
                XCTAssertTrue(MerkleTree.verifyConsistency(first: m, second: n, firstRoot: first, secondRoot: second, proof: proof),
                              "\(m) → \(n)")
                if m < n {
                    var forked = Array(hashes[0..<n])
                    forked[m - 1] = MerkleTree.leafHash([9, 9])
                    let forkedRoot = MerkleTree.root(forked[...])
                    XCTAssertFalse(MerkleTree.verifyConsistency(first: m, second: n, firstRoot: first, secondRoot: forkedRoot,
                                                                proof: proof), "a rewritten history \(m) → \(n)")
                }
            }
        }
    }

    func testCheckpointSignatures() throws {
        let dir = Scratch.path("audit-key")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let signer = try CheckpointSigner(keyPath: dir + "/audit-key.pem")
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/audit-key.pem")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        let checkpoint = signer.sign(origin: "610000", treeSize: 5, root: MerkleTree.sha256([1]))
        XCTAssertTrue(CheckpointSigner.verify(checkpoint, publicKeyPEM: signer.publicKeyPEM))
        let again = try CheckpointSigner(keyPath: dir + "/audit-key.pem")
        XCTAssertEqual(again.publicKeyPEM, signer.publicKeyPEM, "the key is kept across restarts")
        let forged = Checkpoint(origin: checkpoint.origin, treeSize: 6, rootHash: checkpoint.rootHash, time: checkpoint.time,
                                signature: checkpoint.signature)
        XCTAssertFalse(CheckpointSigner.verify(forged, publicKeyPEM: signer.publicKeyPEM))
        let other = try CheckpointSigner(keyPath: dir + "/other.pem")
        XCTAssertFalse(CheckpointSigner.verify(checkpoint, publicKeyPEM: other.publicKeyPEM))
    }

    /// The key is written beside its name and renamed over it, so a crash while it is made
    /// leaves no key (a fresh one next start) or the whole key, never an empty file that
    /// would stop the node from starting. What such a crash left beside it is replaced.
    func testAKeyLeftHalfWrittenBesideItsNameIsReplaced() throws {
        let dir = Scratch.path("audit-key-crash")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/audit-key.pem"
        try Data("-----BEGIN PRIVATE KEY-----\nMIGH".utf8).write(to: URL(fileURLWithPath: path + ".tmp"))
        let signer = try CheckpointSigner(keyPath: path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600, "not the mode of what the crash left")
        let again = try CheckpointSigner(keyPath: path)
        XCTAssertEqual(again.publicKeyPEM, signer.publicKeyPEM)
    }

    static func bytes(_ hex: String) -> [UInt8] {
        stride(from: 0, to: hex.count, by: 2).map { i in
            UInt8(hex[hex.index(hex.startIndex, offsetBy: i)..<hex.index(hex.startIndex, offsetBy: i + 2)], radix: 16)!
        }
    }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
}
