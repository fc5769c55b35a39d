import AuditLog
import Foundation
import GatewayNet
import IndexStore
import JSONText
import Logging

/// This node as a witness of other nodes' audit logs (`Protocols/audit.md`, "Witnesses"):
/// a node offers each checkpoint it signs with a consistency proof from the one held
/// here, and a checkpoint that does not extend it (a log rewritten, truncated or restored
/// from an older copy) is refused, kept as evidence, logged and counted. Role node, for
/// the offer and for reading what is held; operator may read too.
enum WitnessRoutes {
    static let path = "/v1/audit/witness"

    /// The body of `POST /v1/audit/witness`.
    struct Offer: Codable {
        let checkpoint: Checkpoint
        let publicKey: String
        /// The tree size the proof starts at: what the sender believes this witness holds.
        let from: Int
        /// Base64 hashes of the RFC 9162 consistency proof from `from` to the checkpoint.
        let consistency: [String]
    }

    struct Held: Encodable {
        let origin: String
        let witnessed: Checkpoint?
        let owner: String?
        let conflicts: [WitnessConflict]
    }

    static func add(to router: inout Router, auditor: Auditor, logger: Logger, onConflict: @escaping @Sendable () -> Void) {
        router.add("POST", path, roles: .roles(.node), .async { request in
            let offer = try parse(request)
            let actor = Auditor.actor(request)
            let verdict = try await IndexRoutes.storeCall { () throws(StoreError) in
                try await auditor.store.witness(offer.checkpoint, by: actor) { CheckpointWitness.judge(offer, by: actor, held: $0) }
            }
            let origin = offer.checkpoint.origin
            if case .inconsistent(let reason) = verdict {
                onConflict()
                logger.error("audit witness: a checkpoint that does not extend the one witnessed; the log was rewritten or rolled back",
                             metadata: ["origin": "\(origin)", "from": "\(actor)", "reason": "\(reason)"])
            }
            let outcome: AuditEvent.Outcome = if case .inconsistent = verdict { .seriousFailure } else { .success }
            try await auditor.record([auditor.event(request, outcome == .success ? .applicationActivity : .securityAlert, .update,
                                                    counter: "checkpoints-witnessed", outcome: outcome)])
            switch verdict {
            case .accepted(let log), .alreadyHeld(let log):
                return AuditRoutes.json(Held(origin: origin, witnessed: log.checkpoint, owner: log.owner, conflicts: []))
            case .proofFrom(let size):
                throw HTTPError(409, "witness_proof_from", "This witness holds \(size) leaves of this log; send a proof from \(size).")
            case .badSignature:
                throw HTTPError(400, "invalid_signature", "The checkpoint is not signed by the public key sent with it.")
            case .notOwner:
                throw HTTPError(403, "witness_origin_owned", "Another certificate offers this log's checkpoints to this witness.")
            case .keyChanged:
                throw HTTPError(409, "witness_key_changed", "This log's checkpoints were signed by another key until now.")
            case .inconsistent(let reason):
                throw HTTPError(409, "witness_inconsistent", "Refused and kept as evidence: \(reason).")
            }
        })
        router.add("GET", path, roles: .roles(.node, .operator), .async { request in
            let origin = try origin(request)
            let held = try await IndexRoutes.storeCall { () throws(StoreError) in try await auditor.store.witnessed(origin: origin) }
            guard held.log != nil || !held.conflicts.isEmpty else {
                throw HTTPError(404, "not_witnessed", "This node holds no checkpoint of that log.")
            }
            return AuditRoutes.json(Held(origin: origin, witnessed: held.log?.checkpoint, owner: held.log?.owner,
                                         conflicts: held.conflicts))
        })
        router.add("DELETE", path, roles: .roles(.operator), .async { request in
            let origin = try origin(request)
            let forgot = try await IndexRoutes.storeCall { () throws(StoreError) in try await auditor.store.forgetWitnessed(origin: origin) }
            guard forgot else { throw HTTPError(404, "not_witnessed", "This node holds no checkpoint of that log.") }
            try await auditor.record([auditor.event(request, .securityAlert, .delete, counter: "witness-resets")])
            logger.notice("audit witness: the checkpoint held was forgotten by an operator; the next offer is taken as first sight",
                          metadata: ["origin": "\(origin)", "by": "\(Auditor.actor(request))"])
            return .json("{\"forgotten\":\(jsonString(origin))}")
        })
    }

    private static func origin(_ request: HTTPRequest) throws(HTTPError) -> String {
        guard let origin = request.queryValue("origin"), isOrigin(origin) else {
            throw HTTPError(400, "invalid_origin", "origin is a node's checkpoint origin, imaging-gateway/ and a six-digit region code.")
        }
        return origin
    }

    /// `imaging-gateway/<region>`, as every node signs (Auditor.origin): nothing else is
    /// kept or logged, so no offer can put free text into the witness's tables or logs.
    static func isOrigin(_ text: String) -> Bool {
        let prefix = "imaging-gateway/"
        guard text.hasPrefix(prefix) else { return false }
        let region = text.utf8.dropFirst(prefix.utf8.count)
        return region.count == 6 && region.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    private static func parse(_ request: HTTPRequest) throws(HTTPError) -> WitnessOffer {
        let invalid = HTTPError(400, "invalid_witness_offer",
                                "Send {checkpoint, publicKey, from, consistency} as POST /v1/audit/witness describes.")
        guard let offer = try? JSONDecoder().decode(Offer.self, from: Data(request.body)),
              isOrigin(offer.checkpoint.origin), offer.checkpoint.treeSize >= 1,
              offer.from >= 0,
              offer.publicKey.utf8.count <= 1024, offer.consistency.count <= 64 else { throw invalid }
        var proof: [MerkleTree.Hash] = []
        for text in offer.consistency {
            guard let hash = Data(base64Encoded: text), hash.count == 32 else { throw invalid }
            proof.append(Array(hash))
        }
        return WitnessOffer(checkpoint: offer.checkpoint, publicKey: offer.publicKey, from: offer.from, proof: proof)
    }
}
