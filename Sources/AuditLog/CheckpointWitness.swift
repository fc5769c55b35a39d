import Foundation

/// Another node's audit log as a witness holds it: the largest checkpoint it accepted,
/// the key that signs that log, and the certificate that offers it. A node that rewrites
/// its own log (or is rolled back to an older copy) can sign a new history with its own
/// key and pass its own `audit verify`, but it cannot make that history consistent with a
/// checkpoint a witness already holds: that is what a witness adds.
public struct WitnessedLog: Sendable, Equatable {
    public let origin: String
    /// The certificate (SAN URI) that first offered this origin; no other may extend it.
    public let owner: String
    /// The log's public key (PEM), pinned on first sight.
    public let publicKey: String
    public let checkpoint: Checkpoint

    public init(origin: String, owner: String, publicKey: String, checkpoint: Checkpoint) {
        self.origin = origin
        self.owner = owner
        self.publicKey = publicKey
        self.checkpoint = checkpoint
    }
}

/// A checkpoint offered to a witness, with the RFC 9162 consistency proof from the tree
/// size the sender believes the witness holds (`from`; 0 and no proof on first contact).
public struct WitnessOffer: Sendable {
    public let checkpoint: Checkpoint
    public let publicKey: String
    public let from: Int
    public let proof: [MerkleTree.Hash]

    public init(checkpoint: Checkpoint, publicKey: String, from: Int, proof: [MerkleTree.Hash]) {
        self.checkpoint = checkpoint
        self.publicKey = publicKey
        self.from = from
        self.proof = proof
    }
}

public enum WitnessVerdict: Sendable, Equatable {
    /// First sight of the origin, or a larger tree proved to extend the one held.
    case accepted(WitnessedLog)
    /// The checkpoint held already (the same size and root): a resend.
    case alreadyHeld(WitnessedLog)
    /// The proof starts at another size than the one held: ask again from that size.
    case proofFrom(Int)
    /// Not signed by the key offered with it.
    case badSignature
    /// Another certificate owns this origin.
    case notOwner
    /// Signed by another key than the one pinned for this origin.
    case keyChanged
    /// The alarm: the offered tree does not extend the one held (rewritten, truncated or
    /// rolled back). The held checkpoint stays.
    case inconsistent(String)
}

public enum CheckpointWitness {
    /// What a witness holding `held` makes of `offer` from the certificate `actor`.
    /// Pure: the caller reads `held` and keeps the verdict in one transaction.
    public static func judge(_ offer: WitnessOffer, by actor: String, held: WitnessedLog?) -> WitnessVerdict {
        let offered = offer.checkpoint
        guard offered.root.count == 32, offered.treeSize >= 0,
              CheckpointSigner.verify(offered, publicKeyPEM: offer.publicKey) else { return .badSignature }
        guard let held else {
            return .accepted(WitnessedLog(origin: offered.origin, owner: actor, publicKey: offer.publicKey, checkpoint: offered))
        }
        guard held.owner == actor else { return .notOwner }
        guard held.publicKey.trimmingCharacters(in: .whitespacesAndNewlines)
                == offer.publicKey.trimmingCharacters(in: .whitespacesAndNewlines) else { return .keyChanged }
        let size = held.checkpoint.treeSize
        if offered.treeSize < size {
            return .inconsistent("a tree of \(offered.treeSize) leaves offered after one of \(size) was witnessed")
        }
        if offered.treeSize == size {
            return offered.root == held.checkpoint.root
                ? .alreadyHeld(held) : .inconsistent("two roots signed for a tree of \(size) leaves")
        }
        guard offer.from == size else { return .proofFrom(size) }
        guard MerkleTree.verifyConsistency(first: size, second: offered.treeSize, firstRoot: held.checkpoint.root,
                                           secondRoot: offered.root, proof: offer.proof) else {
            return .inconsistent("the tree of \(offered.treeSize) leaves does not extend the witnessed tree of \(size)")
        }
        return .accepted(WitnessedLog(origin: held.origin, owner: actor, publicKey: held.publicKey, checkpoint: offered))
    }
}

extension MerkleTree {
    /// PROOF(m, D[n]) from the frontier of the first m leaves and the leaf hashes m..<n,
    /// so that a sender proves a minute's growth without reading the whole log. Every node
    /// of the proof is either a perfect subtree wholly below m (a left sibling on the path
    /// to leaf m, which is one of the frontier's subtrees) or a range wholly at or above m;
    /// the recursion below is `consistencyProof`'s, with those two sources.
    public static func consistencyProof(from frontier: MerkleFrontier, adding leaves: ArraySlice<Hash>) -> [Hash] {
        let m = frontier.size, n = m + leaves.count
        guard m > 0, m < n else { return [] }
        var subtrees: [Int: Hash] = [:]
        var start = 0
        for (bit, hash) in zip((0..<Int.bitWidth).reversed().filter { m & (1 << $0) != 0 }, frontier.hashes) {
            subtrees[start] = hash
            start += 1 << bit
        }
        let base = leaves.startIndex
        func hash(_ a: Int, _ b: Int) -> Hash {
            if a >= m { return root(leaves[(base + a - m)..<(base + b - m)]) }
            return subtrees[a] ?? []
        }
        func subproof(_ m: Int, _ a: Int, _ b: Int, complete: Bool) -> [Hash] {
            if m == b - a { return complete ? [] : [hash(a, b)] }
            let k = split(b - a)
            if m <= k { return subproof(m, a, a + k, complete: complete) + [hash(a + k, b)] }
            return subproof(m - k, a + k, b, complete: false) + [hash(a, a + k)]
        }
        return subproof(m, 0, n, complete: true)
    }
}

/// An offer a witness refused as inconsistent, kept as evidence.
public struct WitnessConflict: Sendable, Equatable, Codable {
    public let actor: String
    public let checkpoint: Checkpoint
    public let reason: String
    /// When the witness received it (RFC 3339, UTC).
    public let received: String

    public init(actor: String, checkpoint: Checkpoint, reason: String, received: String) {
        self.actor = actor
        self.checkpoint = checkpoint
        self.reason = reason
        self.received = received
    }
}
