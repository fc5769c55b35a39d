import Foundation
import GatewayNet
import ImagingIndex
import PatientTokens

/// How an upload went, line by line where it failed. Saved in the progress file after
/// every acknowledged batch, so a resumed run reports the whole input.
public struct UploadSummary: Codable, Sendable, Equatable {
    public struct Rejection: Codable, Sendable, Equatable {
        public let line: Int
        public let field: String
        public let code: String
        public let message: String
    }

    public var records = 0
    public var accepted = 0
    public var updated = 0
    public var rejected = 0
    public var rejections: [Rejection] = []
    /// Time the upload waited for tokens (tokenizing overlaps the previous batch's upload).
    public var tokenizeSeconds = 0.0
    public var uploadSeconds = 0.0
    public var batchesResumed = 0
}

/// A hospital's study list → tokens → the node, in gzip batches with idempotency keys.
///
/// Crash-safe by construction: a batch's key is derived from the input's digest, the key
/// version and the batch number, and tokens are deterministic, so a batch sent again after
/// a crash is the same request and the node replays its first answer. The progress file
/// (`<input>.progress.json`) records acknowledged batches; a rerun skips them.
public struct UploadJob {
    public let config: AgentConfig
    public let input: String
    public var progressPath: String
    /// Called after each batch with (records done, records total).
    public var onProgress: (@Sendable (Int, Int) -> Void)?

    public init(config: AgentConfig, input: String) {
        self.config = config
        self.input = input
        progressPath = input + ".progress.json"
    }

    struct Progress: Codable {
        let inputDigest: String
        let keyVersion: Int
        let batchSize: Int
        var batchesDone: Int
        var summary: UploadSummary
    }

    public func run() async throws(AgentError) -> UploadSummary {
        guard let bytes = FileManager.default.contents(atPath: input) else { throw .input("cannot read \(input)") }
        let digest = Digest.sha256(Array(bytes)).prefix(12).map { String(format: "%02x", $0) }.joined()
        let rows = try StudyList.read(path: input)
        let tokens = try TokenClient(config: config)
        let node = try config.client(certificate: config.certificate, privateKey: config.privateKey)
        let version = try await tokens.usableVersions().active
        let batchSize = max(1, config.uploadBatch ?? 1000)

        var progress = Progress(inputDigest: digest, keyVersion: version, batchSize: batchSize, batchesDone: 0,
                                summary: UploadSummary())
        if let data = FileManager.default.contents(atPath: progressPath),
           let saved = try? JSONDecoder().decode(Progress.self, from: data) {
            guard saved.inputDigest == digest else {
                throw .input("\(progressPath) belongs to another version of the input; delete it to start over")
            }
            if saved.keyVersion == version && saved.batchSize == batchSize {
                progress = saved
                progress.summary.batchesResumed = saved.batchesDone
            }
        }
        var valid: [StudyRow] = []
        var local: [UploadSummary.Rejection] = []
        for row in rows {
            switch row.identity {
            case .success: valid.append(row)
            case .failure(let why):
                local.append(.init(line: row.line, field: "identity", code: "invalid-identifier", message: why.description))
            }
        }
        if progress.batchesDone == 0 {
            progress.summary.records = rows.count
            progress.summary.rejected = local.count
            progress.summary.rejections = local
        }
        let batches = stride(from: 0, to: valid.count, by: batchSize).map { Array(valid[$0..<min($0 + batchSize, valid.count)]) }
        onProgress?(min(progress.batchesDone * batchSize, valid.count), valid.count)
        // Batch b + 1 is tokenized while batch b uploads: the two use different resources
        // (this machine's and the service's CPU, the node's disk).
        var nextTokens = progress.batchesDone < batches.count
            ? Self.tokenize(batches[progress.batchesDone], with: tokens, version: version) : nil
        for b in progress.batchesDone..<batches.count {
            let batch = batches[b]
            let started = ContinuousClock.now
            let minted = try await Self.wait(nextTokens!)
            let tokenized = ContinuousClock.now
            nextTokens = b + 1 < batches.count ? Self.tokenize(batches[b + 1], with: tokens, version: version) : nil
            var body = ""
            for row in batch {
                var fields = row.fields
                fields["patientToken"] = .string(minted[try! row.identity.get()]!.description)
                body += Self.json(fields) + "\n"
            }
            let key = "agent-\(digest)-v\(version)-b\(batchSize)-\(b)"
            let answer = try await send(Gzip.compress(Array(body.utf8)), key: key, node: node)
            for result in answer.results {
                let line = batch[result.index].line
                switch result.status {
                case "accepted": progress.summary.accepted += 1
                case "updated": progress.summary.updated += 1
                default:
                    progress.summary.rejected += 1
                    for e in result.errors ?? [] {
                        progress.summary.rejections.append(.init(line: line, field: e.field, code: e.code, message: e.message))
                    }
                }
            }
            progress.summary.tokenizeSeconds += Self.seconds(tokenized - started)
            progress.summary.uploadSeconds += Self.seconds(.now - tokenized)
            progress.batchesDone = b + 1
            try save(progress)
            onProgress?(min((b + 1) * batchSize, valid.count), valid.count)
        }
        return progress.summary
    }

    /// Tokens for a batch's distinct identifiers (a patient's studies share one).
    static func tokenize(_ batch: [StudyRow], with client: TokenClient,
                         version: Int) -> Task<[TokenInput: PatientToken], any Error> {
        let distinct = Array(Set(batch.map { try! $0.identity.get() }))
        return Task {
            let tokens = try await client.tokenize(distinct, version: version)
            return Dictionary(uniqueKeysWithValues: zip(distinct, tokens))
        }
    }

    static func wait(_ task: Task<[TokenInput: PatientToken], any Error>) async throws(AgentError) -> [TokenInput: PatientToken] {
        do {
            return try await task.value
        } catch let error as AgentError {
            throw error
        } catch {
            throw .network("\(error)")
        }
    }

    struct Answer: Decodable {
        struct Result: Decodable {
            let index: Int
            let status: String
            let errors: [FieldError]?
        }
        let results: [Result]
    }

    /// One batch, retried on network failures, 429 and 5xx with exponential backoff and
    /// jitter; the idempotency key makes every retry safe.
    private func send(_ gzipped: [UInt8], key: String, node: HTTPClient) async throws(AgentError) -> Answer {
        let request = HTTPRequest(method: "POST", target: "/v1/index/studies", headers: HTTPHeaders([
            ("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip"), ("Idempotency-Key", key),
        ]), body: gzipped)
        var lastError = AgentError.network("no attempt made")
        for attempt in 0..<6 {
            if attempt > 0 {
                let delay = Double(1 << min(attempt, 5)) * 0.25 * Double.random(in: 0.5...1.5)
                try? await Task.sleep(for: .seconds(delay))
            }
            let response: HTTPResponse
            do {
                response = try await node.execute(request, url: config.node + "/v1/index/studies")
            } catch {
                lastError = .network("\(config.node): \(error)")
                continue
            }
            if response.status == 429 || response.status >= 500 {
                lastError = AgentError.from(response)
                continue
            }
            guard response.status == 200 || response.status == 202 else { throw AgentError.from(response) }
            guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(response.body)) else {
                throw .network("the node's upload answer is not the documented JSON")
            }
            return answer
        }
        throw lastError
    }

    private func save(_ progress: Progress) throws(AgentError) {
        do {
            let data = try JSONEncoder().encode(progress)
            try data.write(to: URL(fileURLWithPath: progressPath), options: .atomic)
        } catch {
            throw .input("cannot write \(progressPath): \(error)")
        }
    }

    /// Sorted keys: a batch sent again after a crash must be byte-identical, or the node
    /// refuses its idempotency key as reused for a different request.
    static func json(_ fields: [String: JSONValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(fields)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
