import Foundation
import GatewayNet
import ImagingIndex
import PatientTokens

/// A clinic finds a patient's studies by identifier: the identifier is tokenized here
/// under every key version the service still accepts (during a rotation's overlap a
/// study may carry either), each token is looked up, and the answers are merged.
public struct PatientLookup {
    public let config: AgentConfig
    public var purpose = "TREAT"

    public init(config: AgentConfig) {
        self.config = config
    }

    public func studies(of identity: TokenInput) async throws(AgentError) -> [StudyRecord] {
        let tokens = try TokenClient(config: config)
        let node = try config.client(certificate: config.certificate, privateKey: config.privateKey)
        var found: [String: StudyRecord] = [:]
        for version in try await tokens.usableVersions().all {
            let token = try await tokens.tokenize([identity], version: version)[0]
            for study in try await query(token, node: node) {
                found[study.studyInstanceUID + "|" + study.storageUnit] = study
            }
        }
        return found.values.sorted {
            ($0.studyDate, $0.studyTime ?? "", $0.studyInstanceUID) > ($1.studyDate, $1.studyTime ?? "", $1.studyInstanceUID)
        }
    }

    private struct Page: Decodable {
        let studies: [StudyRecord]
    }

    private func query(_ token: PatientToken, node: HTTPClient) async throws(AgentError) -> [StudyRecord] {
        var studies: [StudyRecord] = []
        let pageSize = 1000
        while true {
            let target = "/v1/patients/\(token.description)/studies?purpose=\(purpose)&limit=\(pageSize)&offset=\(studies.count)"
            let response = try await config.send(HTTPRequest(method: "GET", target: target), with: node)
            guard let page = try? JSONDecoder().decode(Page.self, from: Data(response.body)) else {
                throw .network("the node's lookup answer is not the documented JSON")
            }
            studies += page.studies
            if page.studies.count < pageSize { return studies }
        }
    }
}
