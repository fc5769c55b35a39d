import ImagingIndex

extension GatewayConfig {
    /// The repeat-examination check (Protocols/priors.md).
    public struct Priors: Codable, Sendable, Equatable {
        /// Days a prior counts, per modality; others use `defaultWindowDays`.
        public var windowDays: [String: Int] = PriorExamRule.standard.windowDays
        public var defaultWindowDays = PriorExamRule.standard.defaultWindowDays

        public init() {}

        var rule: PriorExamRule { PriorExamRule(windowDays: windowDays, defaultWindowDays: defaultWindowDays) }
    }

    func validatePriors() throws(LoadError) {
        let days = 1...3_650
        guard days.contains(priors.defaultWindowDays), priors.windowDays.values.allSatisfy(days.contains) else {
            throw .invalid("priors: windows are 1 to 3650 days")
        }
        for modality in priors.windowDays.keys where !Codes.modalities.contains(modality) {
            throw .invalid("priors.windowDays: '\(modality)' is not a DICOM modality code")
        }
    }
}

extension GatewayConfig.Priors {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        windowDays = try c.decodeIfPresent([String: Int].self, forKey: .windowDays) ?? d.windowDays
        defaultWindowDays = try c.decodeIfPresent(Int.self, forKey: .defaultWindowDays) ?? d.defaultWindowDays
    }
}
