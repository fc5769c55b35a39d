import AuditLog
import Foundation
import GatewayNet
import ImagingIndex
import IndexStore
import Logging
import Synchronization

/// Offers each checkpoint this node signs to its witnesses (`audit.witnesses`, by default
/// the national node it gathers to), with the consistency proof from the checkpoint each
/// holds (WitnessRoutes). The proof is built from that checkpoint's stored frontier and
/// the leaves added since, so a minute's offer reads a minute's leaves, not the log.
///
/// What a witness holds is remembered per witness and asked again (`GET`) after anything
/// but an acceptance. Offers go one at a time, from the checkpointing loop: a witness that
/// is down costs a failed request a period, and the next checkpoint carries the proof
/// from wherever that witness stopped. A witness that refused this log (inconsistent, or
/// another key or certificate) is offered it again only after `retryAfterRefusal`: each
/// such offer is kept there as a conflict, and one a period would bury the first. Its
/// operator clears the refusal (`DELETE /v1/audit/witness`) once the cause is known.
final class WitnessSender: Sendable {
    private let store: AuditStore
    private let client: HTTPClient
    private let witnesses: [String]
    private let publicKey: String
    private let origin: String
    private let retryAfterRefusal: Duration
    private let logger: Logger
    /// Per witness URL, the tree size it holds of this log, when known.
    private let held = Mutex<[String: Int]>([:])
    /// Per witness URL that refused this log, when to offer it again.
    private let refused = Mutex<[String: ContinuousClock.Instant]>([:])

    init(store: AuditStore, client: HTTPClient, witnesses: [String], publicKey: String, origin: String,
         retryAfterRefusal: Duration, logger: Logger) {
        self.store = store
        self.client = client
        self.witnesses = witnesses
        self.publicKey = publicKey
        self.origin = origin
        self.retryAfterRefusal = retryAfterRefusal
        self.logger = logger
    }

    /// The tree size each witness is known to hold (`/metrics`).
    var witnessed: [String: Int] { held.withLock { $0 } }

    func offer(_ checkpoint: Checkpoint) async {
        for witness in witnesses { await offer(checkpoint, to: witness) }
    }

    private func offer(_ checkpoint: Checkpoint, to witness: String) async {
        if let until = refused.withLock({ $0[witness] }), ContinuousClock.now < until { return }
        // At most two rounds: the second when the witness held another size than we knew.
        for _ in 0..<2 {
            do {
                let from: Int
                if let known = held.withLock({ $0[witness] }) {
                    from = known
                } else {
                    from = try await ask(witness)
                    held.withLock { $0[witness] = from }
                }
                if from == checkpoint.treeSize { return }
                let response = try await client.execute(try await request(checkpoint, from: from), url: witness + WitnessRoutes.path)
                if response.status == 200 {
                    held.withLock { $0[witness] = checkpoint.treeSize }
                    return
                }
                held.withLock { $0[witness] = nil }
                let code = Self.errorCode(response.body)
                if response.status == 409, code == "witness_proof_from" { continue }
                let refusal = ["witness_inconsistent", "witness_key_changed", "witness_origin_owned"].contains(code)
                if refusal { refused.withLock { $0[witness] = .now + retryAfterRefusal } }
                logger.log(level: refusal ? .error : .warning, "audit: a witness refused this node's checkpoint", metadata: [
                    "witness": "\(witness)", "status": "\(response.status)", "code": "\(code)", "treeSize": "\(checkpoint.treeSize)"])
                return
            } catch {
                held.withLock { $0[witness] = nil }
                logger.warning("audit: cannot offer the checkpoint to a witness; the next checkpoint tries again",
                               metadata: ["witness": "\(witness)", "error": "\(error)"])
                return
            }
        }
    }

    private struct Unexpected: Error, CustomStringConvertible {
        let status: Int
        var description: String { "the witness answered \(status)" }
    }

    /// The tree size `witness` holds of this log (0 when none). The origin needs no
    /// escaping: it is `imaging-gateway/` and six digits.
    private func ask(_ witness: String) async throws -> Int {
        let target = WitnessRoutes.path + "?origin=" + origin
        let response = try await client.execute(HTTPRequest(method: "GET", target: target, headers: HTTPHeaders([])), url: witness + target)
        if response.status == 404 { return 0 }
        guard response.status == 200, let held = JSONValue.parseObject(response.body) else { throw Unexpected(status: response.status) }
        // Conflicts alone, with nothing held (an operator forgot it): first sight again.
        guard case .object(let checkpoint)? = held["witnessed"] else { return 0 }
        guard case .number(let size)? = checkpoint["treeSize"] else { throw Unexpected(status: response.status) }
        return Int(size)
    }

    private func request(_ checkpoint: Checkpoint, from: Int) async throws -> HTTPRequest {
        var proof: [MerkleTree.Hash] = []
        if from > 0, from < checkpoint.treeSize {
            let frontier = try await frontier(at: from)
            let added = try await store.storedLeafHashes(from: from, count: checkpoint.treeSize - from)
            proof = MerkleTree.consistencyProof(from: frontier, adding: added[...])
        }
        let offer = WitnessRoutes.Offer(checkpoint: checkpoint, publicKey: publicKey, from: from,
                                        consistency: proof.map { Data($0).base64EncodedString() })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return HTTPRequest(method: "POST", target: WitnessRoutes.path,
                           headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array(try encoder.encode(offer)))
    }

    /// The frontier of the first `size` leaves: the one kept with this node's checkpoint of
    /// that size, or rebuilt from the leaves when there is none (a witness holding a size
    /// this node never signed has seen another log; the offer will say so).
    private func frontier(at size: Int) async throws -> MerkleFrontier {
        if let kept = try await store.checkpoint(treeSize: size), let frontier = kept.frontier,
           frontier.root == kept.checkpoint.root { return frontier }
        return try await store.frontier(extending: MerkleFrontier(), to: size)
    }

    private static func errorCode(_ body: [UInt8]) -> String {
        guard case .object(let error)? = JSONValue.parseObject(body)?["error"], case .string(let code)? = error["code"] else { return "" }
        return code
    }
}
