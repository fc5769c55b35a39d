import AuditLog
import Foundation
import GatewayNet

import IndexStore

/// The audit log's read side (roles operator and node): the signed checkpoint, inclusion
/// and consistency proofs against it (RFC 9162 §2.1.3, §2.1.4), and the day's metering.
/// Proofs are computed from the stored leaf hashes, which is linear in the log's size.
enum AuditRoutes {
    static let readers: Set<String> = .roles(.operator, .node)

    static func add(to router: inout Router, auditor: Auditor) {
        router.add("GET", "/v1/audit/checkpoint", roles: readers, .async { _ in
            let checkpoint = try await IndexRoutes.storeCall { () throws(StoreError) in try await auditor.checkpoint() }
            return json(CheckpointAnswer(checkpoint: checkpoint, publicKey: auditor.signer.publicKeyPEM))
        })
        router.add("GET", "/v1/audit/proof/inclusion", roles: readers, .async { request in
            let index = try integer(request, "index"), size = try integer(request, "treeSize")
            guard index < size else { throw HTTPError(400, "invalid_index", "index must be below treeSize.") }
            let leaves = try await leafHashes(auditor, size)
            return json(InclusionProof(index: index, treeSize: size, leafHash: leaves[index].base64,
                                       proof: MerkleTree.inclusionProof(index: index, leaves[...]).map(\.base64)))
        })
        router.add("GET", "/v1/audit/proof/consistency", roles: readers, .async { request in
            let first = try integer(request, "first"), second = try integer(request, "second")
            guard first >= 1, first <= second else { throw HTTPError(400, "invalid_range", "Need 1 ≤ first ≤ second.") }
            let leaves = try await leafHashes(auditor, second)
            return json(ConsistencyProof(first: first, second: second,
                                         proof: MerkleTree.consistencyProof(first: first, leaves[...]).map(\.base64)))
        })
        router.add("GET", "/v1/audit/usage", roles: readers, .async { request in
            let day = request.queryValue("day") ?? AuditEvent.day()
            guard isDay(day) else {
                throw HTTPError(400, "invalid_date", "day is YYYY-MM-DD (UTC).")
            }
            let usage = try await IndexRoutes.storeCall { () throws(StoreError) in try await auditor.store.usage(day: day) }
            return json(Usage(day: day, usage: usage))
        })
    }

    struct CheckpointAnswer: Encodable { let checkpoint: Checkpoint; let publicKey: String }
    struct InclusionProof: Encodable { let index: Int; let treeSize: Int; let leafHash: String; let proof: [String] }
    struct ConsistencyProof: Encodable { let first: Int; let second: Int; let proof: [String] }
    struct Usage: Encodable { let day: String; let usage: [UsageCount] }

    static func integer(_ request: HTTPRequest, _ name: String) throws(HTTPError) -> Int {
        guard let text = request.queryValue(name), let n = Int(text), n >= 0 else {
            throw HTTPError(400, "invalid_\(name.lowercased())", "\(name) must be a non-negative integer.")
        }
        return n
    }

    /// The first `size` leaf hashes; a size beyond the log is refused before anything is read.
    static func leafHashes(_ auditor: Auditor, _ size: Int) async throws(HTTPError) -> [MerkleTree.Hash] {
        let held = try await IndexRoutes.storeCall { () throws(StoreError) in try await auditor.store.auditSize() }
        guard size <= held else { throw HTTPError(404, "tree_too_small", "The log holds \(held) events, fewer than \(size).") }
        let leaves = try await IndexRoutes.storeCall { () throws(StoreError) in try await auditor.store.leafHashes(from: 0, count: size) }
        guard leaves.count == size else { throw HTTPError(503, "store_unavailable", "The log changed while it was read.") }
        return leaves
    }

    /// YYYY-MM-DD, a real Gregorian date.
    static func isDay(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, parts.allSatisfy({ $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), d >= 1
        else { return false }
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
        return d <= [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    }

    static func json(_ value: some Encodable) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]),
                            body: Array((try? encoder.encode(value)) ?? Data()))
    }
}

extension Array where Element == UInt8 {
    var base64: String { Data(self).base64EncodedString() }
}
