import Foundation

/// One event as a store holds it: where it sits, its canonical JSON, the leaf hash stored
/// beside it.
public struct StoredAuditEvent: Sendable, Equatable {
    /// The leaf index (0-based).
    public let index: Int
    public let text: String
    public let leafHash: MerkleTree.Hash

    public init(index: Int, text: String, leafHash: MerkleTree.Hash) {
        self.index = index
        self.text = text
        self.leafHash = leafHash
    }
}

/// `imaging-gateway audit verify`: recomputes the tree from the stored events and checks
/// every checkpoint against it, reporting the first thing that does not hold.
public enum AuditVerifier {
    public enum Finding: Equatable, CustomStringConvertible {
        /// Leaves must be numbered 0, 1, 2 …; a gap or a repeat means deleted or moved events.
        case missing(leaf: Int, found: Int)
        /// The event's content no longer hashes to the leaf hash stored with it.
        case changed(leaf: Int)
        /// The event at this leaf was written as another leaf: events were reordered.
        case moved(leaf: Int, writtenAs: Int)
        case badSignature(treeSize: Int)
        /// A checkpoint covers more events than the log holds: events at the end are gone.
        case truncated(treeSize: Int, logSize: Int)
        /// The recomputed root differs from a signed one although every stored hash matches
        /// its event: events and hashes in this range were rewritten together.
        case rewritten(treeSize: Int, firstLeaf: Int)
        case inconsistent(from: Int, to: Int)

        public var description: String {
            switch self {
            case let .missing(leaf, found):
                "leaf \(leaf) is missing: the next stored event is leaf \(found) (deleted or reordered)"
            case let .changed(leaf): "leaf \(leaf) was changed: its event does not hash to its stored leaf hash"
            case let .moved(leaf, was): "leaf \(leaf) holds the event written as leaf \(was): events were reordered"
            case let .badSignature(size): "the checkpoint at tree size \(size) does not verify with the audit public key"
            case let .truncated(size, log): "the checkpoint at tree size \(size) covers events that are gone: the log holds \(log)"
            case let .rewritten(size, first):
                "leaves \(first) to \(size - 1) differ from what the checkpoint at tree size \(size) signed"
            case let .inconsistent(from, to): "the checkpoints at tree sizes \(from) and \(to) are not consistent"
            }
        }
    }

    public struct Report: Equatable {
        public let events: Int
        public let checkpoints: Int
        public let finding: Finding?
    }

    public static func verify(events: [StoredAuditEvent], checkpoints: [Checkpoint], publicKeyPEM: String) -> Report {
        func report(_ f: Finding?) -> Report { Report(events: events.count, checkpoints: checkpoints.count, finding: f) }
        var leaves: [MerkleTree.Hash] = []
        leaves.reserveCapacity(events.count)
        for (i, event) in events.enumerated() {
            guard event.index == i else { return report(.missing(leaf: i, found: event.index)) }
            if let written = try? JSONDecoder().decode(AuditEvent.self, from: Data(event.text.utf8)).leafIndex, written != i {
                return report(.moved(leaf: i, writtenAs: written))
            }
            let hash = MerkleTree.leafHash(Array(event.text.utf8))
            guard hash == event.leafHash else { return report(.changed(leaf: i)) }
            leaves.append(hash)
        }
        var previous: (size: Int, root: MerkleTree.Hash)?
        for checkpoint in checkpoints.sorted(by: { $0.treeSize < $1.treeSize }) {
            guard CheckpointSigner.verify(checkpoint, publicKeyPEM: publicKeyPEM) else {
                return report(.badSignature(treeSize: checkpoint.treeSize))
            }
            guard checkpoint.treeSize <= leaves.count else {
                return report(.truncated(treeSize: checkpoint.treeSize, logSize: leaves.count))
            }
            let root = MerkleTree.root(leaves[0..<checkpoint.treeSize])
            guard root == checkpoint.root else {
                return report(.rewritten(treeSize: checkpoint.treeSize, firstLeaf: previous?.size ?? 0))
            }
            if let previous, previous.size > 0 {
                let proof = MerkleTree.consistencyProof(first: previous.size, leaves[0..<checkpoint.treeSize])
                guard MerkleTree.verifyConsistency(first: previous.size, second: checkpoint.treeSize, firstRoot: previous.root,
                                                   secondRoot: checkpoint.root, proof: proof) else {
                    return report(.inconsistent(from: previous.size, to: checkpoint.treeSize))
                }
            }
            previous = (checkpoint.treeSize, checkpoint.root)
        }
        return report(nil)
    }
}
