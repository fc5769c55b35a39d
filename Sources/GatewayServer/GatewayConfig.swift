import Foundation
import ImagingIndex

/// The one configuration type of a node. Read from a JSON file, then overridden by
/// environment variables (`IMAGING_GATEWAY_*`), then by command-line flags.
/// Every field has a default that gives a working development node.
public struct GatewayConfig: Codable, Sendable, Equatable {
    /// Six-digit administrative region code of this node (GB/T 2260), e.g. 610000.
    public var region = "000000"
    /// `regional` or `national`.
    public var role = "regional"
    public var dataDirectory = "./data"
    /// TLS listeners, `host:port` or `[v6]:port`.
    public var listen = ["0.0.0.0:8443", "[::]:8443"]
    /// Plain-HTTP listeners: none unless configured; keep them on loopback.
    public var plainListen: [String] = []
    public var tls = TLSFiles()
    /// Event loops; 0 means one per core.
    public var loops = 0
    public var maxConnections = 16_384
    public var timeouts = Timeouts()
    public var limits = Limits()
    public var index = Index()
    public var tokens = Tokens()
    public var audit = Audit()
    public var federation = FederationSettings()
    public var reads = Reads()
    public var priors = Priors()
    /// trace, debug, info, notice, warning, error, critical.
    public var logLevel = "info"

    public struct TLSFiles: Codable, Sendable, Equatable {
        /// Unset paths are filled with development certificates made on first start.
        public var certificate: String?
        public var privateKey: String?
        public var clientCA: String?
        public var crl: String?
        public var allowTLS12 = false
    }

    /// The waits on a peer hold while at most half of `maxConnections` are open and shrink
    /// toward `atCapacitySeconds` as the rest fill (see HTTPServer.patience).
    public struct Timeouts: Codable, Sendable, Equatable {
        public var handshakeSeconds = 10
        public var headerSeconds = 60
        public var bodySeconds = 60
        public var idleSeconds = 60
        public var atCapacitySeconds = 5
        public var shutdownGraceSeconds = 10
    }

    public struct Limits: Codable, Sendable, Equatable {
        public var maxBodyBytes = 16 << 20
        public var maxHeaderBytes = 32 << 10
        public var maxDecompressedBytes = 64 << 20
    }

    public struct Index: Codable, Sendable, Equatable {
        /// Records one upload may carry.
        public var maxBatchRecords = 10_000
    }

    public struct Tokens: Codable, Sendable, Equatable {
        /// Serve POST /v1/tokens/evaluate (role token-client) on this node.
        public var service = false
        /// The key file; default `<dataDirectory>/token-keys.json`.
        public var keyFile: String?
        /// Blinded elements one evaluation request may carry.
        public var maxBatch = 1_000
    }

    public struct Audit: Codable, Sendable, Equatable {
        /// Record every access (off only to measure what auditing costs).
        public var enabled = true
        /// Seconds between signed checkpoints while the log grows.
        public var checkpointSeconds = 60
        /// Days events are kept at least; nothing inside it is ever deleted (≥ 180).
        public var retentionDays = 365
        public var quotas: [Quota] = []
        /// The checkpoint signing key; default `<dataDirectory>/audit-key.pem`.
        public var keyFile: String?
        /// Nodes (`https://host:port`) this node offers its checkpoints to as witnesses;
        /// default: the national node in `federation.gatherTo`, if any.
        public var witnesses: [String]?
    }

    /// A daily limit on one metering counter for certificates of a role and/or organization.
    public struct Quota: Codable, Sendable, Equatable {
        public var role: String?
        public var organization: String?
        /// uploads, records, lookups, token-evaluations or tokens.
        public var counter: String
        public var perDay: Int

        public init(role: String? = nil, organization: String? = nil, counter: String, perDay: Int) {
            self.role = role
            self.organization = organization
            self.counter = counter
            self.perDay = perDay
        }
    }

    /// The other regions this node asks (and, later, gathers to).
    public struct FederationSettings: Codable, Sendable, Equatable {
        public var peers: [PeerSettings] = []
        /// Each peer's answer must arrive within this; later ones are reported `timeout`.
        public var lookupDeadlineMs = 800
        /// A regional node's national node (`https://host:port`): every stored record is
        /// queued in the same transaction and sent there.
        public var gatherTo: String?
    }

    public struct PeerSettings: Codable, Sendable, Equatable {
        /// The peer's six-digit region code.
        public var region: String
        /// Its base URL, `https://host:port`.
        public var url: String

        public init(region: String, url: String) {
            self.region = region
            self.url = url
        }
    }

    public var auditKeyFile: String { audit.keyFile ?? dataDirectory + "/audit-key.pem" }

    /// Where this node's checkpoints are witnessed: `audit.witnesses`, else its national node.
    public var auditWitnesses: [String] { audit.witnesses ?? federation.gatherTo.map { [$0] } ?? [] }

    /// Where the token key file is, set or default.
    public var tokenKeyFile: String { tokens.keyFile ?? dataDirectory + "/token-keys.json" }

    public init() {}

    public enum LoadError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case invalid(String)

        public var description: String {
            switch self {
            case let .unreadable(path, reason): return "cannot read config \(path): \(reason)"
            case let .invalid(message): return "invalid configuration: \(message)"
            }
        }
    }

    /// Loads `path` (if given) over the defaults, then applies `environment`.
    public static func load(path: String?, environment: [String: String]) throws(LoadError) -> GatewayConfig {
        var config = GatewayConfig()
        if let path {
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                config = try JSONDecoder().decode(GatewayConfig.self, from: data)
            } catch let error as DecodingError {
                throw .unreadable(path: path, reason: Self.describe(error))
            } catch {
                throw .unreadable(path: path, reason: error.localizedDescription)
            }
        }
        config.apply(environment: environment)
        try config.validate()
        return config
    }

    mutating func apply(environment env: [String: String]) {
        let list = { (s: String) in s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let v = env["IMAGING_GATEWAY_REGION"] { region = v }
        if let v = env["IMAGING_GATEWAY_ROLE"] { role = v }
        if let v = env["IMAGING_GATEWAY_DATA_DIR"] { dataDirectory = v }
        if let v = env["IMAGING_GATEWAY_LISTEN"] { listen = list(v) }
        if let v = env["IMAGING_GATEWAY_PLAIN_LISTEN"] { plainListen = list(v) }
        if let v = env["IMAGING_GATEWAY_LOG_LEVEL"] { logLevel = v }
        if let v = env["IMAGING_GATEWAY_LOOPS"], let n = Int(v) { loops = n }
        if let v = env["IMAGING_GATEWAY_TOKEN_SERVICE"] { tokens.service = v == "1" || v == "true" }
        if let v = env["IMAGING_GATEWAY_TOKEN_KEY_FILE"] { tokens.keyFile = v }
        if let v = env["IMAGING_GATEWAY_AUDIT"] { audit.enabled = !(v == "0" || v == "false" || v == "off") }
    }

    public func validate() throws(LoadError) {
        guard Codes.isSixDigits(region) else {
            throw .invalid("region must be a six-digit region code, got '\(region)'")
        }
        guard role == "regional" || role == "national" else {
            throw .invalid("role must be 'regional' or 'national', got '\(role)'")
        }
        for address in listen + plainListen where Self.split(address) == nil {
            throw .invalid("listen address '\(address)' is not host:port or [v6]:port")
        }
        guard !listen.isEmpty || !plainListen.isEmpty else { throw .invalid("no listener configured") }
        guard (tls.certificate == nil) == (tls.privateKey == nil) else {
            throw .invalid("tls.certificate and tls.privateKey go together")
        }
        guard maxConnections > 0, loops >= 0 else { throw .invalid("maxConnections and loops must be positive") }
        let t = timeouts
        guard [t.handshakeSeconds, t.headerSeconds, t.bodySeconds, t.idleSeconds, t.atCapacitySeconds].allSatisfy({ $0 >= 1 }),
              t.shutdownGraceSeconds >= 0
        else { throw .invalid("timeouts must be at least 1 second (shutdownGraceSeconds at least 0)") }
        guard (1...100_000).contains(index.maxBatchRecords) else { throw .invalid("index.maxBatchRecords must be 1 to 100000") }
        guard (1...10_000).contains(tokens.maxBatch) else { throw .invalid("tokens.maxBatch must be 1 to 10000") }
        for peer in federation.peers {
            guard Codes.isSixDigits(peer.region), peer.region != region,
                  peer.url.hasPrefix("https://")
            else { throw .invalid("federation.peers: each needs a six-digit region other than this node's and an https URL") }
        }
        if let gatherTo = federation.gatherTo {
            guard gatherTo.hasPrefix("https://"), role == "regional" else {
                throw .invalid("federation.gatherTo is an https URL, set on regional nodes only")
            }
        }
        guard (50...60_000).contains(federation.lookupDeadlineMs) else {
            throw .invalid("federation.lookupDeadlineMs must be 50 to 60000")
        }
        guard audit.retentionDays >= 180 else { throw .invalid("audit.retentionDays must be at least 180") }
        guard auditWitnesses.allSatisfy({ $0.hasPrefix("https://") }) else { throw .invalid("audit.witnesses: each is an https URL") }
        let counters: Set<String> = ["uploads", "records", "lookups", "prior-checks", "token-evaluations", "tokens", "read-requests",
                                     "read-transitions"]
        for q in audit.quotas where !counters.contains(q.counter) || q.perDay < 0 {
            throw .invalid("audit.quotas: counter must be one of \(counters.sorted().joined(separator: ", ")) with perDay ≥ 0")
        }
        try validateReads()
        try validatePriors()
    }

    /// Splits `host:port` or `[v6]:port`.
    public static func split(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case let .typeMismatch(_, c), let .valueNotFound(_, c), let .keyNotFound(_, c), let .dataCorrupted(c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GatewayConfig()
        region = try c.decodeIfPresent(String.self, forKey: .region) ?? d.region
        role = try c.decodeIfPresent(String.self, forKey: .role) ?? d.role
        dataDirectory = try c.decodeIfPresent(String.self, forKey: .dataDirectory) ?? d.dataDirectory
        listen = try c.decodeIfPresent([String].self, forKey: .listen) ?? d.listen
        plainListen = try c.decodeIfPresent([String].self, forKey: .plainListen) ?? d.plainListen
        tls = try c.decodeIfPresent(TLSFiles.self, forKey: .tls) ?? d.tls
        loops = try c.decodeIfPresent(Int.self, forKey: .loops) ?? d.loops
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections
        timeouts = try c.decodeIfPresent(Timeouts.self, forKey: .timeouts) ?? d.timeouts
        limits = try c.decodeIfPresent(Limits.self, forKey: .limits) ?? d.limits
        index = try c.decodeIfPresent(Index.self, forKey: .index) ?? d.index
        tokens = try c.decodeIfPresent(Tokens.self, forKey: .tokens) ?? d.tokens
        audit = try c.decodeIfPresent(Audit.self, forKey: .audit) ?? d.audit
        federation = try c.decodeIfPresent(FederationSettings.self, forKey: .federation) ?? d.federation
        reads = try c.decodeIfPresent(Reads.self, forKey: .reads) ?? d.reads
        priors = try c.decodeIfPresent(Priors.self, forKey: .priors) ?? d.priors
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? d.logLevel
    }
}

extension GatewayConfig.Timeouts {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        handshakeSeconds = try c.decodeIfPresent(Int.self, forKey: .handshakeSeconds) ?? 10
        headerSeconds = try c.decodeIfPresent(Int.self, forKey: .headerSeconds) ?? 60
        bodySeconds = try c.decodeIfPresent(Int.self, forKey: .bodySeconds) ?? 60
        idleSeconds = try c.decodeIfPresent(Int.self, forKey: .idleSeconds) ?? 60
        atCapacitySeconds = try c.decodeIfPresent(Int.self, forKey: .atCapacitySeconds) ?? 5
        shutdownGraceSeconds = try c.decodeIfPresent(Int.self, forKey: .shutdownGraceSeconds) ?? 10
    }
}

extension GatewayConfig.Limits {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxBodyBytes = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? 16 << 20
        maxHeaderBytes = try c.decodeIfPresent(Int.self, forKey: .maxHeaderBytes) ?? 32 << 10
        maxDecompressedBytes = try c.decodeIfPresent(Int.self, forKey: .maxDecompressedBytes) ?? 64 << 20
    }
}

extension GatewayConfig.TLSFiles {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
        privateKey = try c.decodeIfPresent(String.self, forKey: .privateKey)
        clientCA = try c.decodeIfPresent(String.self, forKey: .clientCA)
        crl = try c.decodeIfPresent(String.self, forKey: .crl)
        allowTLS12 = try c.decodeIfPresent(Bool.self, forKey: .allowTLS12) ?? false
    }
}

extension GatewayConfig.Tokens {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        service = try c.decodeIfPresent(Bool.self, forKey: .service) ?? false
        keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile)
        maxBatch = try c.decodeIfPresent(Int.self, forKey: .maxBatch) ?? 1_000
    }
}

extension GatewayConfig.Audit {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        checkpointSeconds = try c.decodeIfPresent(Int.self, forKey: .checkpointSeconds) ?? 60
        retentionDays = try c.decodeIfPresent(Int.self, forKey: .retentionDays) ?? 365
        quotas = try c.decodeIfPresent([GatewayConfig.Quota].self, forKey: .quotas) ?? []
        keyFile = try c.decodeIfPresent(String.self, forKey: .keyFile)
        witnesses = try c.decodeIfPresent([String].self, forKey: .witnesses)
    }
}

extension GatewayConfig.FederationSettings {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peers = try c.decodeIfPresent([GatewayConfig.PeerSettings].self, forKey: .peers) ?? []
        lookupDeadlineMs = try c.decodeIfPresent(Int.self, forKey: .lookupDeadlineMs) ?? 800
        gatherTo = try c.decodeIfPresent(String.self, forKey: .gatherTo)
    }
}
