/// An AI model that pre-reads a study. The gateway's AI stage calls `infer` for each
/// workitem and turns the urgency into a triage priority; which engine runs is config.
///
/// The contract every engine must pass is `InferenceEngineContract` in
/// Tests/GatewayServerTests (subclass it and return the engine, ready, from
/// `makeEngine()`). In short:
/// - `descriptor` names the model and its version; `health()` says whether `infer` can
///   succeed now, without side effects.
/// - `infer` returns by its deadline: when the deadline passes it throws `.timeout`, never
///   later than a small scheduling margin after it.
/// - The same input gives the same urgency (models are pinned by version).
/// - Errors are classed: `.invalidInput` (retrying cannot help), `.transient` (it may,
///   later), `.unavailable` (the engine is down or its breaker open), `.timeout`.
/// - `urgency` is in 0...1; `result` is a JSON object text stored with the workitem.
public protocol InferenceEngine: Sendable {
    var descriptor: ModelDescriptor { get }
    func health() async -> EngineHealth
    func infer(_ input: InferenceInput, deadline: ContinuousClock.Instant) async throws(InferenceError) -> InferenceOutput
}

public struct ModelDescriptor: Sendable, Equatable {
    public var name: String
    public var version: String
    /// `stub` or `kserve-v2`.
    public var engine: String

    public init(name: String, version: String, engine: String) {
        self.name = name
        self.version = version
        self.engine = engine
    }
}

public struct EngineHealth: Sendable, Equatable {
    public var ready: Bool
    public var detail: String

    public init(ready: Bool, detail: String) {
        self.ready = ready
        self.detail = detail
    }
}

/// What the model sees of a study: the index's attributes (the gateway holds no pixels).
public struct InferenceInput: Sendable, Equatable {
    public var studyInstanceUID: String
    public var modalities: [String]
    public var bodyPart: String?

    public init(studyInstanceUID: String, modalities: [String], bodyPart: String?) {
        self.studyInstanceUID = studyInstanceUID
        self.modalities = modalities
        self.bodyPart = bodyPart
    }

    /// The feature vector both engines use: a one-hot of the modality family, then of
    /// the body part (Protocols/reads.md lists them).
    public var features: [Float] {
        let families: [Set<String>] = [["CT"], ["MR"], ["CR", "DX", "DR", "RF", "XA"], ["US"], ["MG"]]
        var f = families.map { family in modalities.contains(where: family.contains) ? Float(1) : 0 }
        f.append(f.contains(1) ? 0 : 1)
        let part = bodyPart?.uppercased() ?? ""
        f.append(part.contains("CHEST") || part.contains("LUNG") ? 1 : 0)
        f.append(part.contains("HEAD") || part.contains("BRAIN") ? 1 : 0)
        return f
    }

    public static let featureCount = 8
}

public struct InferenceOutput: Sendable, Equatable {
    /// How urgent the model finds the study, 0 (routine) to 1 (critical).
    public var urgency: Double
    /// The model's answer as a JSON object text.
    public var result: String

    public init(urgency: Double, result: String) {
        self.urgency = urgency
        self.result = result
    }
}

public enum InferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidInput(String)
    case transient(String)
    case unavailable(String)
    case timeout

    public var description: String {
        switch self {
        case .invalidInput(let m): return "invalid input: \(m)"
        case .transient(let m): return "transient failure: \(m)"
        case .unavailable(let m): return "engine unavailable: \(m)"
        case .timeout: return "deadline passed"
        }
    }
}
