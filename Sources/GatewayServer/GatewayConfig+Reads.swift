extension GatewayConfig {
    /// The read queue and its AI stage (Protocols/reads.md).
    public struct Reads: Codable, Sendable, Equatable {
        /// A reader's claim lasts this long without a heartbeat.
        public var leaseSeconds = 120.0
        /// The AI stage's claim lasts this long.
        public var aiLeaseSeconds = 30.0
        /// Reader leases that may expire before the item is dead-lettered.
        public var maxAttempts = 3
        /// AI runs that may fail before the item is dead-lettered.
        public var maxAIAttempts = 3
        /// An item waiting this long goes before fresh ones, whatever their priority.
        public var agingSeconds = 900.0
        /// `node` (a worker pool in this process), `external` (workers with role ai-worker
        /// claim AI work over HTTP) or `off` (new items go straight to readers).
        public var aiStage = "node"
        /// In-node AI workers.
        public var aiWorkers = 4
        /// Deadline of one inference.
        public var aiDeadlineMs = 5_000
        public var engine = Engine()

        public init() {}
    }

    /// Which model the AI stage calls.
    public struct Engine: Codable, Sendable, Equatable {
        /// `stub` or `kserve`.
        public var kind = "stub"
        /// KServe v2 base URL (`http://host:port`) and model name.
        public var url: String?
        public var model: String?
        public var maxConcurrency = 8
        /// Stub only: added latency, and the share of studies whose inference fails.
        public var latencyMs = 0
        public var failureRate = 0.0

        public init() {}
    }

    func validateReads() throws(LoadError) {
        let r = reads
        guard r.leaseSeconds >= 0.05, r.aiLeaseSeconds >= 0.05, r.agingSeconds >= 0 else {
            throw .invalid("reads: leaseSeconds and aiLeaseSeconds are at least 0.05, agingSeconds at least 0")
        }
        guard (1...100).contains(r.maxAttempts), (1...100).contains(r.maxAIAttempts) else {
            throw .invalid("reads: maxAttempts and maxAIAttempts are 1 to 100")
        }
        guard ["node", "external", "off"].contains(r.aiStage) else {
            throw .invalid("reads.aiStage is node, external or off, got '\(r.aiStage)'")
        }
        guard (1...256).contains(r.aiWorkers), (10...600_000).contains(r.aiDeadlineMs) else {
            throw .invalid("reads: aiWorkers is 1 to 256, aiDeadlineMs 10 to 600000")
        }
        switch r.engine.kind {
        case "stub":
            guard (0...1).contains(r.engine.failureRate), r.engine.latencyMs >= 0 else {
                throw .invalid("reads.engine: failureRate is 0 to 1 and latencyMs at least 0")
            }
        case "kserve":
            guard let url = r.engine.url, url.hasPrefix("http://") || url.hasPrefix("https://"), let model = r.engine.model,
                  !model.isEmpty, model.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw .invalid("reads.engine: kserve needs url (http or https) and model (letters, digits, - _ .)")
            }
        default:
            throw .invalid("reads.engine.kind is stub or kserve, got '\(r.engine.kind)'")
        }
    }
}

extension GatewayConfig.Reads {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        leaseSeconds = try c.decodeIfPresent(Double.self, forKey: .leaseSeconds) ?? d.leaseSeconds
        aiLeaseSeconds = try c.decodeIfPresent(Double.self, forKey: .aiLeaseSeconds) ?? d.aiLeaseSeconds
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? d.maxAttempts
        maxAIAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAIAttempts) ?? d.maxAIAttempts
        agingSeconds = try c.decodeIfPresent(Double.self, forKey: .agingSeconds) ?? d.agingSeconds
        aiStage = try c.decodeIfPresent(String.self, forKey: .aiStage) ?? d.aiStage
        aiWorkers = try c.decodeIfPresent(Int.self, forKey: .aiWorkers) ?? d.aiWorkers
        aiDeadlineMs = try c.decodeIfPresent(Int.self, forKey: .aiDeadlineMs) ?? d.aiDeadlineMs
        engine = try c.decodeIfPresent(GatewayConfig.Engine.self, forKey: .engine) ?? d.engine
    }
}

extension GatewayConfig.Engine {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? d.kind
        url = try c.decodeIfPresent(String.self, forKey: .url)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        maxConcurrency = try c.decodeIfPresent(Int.self, forKey: .maxConcurrency) ?? d.maxConcurrency
        latencyMs = try c.decodeIfPresent(Int.self, forKey: .latencyMs) ?? d.latencyMs
        failureRate = try c.decodeIfPresent(Double.self, forKey: .failureRate) ?? d.failureRate
    }
}
