import AuditLog
import Foundation
import IndexStore
import Synchronization
import TestScratch
import XCTest

/// The witness half of the AuditStore contract: what a store keeps of other nodes' logs.
extension IndexStoreContract {
    func testAWitnessKeepsWhatItAcceptedAndEachConflict() async throws {
        guard let log = try store() as? AuditStore else { throw XCTSkip("this store keeps no audit log") }
        let signer = try CheckpointSigner(keyPath: Scratch.path("witness") + ".pem")
        let leaves = (0..<30).map { MerkleTree.leafHash([UInt8($0)]) }
        let origin = "imaging-gateway/610000"
        func offer(_ size: Int, from: Int, _ leaves: [MerkleTree.Hash] = leaves) -> WitnessOffer {
            WitnessOffer(checkpoint: signer.sign(origin: origin, treeSize: size, root: MerkleTree.root(leaves[0..<size])),
                         publicKey: signer.publicKeyPEM, from: from,
                         proof: from == 0 ? [] : MerkleTree.consistencyProof(first: from, leaves[0..<size]))
        }
        let node = "urn:imaging-gateway:node:12610000435200100J"
        @Sendable func judged(_ offer: WitnessOffer) async throws -> (WitnessVerdict, WitnessedLog?) {
            let seen = Mutex<WitnessedLog?>(nil)
            let verdict = try await log.witness(offer.checkpoint, by: node) { held in
                seen.withLock { $0 = held }
                return CheckpointWitness.judge(offer, by: node, held: held)
            }
            return (verdict, seen.withLock { $0 })
        }

        let nothing = try await log.witnessed(origin: origin)
        XCTAssertNil(nothing.log)
        XCTAssertEqual(nothing.conflicts, [])
        let first = offer(10, from: 0)
        let (accepted, heldBefore) = try await judged(first)
        XCTAssertNil(heldBefore)
        guard case .accepted = accepted else { return XCTFail("first sight: \(accepted)") }
        let grown = offer(20, from: 10)
        let (extended, held) = try await judged(grown)
        XCTAssertEqual(held?.checkpoint, first.checkpoint, "the judge is shown what was kept")
        XCTAssertEqual(held?.owner, node)
        guard case .accepted = extended else { return XCTFail("extension: \(extended)") }

        var rewritten = leaves
        rewritten[4] = MerkleTree.leafHash([0xEE])
        let forged = offer(30, from: 20, rewritten)
        let (refused, _) = try await judged(forged)
        guard case .inconsistent = refused else { return XCTFail("a rewritten log: \(refused)") }
        let now = try await log.witnessed(origin: origin)
        XCTAssertEqual(now.log?.checkpoint, grown.checkpoint, "a refused offer leaves the held checkpoint")
        XCTAssertEqual(now.conflicts.map(\.checkpoint), [forged.checkpoint], "and is kept as evidence")
        XCTAssertEqual(now.conflicts.first?.actor, node)

        let (stale, _) = try await judged(offer(30, from: 10))
        XCTAssertEqual(stale, .proofFrom(20))
        let (again, _) = try await judged(offer(30, from: 20))
        guard case .accepted(let latest) = again else { return XCTFail("a proved extension: \(again)") }
        let end = try await log.witnessed(origin: origin)
        XCTAssertEqual(end.log, latest)
        XCTAssertEqual(end.conflicts.count, 1)
    }

    func testACheckpointIsFoundByItsSizeWithItsFrontier() async throws {
        guard let log = try store() as? AuditStore else { throw XCTSkip("this store keeps no audit log") }
        let signer = try CheckpointSigner(keyPath: Scratch.path("sizes") + ".pem")
        var frontier = MerkleFrontier()
        frontier.append(contentsOf: (0..<5).map { MerkleTree.leafHash([UInt8($0)]) })
        let five = signer.sign(origin: "o", treeSize: 5, root: frontier.root)
        try await log.saveCheckpoint(five, frontier: frontier)
        let found = try await log.checkpoint(treeSize: 5)
        XCTAssertEqual(found?.checkpoint, five)
        XCTAssertEqual(found?.frontier, frontier)
        let missing = try await log.checkpoint(treeSize: 4)
        XCTAssertNil(missing)
    }
}
