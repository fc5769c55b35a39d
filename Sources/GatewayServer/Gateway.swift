import JSONText
import AuditLog
import Foundation
import GatewayNet
import IndexStore
import Logging
import PatientTokens
import Prometheus

/// A running node: the HTTP server with the gateway's routes, built from a config.
public final class Gateway: @unchecked Sendable {
    public static let version = "0.1.0"
    public let config: GatewayConfig
    public let server: HTTPServer
    public let logger: Logger
    /// Where development certificates were put, when the config named none.
    public let devCertificateDirectory: String?
    private let metrics: GatewayMetrics
    private let computePool = ComputePool()
    private let auditor: Auditor
    private let gatherer: Gatherer?
    /// Offers this node's checkpoints to its witnesses (`audit.witnesses`).
    private let witnessSender: WitnessSender?
    private let reads: ReadService

    public enum StartError: Error, CustomStringConvertible {
        case certificates(String)
        case tls(String)
        case store(String)
        case listen(String)
        case tokens(String)
        case audit(String)

        public var description: String {
            switch self {
            case .certificates(let m), .tls(let m), .store(let m), .listen(let m), .tokens(let m), .audit(let m): return m
            }
        }
    }

    public init(config: GatewayConfig, logger: Logger) throws(StartError) {
        var config = config
        do {
            try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
            devCertificateDirectory = try DevCertificates.ensure(&config)
        } catch let error as DevCertificateAuthority.Failure {
            throw .certificates(error.description)
        } catch {
            throw .certificates("cannot create data directory \(config.dataDirectory): \(error)")
        }
        self.config = config
        self.logger = logger
        var tlsConfig = TLSConfiguration(certificateChainPath: config.tls.certificate, privateKeyPath: config.tls.privateKey,
                                         trustedCAPath: config.tls.clientCA, crlPath: config.tls.crl)
        tlsConfig.allowTLS12 = config.tls.allowTLS12
        tlsConfig.identityPrefix = Role.uriPrefix
        let tls: TLSContext?
        do {
            tls = config.listen.isEmpty ? nil : try TLSContext(configuration: tlsConfig, server: true)
        } catch {
            throw .tls(error.description)
        }
        var listeners: [ListenerConfiguration] = []
        for address in config.listen {
            let (host, port) = GatewayConfig.split(address)!
            listeners.append(ListenerConfiguration(host: host, port: port, tls: tls))
        }
        for address in config.plainListen {
            let (host, port) = GatewayConfig.split(address)!
            listeners.append(ListenerConfiguration(host: host, port: port, tls: nil))
        }
        var serverConfig = HTTPServerConfiguration(listeners: listeners)
        if config.loops > 0 { serverConfig.loopCount = config.loops }
        serverConfig.maxConnections = config.maxConnections
        serverConfig.handshakeTimeout = .seconds(config.timeouts.handshakeSeconds)
        serverConfig.headerTimeout = .seconds(config.timeouts.headerSeconds)
        serverConfig.bodyTimeout = .seconds(config.timeouts.bodySeconds)
        serverConfig.idleTimeout = .seconds(config.timeouts.idleSeconds)
        serverConfig.timeoutAtCapacity = .seconds(config.timeouts.atCapacitySeconds)
        serverConfig.limits.maxBodyBytes = config.limits.maxBodyBytes
        serverConfig.limits.maxHeaderBytes = config.limits.maxHeaderBytes
        serverConfig.limits.maxDecompressedBytes = config.limits.maxDecompressedBytes
        let store: SQLiteIndexStore
        var upgradeStarted: ContinuousClock.Instant?
        do {
            store = try SQLiteIndexStore(path: config.dataDirectory + "/index.sqlite", gathers: config.federation.gatherTo != nil,
                                         queuePolicy: ReadService.policy(config.reads)) { migrations in
                logger.notice("index store: bringing the schema up to date before serving; rebuilding an index takes some seconds a million studies",
                              metadata: ["migrations": "\(migrations)"])
                upgradeStarted = .now
            }
        } catch {
            throw .store("cannot open the index store in \(config.dataDirectory): \(error)")
        }
        if let upgradeStarted {
            logger.notice("index store: schema up to date", metadata: ["took": "\(ContinuousClock.now - upgradeStarted)"])
        }
        if store.auditLeavesPutBack > 0 {
            logger.notice("audit: filed leaves the index kept beyond the audit log's end; the last stop fell between the two files' syncs",
                          metadata: ["leaves": "\(store.auditLeavesPutBack)"])
        }
        let tokenKeys = try Self.openTokenKeys(config, devMode: devCertificateDirectory != nil, logger: logger)
        metrics = GatewayMetrics()
        var router = Router()
        let signer: CheckpointSigner
        do {
            signer = try CheckpointSigner(keyPath: config.auditKeyFile)
        } catch {
            throw .audit(error.description)
        }
        let auditor = Auditor(store: store, config: config, signer: signer)
        self.auditor = auditor
        Self.addOperationalRoutes(to: &router, config: config, metrics: metrics,
                                  outbox: config.federation.gatherTo == nil ? nil : store, auditor: auditor)
        let federation: Federation?
        do {
            federation = try Federation(config: config)
        } catch {
            throw .tls("federation client: \(error.description)")
        }
        IndexRoutes.add(to: &router, store: store, maxBatch: config.index.maxBatchRecords, tokenKeys: tokenKeys, auditor: auditor,
                        federation: federation, region: config.region)
        FederationRoutes.add(to: &router, store: store, tokenKeys: tokenKeys, auditor: auditor, region: config.region)
        WitnessRoutes.add(to: &router, auditor: auditor, logger: logger) { [metrics] in metrics.witnessConflicts.increment() }
        if let federation, !config.auditWitnesses.isEmpty {
            witnessSender = WitnessSender(store: store, client: federation.client, witnesses: config.auditWitnesses,
                                          publicKey: signer.publicKeyPEM, origin: auditor.origin,
                                          retryAfterRefusal: .seconds(10 * config.audit.checkpointSeconds), logger: logger)
        } else {
            witnessSender = nil
        }
        if let national = config.federation.gatherTo, let federation {
            gatherer = Gatherer(outbox: store, client: federation.client, nationalURL: national, region: config.region, logger: logger)
        } else {
            gatherer = nil
        }
        if config.tokens.service, let tokenKeys {
            TokenRoutes.add(to: &router, keys: tokenKeys, maxBatch: config.tokens.maxBatch, pool: computePool, auditor: auditor)
        }
        QidoRoutes.add(to: &router, store: store, auditor: auditor, federation: federation, region: config.region)
        FHIRRoutes.add(to: &router, store: store, auditor: auditor, federation: federation, region: config.region)
        PriorRoutes.add(to: &router, store: store, rule: config.priors.rule, tokenKeys: tokenKeys, auditor: auditor,
                        federation: federation, region: config.region)
        AuditRoutes.add(to: &router, auditor: auditor)
        reads = ReadService(store: store, settings: config.reads, region: config.region, logger: logger)
        ReadRoutes.add(to: &router, service: reads, index: store, auditor: auditor, federation: federation, region: config.region)
        server = HTTPServer(configuration: serverConfig, router: router, logger: logger)
        metrics.statistics = server.statistics
        metrics.witnessSender = witnessSender
    }

    /// The key file when there is one: the token service needs it, and the index uses it
    /// to refuse tokens of retired versions. A service on development certificates makes
    /// one on first start, as it makes the certificates; otherwise a missing file is an error.
    private static func openTokenKeys(_ config: GatewayConfig, devMode: Bool,
                                      logger: Logger) throws(StartError) -> TokenKeys? {
        let path = config.tokenKeyFile
        if !FileManager.default.fileExists(atPath: path) {
            guard config.tokens.service else { return nil }
            guard devMode else {
                throw .tokens("the token service is enabled but \(path) does not exist; run `imaging-gateway keys create`")
            }
            do {
                try TokenKeyFile.create().save(path: path)
            } catch {
                throw .tokens("cannot create the development token key file \(path): \(error)")
            }
            logger.notice("made a development token key file (not for production)", metadata: ["path": "\(path)"])
        }
        do {
            return try TokenKeys(path: path)
        } catch {
            throw .tokens(error.description)
        }
    }

    /// Binds the listeners; returns the bound ports in config order (TLS, then plain).
    @discardableResult
    public func start() throws(StartError) -> [Int] {
        do {
            let ports = try server.start()
            var offer: (@Sendable (Checkpoint) async -> Void)?
            if let witnessSender { offer = { await witnessSender.offer($0) } }
            auditor.startCheckpointing(every: config.audit.checkpointSeconds, offer: offer)
            gatherer?.start()
            reads.start()
            return ports
        } catch {
            throw .listen(error.description)
        }
    }

    public func shutdown() {
        server.shutdown(grace: .seconds(config.timeouts.shutdownGraceSeconds))
        computePool.stop()
        auditor.stopCheckpointing()
        gatherer?.stop()
        reads.stop()
    }

    private static func addOperationalRoutes(to router: inout Router, config: GatewayConfig, metrics: GatewayMetrics,
                                             outbox: OutboxStore?,
                                             auditor: Auditor) {
        let started = ISO8601DateFormatter().string(from: Date())
        let health = "{\"status\":\"ok\",\"service\":\"imaging-gateway\",\"version\":\(jsonString(Gateway.version)),"
            + "\"region\":\(jsonString(config.region)),\"role\":\(jsonString(config.role)),\"started\":\(jsonString(started)),"
            + "\"listeners\":{\"tls\":\(config.listen.count),\"plain\":\(config.plainListen.count)}}"
        let healthResponse = HTTPResponse.json(health)
        let readyResponse = HTTPResponse.json("{\"status\":\"ready\"}")
        router.add("GET", "/healthz", .inline { _ in healthResponse })
        if let outbox {
            // A gathering node says how far behind the national node it is.
            router.add("GET", "/readyz", .async { _ in
                guard let lag = try? await outbox.lag() else { return .json("{\"status\":\"store_unavailable\"}", status: 503) }
                return .json("{\"status\":\"ready\",\"gathering\":{\"lagRecords\":\(lag.records),\"lagSeconds\":\(lag.seconds)}}")
            })
        } else {
            router.add("GET", "/readyz", .inline { _ in readyResponse })
        }
        router.add("GET", "/metrics", roles: .roles(.operator), plainListener: true, .async { _ in
            let usage = (try? await auditor.store.usage(day: AuditEvent.day())) ?? []
            let lag = outbox == nil ? nil : try? await outbox!.lag()
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4")]),
                                body: metrics.scrape(usage: usage, outboxLag: lag))
        })
    }
}

/// The node's Prometheus registry. Server counters are read at scrape time from the
/// server's atomics, so the request path pays nothing for them.
final class GatewayMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    var statistics: HTTPServerStatistics?
    var witnessSender: WitnessSender?
    private let accepted, requests, rejected, handshakeFailures, timeouts, protocolErrors: Gauge
    private let open: Gauge
    let witnessConflicts: Counter

    init() {
        let registry = registry
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "gateway", metricName: name, unitName: "", helpText: help))
        }
        accepted = gauge("connections_accepted_total", "Connections accepted.")
        open = gauge("connections_open", "Connections open now.")
        requests = gauge("http_requests_total", "HTTP requests parsed.")
        rejected = gauge("connections_rejected_total", "Connections refused at the connection cap.")
        handshakeFailures = gauge("tls_handshake_failures_total", "TLS handshakes that failed.")
        timeouts = gauge("timeouts_total", "Connections closed by a handshake, header, body or idle timeout.")
        protocolErrors = gauge("http_protocol_errors_total", "Requests refused by the HTTP parser.")
        witnessConflicts = registry.makeCounter(descriptor: MetricNameDescriptor(
            namespace: "gateway", metricName: "audit_witness_conflicts_total", unitName: "",
            helpText: "Checkpoints offered to this node as a witness that did not extend the one it held (WitnessRoutes)."))
    }

    /// Today's metering (UTC), per certificate and counter, as `gateway_usage_today`.
    func scrape(usage: [UsageCount], outboxLag: (records: Int, seconds: Int)?) -> [UInt8] {
        if let outboxLag {
            func gauge(_ name: String, _ help: String) -> Gauge {
                registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "gateway", metricName: name, unitName: "", helpText: help))
            }
            gauge("outbox_lag_records", "Records stored here and not yet acknowledged by the national node.").set(Double(outboxLag.records))
            gauge("outbox_lag_seconds", "Age of the oldest record waiting for the national node.").set(Double(outboxLag.seconds))
        }
        for u in usage {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "gateway", metricName: "usage_today", unitName: "",
                                                                helpText: "Audited requests and items today (UTC) per client certificate."),
                               labels: [("actor", u.actor), ("counter", u.counter)]).set(Double(u.count))
        }
        for (witness, size) in witnessSender?.witnessed ?? [:] {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "gateway", metricName: "audit_witnessed_tree_size", unitName: "",
                                                                helpText: "The tree size of this node's log each witness holds, as last known."),
                               labels: [("witness", witness)]).set(Double(size))
        }
        guard let statistics else { return registry.emitToBuffer() }
        let s = statistics.snapshot
        accepted.set(Double(s.accepted))
        open.set(Double(s.open))
        requests.set(Double(s.requests))
        rejected.set(Double(s.rejectedOverCap))
        handshakeFailures.set(Double(s.handshakeFailures))
        timeouts.set(Double(s.timeouts))
        protocolErrors.set(Double(s.protocolErrors))
        return registry.emitToBuffer() + Array(RequestDurations.exposition(
            statistics.durations.snapshot, name: "gateway_http_request_duration_seconds",
            help: "Time from a request parsed to its response queued for the socket.").utf8)
    }
}
