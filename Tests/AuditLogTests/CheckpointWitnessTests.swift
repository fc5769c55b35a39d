import AuditLog
import Foundation
import TestScratch
import XCTest

final class CheckpointWitnessTests: XCTestCase {
    private func leaves(_ n: Int, salt: UInt8 = 0) -> [MerkleTree.Hash] {
        (0..<n).map { MerkleTree.leafHash([salt, UInt8($0 & 0xFF), UInt8($0 >> 8)]) }
    }

    func testAProofFromAFrontierIsTheProofFromEveryLeaf() {
        let all = leaves(70)
        for n in 2...70 {
            for m in 1..<n {
                var frontier = MerkleFrontier()
                frontier.append(contentsOf: all[0..<m])
                let proof = MerkleTree.consistencyProof(from: frontier, adding: all[m..<n])
                XCTAssertEqual(proof, MerkleTree.consistencyProof(first: m, all[0..<n]), "m=\(m) n=\(n)")
                XCTAssertTrue(MerkleTree.verifyConsistency(first: m, second: n, firstRoot: frontier.root,
                                                           secondRoot: MerkleTree.root(all[0..<n]), proof: proof))
            }
        }
    }

    private struct Log {
        let signer: CheckpointSigner
        var leaves: [MerkleTree.Hash] = []

        func checkpoint(_ size: Int) -> Checkpoint {
            signer.sign(origin: "imaging-gateway/610000", treeSize: size, root: MerkleTree.root(leaves[0..<size]))
        }

        func offer(_ size: Int, from: Int) -> WitnessOffer {
            let proof = from == 0 ? [] : MerkleTree.consistencyProof(first: from, leaves[0..<size])
            return WitnessOffer(checkpoint: checkpoint(size), publicKey: signer.publicKeyPEM, from: from, proof: proof)
        }
    }

    private func signer(_ name: String) throws -> CheckpointSigner {
        let dir = Scratch.path("witness")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return try CheckpointSigner(keyPath: "\(dir)/\(name).pem")
    }

    func testEachVerdict() throws {
        let node = "urn:imaging-gateway:node:12610000435200100J"
        var log = Log(signer: try signer("a"))
        log.leaves = leaves(40)
        guard case .accepted(let first) = CheckpointWitness.judge(log.offer(10, from: 0), by: node, held: nil) else {
            return XCTFail("first sight is accepted")
        }
        XCTAssertEqual(first.owner, node)
        XCTAssertEqual(first.checkpoint.treeSize, 10)

        guard case .accepted(let grown) = CheckpointWitness.judge(log.offer(25, from: 10), by: node, held: first) else {
            return XCTFail("a proved extension is accepted")
        }
        XCTAssertEqual(grown.checkpoint.treeSize, 25)
        XCTAssertEqual(CheckpointWitness.judge(log.offer(25, from: 10), by: node, held: grown), .alreadyHeld(grown))
        XCTAssertEqual(CheckpointWitness.judge(log.offer(40, from: 10), by: node, held: grown), .proofFrom(25))
        XCTAssertEqual(CheckpointWitness.judge(log.offer(40, from: 25), by: "urn:imaging-gateway:node:other", held: grown),
                       .notOwner)

        let other = try signer("b")
        let foreign = WitnessOffer(checkpoint: Log(signer: other, leaves: log.leaves).checkpoint(40), publicKey: other.publicKeyPEM,
                                   from: 25, proof: MerkleTree.consistencyProof(first: 25, log.leaves[0..<40]))
        XCTAssertEqual(CheckpointWitness.judge(foreign, by: node, held: grown), .keyChanged)
        let unsigned = WitnessOffer(checkpoint: Log(signer: other, leaves: log.leaves).checkpoint(40), publicKey: log.signer.publicKeyPEM,
                                    from: 25, proof: [])
        XCTAssertEqual(CheckpointWitness.judge(unsigned, by: node, held: grown), .badSignature)

        var rewritten = log
        rewritten.leaves[3] = MerkleTree.leafHash([9, 9, 9])
        guard case .inconsistent = CheckpointWitness.judge(rewritten.offer(40, from: 25), by: node, held: grown) else {
            return XCTFail("a rewritten leaf below the witnessed size is caught")
        }
        guard case .inconsistent = CheckpointWitness.judge(rewritten.offer(25, from: 0), by: node, held: grown) else {
            return XCTFail("a second root for the witnessed size is caught")
        }
        guard case .inconsistent = CheckpointWitness.judge(log.offer(20, from: 0), by: node, held: grown) else {
            return XCTFail("a log rolled back below the witnessed size is caught")
        }
        let next = log.offer(40, from: 25)
        XCTAssertEqual(CheckpointWitness.judge(next, by: node, held: grown),
                       .accepted(WitnessedLog(origin: grown.origin, owner: node, publicKey: grown.publicKey, checkpoint: next.checkpoint)))
    }
}
