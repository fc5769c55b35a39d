import JSONText

/// A model stand-in for tests, benchmarks and trying the flow: its urgency is a hash of
/// the study's attributes (the same study always gets the same answer), it takes a
/// configured time, and a configured share of studies (chosen by a second hash, so the
/// same ones every run) fail with a configured error class.
public struct StubEngine: InferenceEngine {
    public struct Settings: Sendable, Equatable {
        public var latencyMs = 0
        /// Share of studies, 0...1, whose every inference fails.
        public var failureRate = 0.0
        public var failure = InferenceError.transient("stub engine: configured failure")

        public init() {}
    }

    public let descriptor = ModelDescriptor(name: "stub-triage", version: "1", engine: "stub")
    public let settings: Settings

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    public func health() async -> EngineHealth {
        EngineHealth(ready: true, detail: "stub engine (deterministic, no model)")
    }

    public func infer(_ input: InferenceInput, deadline: ContinuousClock.Instant) async throws(InferenceError) -> InferenceOutput {
        guard ContinuousClock.now < deadline else { throw .timeout }
        let key = input.studyInstanceUID + "|" + input.modalities.joined(separator: ",") + "|" + (input.bodyPart ?? "")
        if settings.latencyMs > 0 {
            let due = ContinuousClock.now + .milliseconds(settings.latencyMs)
            if due > deadline {
                try? await Task.sleep(until: deadline, clock: .continuous)
                throw .timeout
            }
            try? await Task.sleep(until: due, clock: .continuous)
        }
        if Self.unit(key, salt: 0x5A17) < settings.failureRate { throw settings.failure }
        let urgency = Self.unit(key, salt: 0)
        let finding = urgency >= 0.8 ? "critical-finding-suspected" : urgency >= 0.5 ? "finding-suspected" : "no-acute-finding"
        return InferenceOutput(urgency: urgency, result: "{\"model\":\"stub-triage\",\"version\":\"1\","
            + "\"urgency\":\((urgency * 1000).rounded() / 1000),\"finding\":\(jsonString(finding))}")
    }

    /// FNV-1a of `key`, mixed with `salt`, as a number in 0..<1.
    static func unit(_ key: String, salt: UInt64) -> Double {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt
        for b in key.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return Double(h >> 11) / Double(1 << 53)
    }
}
