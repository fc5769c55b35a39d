import Foundation
import GatewayNet
import ImagingIndex
import PatientTokens

/// The repeat-examination check from the agent: the identifier is tokenized here under
/// every key version the service still accepts, each token is checked, and the priors
/// are merged. The verdict is repeat-candidate when any token's check found a prior.
public struct PriorExamCheck {
    public let config: AgentConfig
    public var purpose = "TREAT"

    public init(config: AgentConfig) {
        self.config = config
    }

    public struct Planned: Sendable {
        public var modality: String
        public var bodyPart: String?
        public var examItem: String?
        public var days: Int?

        public init(modality: String) {
            self.modality = modality
        }
    }

    public struct Prior: Sendable, Decodable {
        public let ageDays: Int
        public let study: StudyRecord
    }

    public struct Answer: Sendable {
        public var verdict: String
        public var windowDays: Int
        public var priors: [Prior]
    }

    private struct Wire: Decodable {
        struct Rule: Decodable { let windowDays: Int }
        let verdict: String
        let rule: Rule
        let priors: [Prior]
    }

    public func run(_ identity: TokenInput, _ planned: Planned) async throws(AgentError) -> Answer {
        let tokens = try TokenClient(config: config)
        let node = try config.client(certificate: config.certificate, privateKey: config.privateKey)
        var answer = Answer(verdict: "none", windowDays: 0, priors: [])
        var seen = Set<String>()
        for version in try await tokens.usableVersions().all {
            let token = try await tokens.tokenize([identity], version: version)[0]
            var target = "/v1/patients/\(token.description)/priors?purpose=\(purpose)&modality=\(planned.modality)"
            if let b = planned.bodyPart { target += "&bodyPart=\(b)" }
            if let e = planned.examItem { target += "&examItem=\(e)" }
            if let d = planned.days { target += "&days=\(d)" }
            let response = try await config.send(HTTPRequest(method: "GET", target: target), with: node)
            guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(response.body)) else {
                throw .network("the node's prior-check answer is not the documented JSON")
            }
            answer.windowDays = wire.rule.windowDays
            if wire.verdict == "repeat-candidate" { answer.verdict = wire.verdict }
            for prior in wire.priors where seen.insert(prior.study.studyInstanceUID + "|" + prior.study.storageUnit).inserted {
                answer.priors.append(prior)
            }
        }
        answer.priors.sort { ($0.ageDays, $0.study.studyInstanceUID) < ($1.ageDays, $1.study.studyInstanceUID) }
        return answer
    }
}
