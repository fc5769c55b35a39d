import CGatewayShims

/// RFC 9162 §2.1 Merkle tree hashing over SHA-256, computed from stored leaf hashes:
/// leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), and a tree of n
/// leaves splits at the largest power of two below n. Roots and proofs here are computed
/// from all leaf hashes they cover (O(n)); verification is O(log n) and needs no leaves.
public enum MerkleTree {
    public typealias Hash = [UInt8]

    public static func sha256(_ bytes: [UInt8]) -> Hash { digest([], bytes) }

    public static func leafHash(_ data: [UInt8]) -> Hash { digest([0], data) }

    /// SHA-256(0x01 ‖ left ‖ right) through one stack buffer: the concatenating form
    /// allocated three arrays per node, which dominated building a root.
    static func nodeHash(_ left: Hash, _ right: Hash) -> Hash {
        var out = Hash(repeating: 0, count: 32)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1 + left.count + right.count) { buffer in
            buffer[0] = 1
            _ = UnsafeMutableBufferPointer(rebasing: buffer[1...]).initialize(from: left)
            _ = UnsafeMutableBufferPointer(rebasing: buffer[(1 + left.count)...]).initialize(from: right)
            _ = gw_sha256(buffer.baseAddress, buffer.count, nil, 0, &out)
        }
        return out
    }

    /// SHA-256(head ‖ body), without concatenating them.
    private static func digest(_ head: [UInt8], _ body: [UInt8]) -> Hash {
        var out = Hash(repeating: 0, count: 32)
        head.withUnsafeBytes { h in
            body.withUnsafeBytes { b in _ = gw_sha256(h.baseAddress, h.count, b.baseAddress, b.count, &out) }
        }
        return out
    }

    /// The largest power of two smaller than n (n ≥ 2).
    static func split(_ n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// MTH over leaves[range]; the empty tree's root is SHA-256 of nothing.
    public static func root(_ leaves: ArraySlice<Hash>) -> Hash {
        switch leaves.count {
        case 0: return sha256([])
        case 1: return leaves.first!
        default:
            let k = split(leaves.count), mid = leaves.startIndex + k
            return nodeHash(root(leaves[leaves.startIndex..<mid]), root(leaves[mid...]))
        }
    }

    /// PATH(m, D[n]): the audit path of leaf `index` in the tree of `leaves`.
    public static func inclusionProof(index: Int, _ leaves: ArraySlice<Hash>) -> [Hash] {
        guard leaves.count > 1 else { return [] }
        let k = split(leaves.count), mid = leaves.startIndex + k
        if index < k {
            return inclusionProof(index: index, leaves[leaves.startIndex..<mid]) + [root(leaves[mid...])]
        }
        return inclusionProof(index: index - k, leaves[mid...]) + [root(leaves[leaves.startIndex..<mid])]
    }

    /// PROOF(m, D[n]): that the tree of the first `first` leaves is a prefix of all of them.
    public static func consistencyProof(first: Int, _ leaves: ArraySlice<Hash>) -> [Hash] {
        subproof(first, leaves, complete: true)
    }

    private static func subproof(_ m: Int, _ leaves: ArraySlice<Hash>, complete: Bool) -> [Hash] {
        let n = leaves.count
        if m == n { return complete ? [] : [root(leaves)] }
        let k = split(n), mid = leaves.startIndex + k
        if m <= k {
            return subproof(m, leaves[leaves.startIndex..<mid], complete: complete) + [root(leaves[mid...])]
        }
        return subproof(m - k, leaves[mid...], complete: false) + [root(leaves[leaves.startIndex..<mid])]
    }

    /// The right shift both verification loops take after hashing with a right sibling.
    private static func shiftToOddOrZero(_ fn: inout Int, _ sn: inout Int) {
        repeat {
            fn >>= 1
            sn >>= 1
        } while fn & 1 == 0 && fn != 0
    }

    /// RFC 9162 §2.1.3.2.
    public static func verifyInclusion(leaf: Hash, index: Int, treeSize: Int, proof: [Hash], root: Hash) -> Bool {
        guard index >= 0, index < treeSize else { return false }
        var fn = index, sn = treeSize - 1, r = leaf
        for p in proof {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 { shiftToOddOrZero(&fn, &sn) }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 §2.1.4.2.
    public static func verifyConsistency(first: Int, second: Int, firstRoot: Hash, secondRoot: Hash, proof: [Hash]) -> Bool {
        guard first > 0, first <= second else { return first == 0 && proof.isEmpty }
        if first == second { return proof.isEmpty && firstRoot == secondRoot }
        var path = proof
        if first & (first - 1) == 0 { path.insert(firstRoot, at: 0) }
        guard !path.isEmpty else { return false }
        var fn = first - 1, sn = second - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 { shiftToOddOrZero(&fn, &sn) }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == firstRoot && sr == secondRoot && sn == 0
    }
}
