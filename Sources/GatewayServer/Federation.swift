import Foundation
import GatewayNet
import ImagingIndex
import Synchronization

/// Asks peer regions for a patient's studies, each under the same deadline, through the
/// GatewayNet client with this node's certificate (role node); lookups bound for one peer
/// travel together when several are waiting (LookupBatcher). A peer that fails trips its
/// circuit breaker: after three failed requests in a row it is skipped (`error`, no wait)
/// for five seconds, then one lookup probes it (half-open) and a success closes it again.
final class Federation: Sendable {
    struct Peer: Sendable {
        let region: String
        let url: String
        let breaker: CircuitBreaker
        let lookups: LookupBatcher

        init(region: String, url: String, client: HTTPClient) {
            self.region = region
            self.url = url
            breaker = CircuitBreaker()
            lookups = LookupBatcher(client: client, peerURL: url, breaker: breaker)
        }
    }

    /// What one region said: `complete` (all it holds), `partial` (it hit the limit),
    /// `timeout` (no answer by the deadline) or `error` (failed, or its breaker is open).
    struct RegionAnswer: Sendable {
        let region: String
        let status: String
        let studies: [StudyRecord]
    }

    let peers: [Peer]
    let deadline: Duration
    static let connectionsPerPeer = 64
    /// The client with this node's certificate (role node), also used for gathering.
    let client: HTTPClient

    init?(config: GatewayConfig) throws(TLSError) {
        guard !config.federation.peers.isEmpty || config.federation.gatherTo != nil || !config.auditWitnesses.isEmpty,
              let certificate = config.tls.certificate, let key = config.tls.privateKey
        else { return nil }
        let tls = try TLSContext(configuration: TLSConfiguration(certificateChainPath: certificate, privateKeyPath: key,
                                                                 trustedCAPath: config.tls.clientCA), server: false)
        var settings = HTTPClientConfiguration(tls: tls)
        // One peer request per cross-region lookup in flight: the client's default of 8
        // connections per peer queued the rest, and capped a node's cross-region lookups
        // at 8 round trips at a time whatever its clients asked.
        settings.maxConnectionsPerOrigin = Self.connectionsPerPeer
        client = HTTPClient(configuration: settings)
        peers = config.federation.peers.map { [client] in Peer(region: $0.region, url: $0.url, client: client) }
        deadline = .milliseconds(config.federation.lookupDeadlineMs)
    }

    /// The peers `scope` names: `all`, or `region:CODE` (none when CODE is this node's).
    func peers(for scope: String) -> [Peer] {
        if scope == "all" { return peers }
        return peers.filter { "region:\($0.region)" == scope }
    }

    /// `target` (a native lookup's path and query, `scope=local` included) at each peer, in
    /// parallel, under the caller's request ID: each peer's audit event for it carries the
    /// same ID as this node's, so the logs of the regions join on it.
    func lookup(_ target: String, at peers: [Peer], limit: Int, requestID: String) async -> [RegionAnswer] {
        let due = ContinuousClock.now + deadline
        return await withTaskGroup(of: RegionAnswer.self) { group in
            for peer in peers {
                group.addTask { await self.ask(peer, target, requestID: requestID, due: due, limit: limit) }
            }
            var answers: [RegionAnswer] = []
            for await answer in group { answers.append(answer) }
            return answers.sorted { $0.region < $1.region }
        }
    }

    /// A peer's page of studies, each record checked as an upload would be: a peer that
    /// sends one that is not (a bug, or a node that is not what it claims) counts as an
    /// error rather than passing it on.
    static func studies(in page: [String: JSONValue]) -> [StudyRecord]? {
        guard case .array(let items)? = page["studies"] else { return nil }
        var studies: [StudyRecord] = []
        studies.reserveCapacity(items.count)
        for item in items {
            guard case .object(let fields) = item, case .success(let record) = StudyRecord.validate(fields) else { return nil }
            studies.append(record)
        }
        return studies
    }

    private func ask(_ peer: Peer, _ target: String, requestID: String, due: ContinuousClock.Instant,
                     limit: Int) async -> RegionAnswer {
        guard peer.breaker.allow() else { return RegionAnswer(region: peer.region, status: "error", studies: []) }
        switch await peer.lookups.lookup(target, requestID: requestID, due: due) {
        case .success(let page):
            guard let studies = Self.studies(in: page) else { return RegionAnswer(region: peer.region, status: "error", studies: []) }
            return RegionAnswer(region: peer.region, status: studies.count >= limit ? "partial" : "complete", studies: studies)
        case .failure(let failure):
            return RegionAnswer(region: peer.region, status: failure == .timeout ? "timeout" : "error", studies: [])
        }
    }
}
