import Foundation
import GatewayNet
import JSONText

/// A model served by KServe or any server of the Open Inference Protocol (v2):
/// `connect` checks readiness and the model's metadata (an FP32 input taking the
/// feature vector, an FP32 output for the urgency) once; `infer` then posts the features.
/// 4xx answers are the input's fault and not retried; 5xx and connection failures are
/// retried with backoff and jitter while the deadline allows; a breaker opens after
/// repeated failures; at most `maxConcurrency` requests are in flight.
public final class KServeEngine: InferenceEngine {
    public struct Settings: Sendable, Equatable {
        /// Base URL of the server, `http://host:port` or https.
        public var url: String
        public var model: String
        public var maxConcurrency = 8
        public var retries = 2
        public var backoffMs = 50
        public var breakerThreshold = 5
        public var breakerCooldownMs = 5_000

        public init(url: String, model: String) {
            self.url = url
            self.model = model
        }
    }

    public let descriptor: ModelDescriptor
    public let settings: Settings
    private let client: HTTPClient
    private let inputName: String
    private let outputName: String
    private let breaker: CircuitBreaker
    private let slots: Slots

    /// Connects to the server: it must be ready, and the model's metadata must fit.
    public static func connect(_ settings: Settings, tls: TLSContext? = nil,
                               timeout: Duration = .seconds(5)) async throws(InferenceError) -> KServeEngine {
        let client = HTTPClient(configuration: HTTPClientConfiguration(tls: tls))
        let due = ContinuousClock.now + timeout
        let base = baseURL(settings.url)
        func get(_ path: String) async throws(InferenceError) -> HTTPResponse {
            do {
                return try await client.execute(HTTPRequest(method: "GET", target: path), url: base + path, deadline: due)
            } catch {
                throw .unavailable("\(base)\(path): \(error)")
            }
        }
        for path in ["/v2/health/ready", "/v2/models/\(settings.model)/ready"] {
            let r = try await get(path)
            guard r.status == 200 else { throw .unavailable("\(base)\(path) answered \(r.status), not ready") }
        }
        let r = try await get("/v2/models/\(settings.model)")
        guard r.status == 200, let meta = try? JSONDecoder().decode(Metadata.self, from: Data(r.body)) else {
            throw .unavailable("\(base)/v2/models/\(settings.model) gave no model metadata")
        }
        let n = InferenceInput.featureCount
        guard let input = meta.inputs.first(where: { $0.datatype == "FP32" && $0.shape.count == 2 && [-1, 1].contains($0.shape[0])
            && [-1, n].contains($0.shape[1]) }) else {
            throw .unavailable("model \(settings.model) has no FP32 input of shape [-1, \(n)] for the study features")
        }
        guard let output = meta.outputs.first(where: { $0.datatype == "FP32" }) else {
            throw .unavailable("model \(settings.model) has no FP32 output for the urgency")
        }
        return KServeEngine(settings: settings, client: client, version: meta.versions?.last ?? "unversioned",
                            input: input.name, output: output.name)
    }

    private init(settings: Settings, client: HTTPClient, version: String, input: String, output: String) {
        self.settings = settings
        self.client = client
        descriptor = ModelDescriptor(name: settings.model, version: version, engine: "kserve-v2")
        inputName = input
        outputName = output
        breaker = CircuitBreaker(threshold: settings.breakerThreshold, cooldown: .milliseconds(settings.breakerCooldownMs))
        slots = Slots(settings.maxConcurrency)
    }

    public func health() async -> EngineHealth {
        if breaker.isOpen { return EngineHealth(ready: false, detail: "circuit open after repeated failures") }
        let path = "/v2/models/\(settings.model)/ready"
        let r = try? await client.execute(HTTPRequest(method: "GET", target: path), url: base + path,
                                          deadline: .now + .seconds(2))
        return r?.status == 200 ? EngineHealth(ready: true, detail: "\(base) model \(settings.model) ready")
                                : EngineHealth(ready: false, detail: "\(base) model \(settings.model) not ready")
    }

    public func infer(_ input: InferenceInput, deadline: ContinuousClock.Instant) async throws(InferenceError) -> InferenceOutput {
        guard ContinuousClock.now < deadline, await slots.acquire(by: deadline) else { throw .timeout }
        defer { Task { await slots.release() } }
        let features = input.features.map { String($0) }.joined(separator: ",")
        let body = "{\"id\":\(jsonString(input.studyInstanceUID)),\"inputs\":[{\"name\":\(jsonString(inputName)),"
            + "\"shape\":[1,\(InferenceInput.featureCount)],\"datatype\":\"FP32\",\"data\":[\(features)]}],"
            + "\"outputs\":[{\"name\":\(jsonString(outputName))}]}"
        let path = "/v2/models/\(settings.model)/infer"
        let request = HTTPRequest(method: "POST", target: path, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                  body: Array(body.utf8))
        var attempt = 0
        while true {
            guard breaker.allow() else { throw .unavailable("circuit open after repeated failures of \(base)") }
            let failure: InferenceError
            do {
                let r = try await client.execute(request, url: base + path, deadline: deadline)
                switch r.status {
                case 200:
                    breaker.record(success: true)
                    return try output(r.body)
                case 400..<500:
                    breaker.record(success: true)
                    throw InferenceError.invalidInput("the model server refused the input (\(r.status))")
                default:
                    breaker.record(success: false)
                    failure = .transient("the model server answered \(r.status)")
                }
            } catch let error as InferenceError {
                throw error
            } catch let error as HTTPClientError {
                breaker.record(success: false)
                if error == .timedOut { throw .timeout }
                failure = .transient("\(base): \(error)")
            } catch {
                throw .transient("\(error)")
            }
            attempt += 1
            guard attempt <= settings.retries else { throw failure }
            let pause = Duration.milliseconds(Double(settings.backoffMs << (attempt - 1)) * Double.random(in: 0.5...1.5))
            guard ContinuousClock.now + pause < deadline else { throw failure }
            try? await Task.sleep(for: pause)
        }
    }

    private var base: String { Self.baseURL(settings.url) }

    private static func baseURL(_ url: String) -> String { url.hasSuffix("/") ? String(url.dropLast()) : url }

    private func output(_ body: [UInt8]) throws(InferenceError) -> InferenceOutput {
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(body)),
              let out = answer.outputs.first(where: { $0.name == outputName }), let urgency = out.data.first,
              (0...1).contains(urgency)
        else { throw .transient("the model's answer has no urgency in 0...1 under \(outputName)") }
        return InferenceOutput(urgency: urgency, result: "{\"model\":\(jsonString(descriptor.name)),"
            + "\"version\":\(jsonString(descriptor.version)),\"urgency\":\((urgency * 1000).rounded() / 1000)}")
    }

    private struct Tensor: Decodable {
        let name: String
        let datatype: String
        let shape: [Int]
    }

    private struct Metadata: Decodable {
        let versions: [String]?
        let inputs: [Tensor]
        let outputs: [Tensor]
    }

    private struct Answer: Decodable {
        struct Output: Decodable {
            let name: String
            let data: [Double]
        }
        let outputs: [Output]
    }
}

/// A counting semaphore with deadlines, for the bound on requests in flight.
actor Slots {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) {
        free = max(1, count)
    }

    /// Waits for a slot; false (holding none) when `deadline` passed first.
    func acquire(by deadline: ContinuousClock.Instant) async -> Bool {
        if free > 0 {
            free -= 1
            return true
        }
        await withCheckedContinuation { waiting.append($0) }
        if ContinuousClock.now < deadline { return true }
        release()
        return false
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
