/// The compact range of a log's first `size` leaves: the roots of the perfect subtrees
/// that the set bits of `size` name, largest (leftmost) first. It is all a checkpoint
/// needs to extend the tree: appending a leaf costs amortised one node hash, the root
/// at most log2(size) more, so signing a checkpoint reads only the leaves added since
/// the last one instead of the whole log (which grew the request tail for minutes on a
/// busy node when the root was recomputed from every leaf).
///
/// What must stay true: `hashes.count == size.nonzeroBitCount`, and `root` equals
/// `MerkleTree.root` over the same leaves (tested against it for every size up to 70).
public struct MerkleFrontier: Sendable, Equatable {
    public private(set) var size: Int
    public private(set) var hashes: [MerkleTree.Hash]

    public init() {
        size = 0
        hashes = []
    }

    /// nil when `hashes` cannot be the frontier of `size` leaves (one 32-byte hash per set bit).
    public init?(size: Int, hashes: [MerkleTree.Hash]) {
        guard size >= 0, size.nonzeroBitCount == hashes.count, hashes.allSatisfy({ $0.count == 32 }) else { return nil }
        self.size = size
        self.hashes = hashes
    }

    /// The frontier after `leaves`, which must be the log's leaf hashes from `size` on.
    public mutating func append<S: Sequence>(contentsOf leaves: S) where S.Element == MerkleTree.Hash {
        for leaf in leaves { append(leaf) }
    }

    /// Each trailing one bit of `size` is a perfect subtree the same height as the
    /// carried node; they merge like a binary increment.
    public mutating func append(_ leaf: MerkleTree.Hash) {
        var node = leaf, carry = size
        while carry & 1 == 1 {
            node = MerkleTree.nodeHash(hashes.removeLast(), node)
            carry >>= 1
        }
        hashes.append(node)
        size += 1
    }

    /// MTH of the `size` leaves: the subtree roots folded from the right, because RFC
    /// 9162 splits at the largest power of two, which is the leftmost subtree.
    public var root: MerkleTree.Hash {
        guard var r = hashes.last else { return MerkleTree.sha256([]) }
        for h in hashes.dropLast().reversed() { r = MerkleTree.nodeHash(h, r) }
        return r
    }

    /// The hashes concatenated (32 bytes each), the form a store keeps.
    public var bytes: [UInt8] { hashes.flatMap { $0 } }

    public init?(size: Int, bytes: [UInt8]) {
        guard bytes.count % 32 == 0 else { return nil }
        self.init(size: size, hashes: stride(from: 0, to: bytes.count, by: 32).map { Array(bytes[$0..<$0 + 32]) })
    }
}
