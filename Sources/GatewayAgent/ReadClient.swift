import Foundation
import GatewayNet
import ImagingIndex
import JSONText
import PatientTokens

/// The read queue from the agent: a clinic asks for a read of a study; a reader takes the
/// best next item, keeps its lease alive and completes it. Answers are the node's native
/// workitem JSON (Protocols/reads.md), passed through unchanged.
public struct ReadClient {
    public let config: AgentConfig

    public init(config: AgentConfig) {
        self.config = config
    }

    /// What a clinic asks to be read.
    public struct Request: Sendable {
        public var studyInstanceUID: String
        /// The storage unit's code, when several hold the same Study Instance UID.
        public var storageUnit: String?
        public var priority = "MEDIUM"
        public var label: String?
        /// The patient, tokenized here, so the node can find a study held in another region.
        public var identity: TokenInput?

        public init(studyInstanceUID: String) {
            self.studyInstanceUID = studyInstanceUID
        }
    }

    /// Posts the UPS-RS workitem; the node's native view of it.
    public func request(_ r: Request) async throws(AgentError) -> String {
        guard Codes.isUID(r.studyInstanceUID) else { throw .input("study UID: not a valid DICOM UID") }
        var input = "{\"0020000D\":{\"vr\":\"UI\",\"Value\":[\(jsonString(r.studyInstanceUID))]}"
        if let unit = r.storageUnit {
            input += ",\"00080082\":{\"vr\":\"SQ\",\"Value\":[{\"00080100\":{\"vr\":\"SH\",\"Value\":[\(jsonString(unit))]},"
                + "\"00080102\":{\"vr\":\"SH\",\"Value\":[\"USCC\"]}}]}"
        }
        var body = "{\"00741200\":{\"vr\":\"CS\",\"Value\":[\(jsonString(r.priority))]},\"00404021\":{\"vr\":\"SQ\",\"Value\":[\(input)}]}"
        if let label = r.label { body += ",\"00741202\":{\"vr\":\"LO\",\"Value\":[\(jsonString(label))]}" }
        if let identity = r.identity {
            let tokens = try TokenClient(config: config)
            let token = try await tokens.tokenize([identity], version: try await tokens.usableVersions().active)[0]
            body += ",\"00100020\":{\"vr\":\"LO\",\"Value\":[\(jsonString(token.description))]}"
        }
        let created = try await send("POST", "/dicomweb/workitems", body: body + "}", type: "application/dicom+json", expect: [201])
        guard let uid = Self.firstValue(created, tag: "00080018") else { throw .network("the node's answer names no workitem UID") }
        return try await send("GET", "/v1/reads/\(uid)", expect: [200])
    }

    /// Claims the best next item (for these worklist labels); nil when none is waiting.
    public func next(labels: [String] = []) async throws(AgentError) -> String? {
        let query = labels.isEmpty ? "" : "?label=" + labels.map(percentEncoded).joined(separator: ",")
        let body = try await send("POST", "/v1/reads/next" + query, expect: [200, 204])
        return body.isEmpty ? nil : body
    }

    public func heartbeat(uid: String, transactionUID: String) async throws(AgentError) -> String {
        try await send("POST", "/v1/reads/\(try checked(uid))/heartbeat", body: "{\"transactionUID\":\(jsonString(transactionUID))}",
                       type: "application/json", expect: [200])
    }

    /// Completes the read, with a reference (URL) to the report when there is one.
    public func complete(uid: String, transactionUID: String, report: String?) async throws(AgentError) -> String {
        var body = "{\"00741000\":{\"vr\":\"CS\",\"Value\":[\"COMPLETED\"]},\"00081195\":{\"vr\":\"UI\",\"Value\":[\(jsonString(transactionUID))]}"
        if let report { body += ",\"00404033\":{\"vr\":\"SQ\",\"Value\":[{\"00081190\":{\"vr\":\"UR\",\"Value\":[\(jsonString(report))]}}]}" }
        return try await send("PUT", "/dicomweb/workitems/\(try checked(uid))/state", body: body + "}",
                              type: "application/dicom+json", expect: [200])
    }

    // MARK: parts

    private func checked(_ uid: String) throws(AgentError) -> String {
        guard Codes.isUID(uid) else { throw .input("workitem UID: not a valid DICOM UID") }
        return uid
    }

    private func send(_ method: String, _ target: String, body: String? = nil, type: String? = nil,
                      expect: Set<Int>) async throws(AgentError) -> String {
        let node = try config.client(certificate: config.certificate, privateKey: config.privateKey)
        var request = HTTPRequest(method: method, target: target)
        if let body, let type {
            request.headers.add("Content-Type", type)
            request.body = Array(body.utf8)
        }
        return String(decoding: try await config.send(request, with: node, expect: expect).body, as: UTF8.self)
    }

    private func percentEncoded(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s
    }

    static func firstValue(_ dataset: String, tag: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(dataset.utf8)) as? [String: Any],
              let element = object[tag] as? [String: Any], let values = element["Value"] as? [Any] else { return nil }
        return values.first as? String
    }
}
