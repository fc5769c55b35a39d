import ArgumentParser
import CommandExit
import Foundation
import GatewayAgent
import ImagingIndex
import PatientTokens

@main
struct GatewayAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway-agent",
        abstract: "The hospital and clinic side of ImagingGateway: identifiers are tokenized here and never leave.",
        subcommands: [Init.self, Tokenize.self, Upload.self, Lookup.self, Priors.self, RequestRead.self, Reads.self])

    /// Leaves by `_exit` once the command is done (CommandExit says why).
    static func main() async { await runThenExit() }
}

struct ConfigOption: ParsableArguments {
    @Option(help: "Agent config file (JSON).") var config = "agent.json"

    func load() throws -> AgentConfig {
        do {
            return try AgentConfig.load(path: config)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Errors end the command with their description, never with a stack or an identifier.
func report<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as AgentError {
        FileHandle.standardError.write(Data("gateway-agent: \(error.description)\n".utf8))
        throw ExitCode(2)
    }
}

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an agent config that pins the token service's current public keys.",
        discussion: """
            Trust on first use: the keys are fetched over TLS, checked against the CA, and printed.
            Compare them with `imaging-gateway keys list` on the node before relying on the file.
            """)
    @Option(help: "The node's base URL.") var node: String
    @Option(help: "Client certificate (PEM).") var certificate: String
    @Option(help: "Its private key (PEM).") var privateKey: String
    @Option(help: "The CA of the node's certificate (PEM).") var trustedCA: String
    @Option(help: "Certificate with role token-client, when the main one has another role.") var tokenCertificate: String?
    @Option(help: "Its private key.") var tokenPrivateKey: String?
    @Option(help: "Where to write the config.") var output = "agent.json"

    func run() async throws {
        try await report {
            var config = AgentConfig(node: node, certificate: certificate, privateKey: privateKey, trustedCA: trustedCA,
                                     pinnedKeys: [:])
            config.tokenCertificate = tokenCertificate
            config.tokenPrivateKey = tokenPrivateKey
            config.pinnedKeys = try await TokenKeyFetch.current(config)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(config).write(to: URL(fileURLWithPath: output))
            for (version, key) in config.pinnedKeys.sorted(by: { $0.key < $1.key }) { print("pinned v\(version)\t\(key)") }
            print("wrote \(output)")
        }
    }
}

struct Tokenize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Identifiers in (CSV or NDJSON), tokens out (NDJSON: line and patientToken, or line and error).",
        discussion: "Every token's proof is verified against the pinned key; a batch that fails is refused whole.")
    @OptionGroup var options: ConfigOption
    @Argument(help: "Input file: .csv with a header, or NDJSON.") var input: String
    @Option(help: "Output file (default: standard output).") var output: String?

    func run() async throws {
        let config = try options.load()
        try await report {
            let rows = try StudyList.read(path: input)
            let client = try TokenClient(config: config)
            let version = try await client.usableVersions().active
            let valid = rows.compactMap { row in (try? row.identity.get()).map { (row.line, $0) } }
            let tokens = try await client.tokenize(valid.map(\.1), version: version)
            var byLine: [Int: String] = [:]
            for ((line, _), token) in zip(valid, tokens) { byLine[line] = token.description }
            var out = ""
            for row in rows {
                if let token = byLine[row.line] {
                    out += "{\"line\":\(row.line),\"patientToken\":\"\(token)\"}\n"
                } else if case .failure(let why) = row.identity {
                    out += "{\"line\":\(row.line),\"error\":\"invalid-identifier\",\"message\":\"\(why.description)\"}\n"
                }
            }
            if let output {
                try Data(out.utf8).write(to: URL(fileURLWithPath: output))
            } else {
                FileHandle.standardOutput.write(Data(out.utf8))
            }
        }
    }
}

struct Upload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize a study list locally and upload it in gzip batches; rerun to resume.",
        discussion: "Progress is kept in <input>.progress.json; delete it to upload the same file again from the start.")
    @OptionGroup var options: ConfigOption
    @Argument(help: "Study list: .csv with a header, or NDJSON.") var input: String
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() async throws {
        let config = try options.load()
        try await report {
            var job = UploadJob(config: config, input: input)
            if isatty(STDERR_FILENO) == 1 {
                job.onProgress = { done, total in
                    let width = 30, filled = total == 0 ? width : width * done / total
                    let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
                    FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) records".utf8))
                    if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
                }
            }
            let summary = try await job.run()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(summary), as: UTF8.self))
                return
            }
            print("records \(summary.records): accepted \(summary.accepted), updated \(summary.updated), rejected \(summary.rejected)")
            print(String(format: "time: tokenizing %.1f s, uploading %.1f s", summary.tokenizeSeconds, summary.uploadSeconds))
            if summary.batchesResumed > 0 { print("resumed after \(summary.batchesResumed) acknowledged batches") }
            for r in summary.rejections.prefix(50) { print("  line \(r.line): \(r.field) \(r.code): \(r.message)") }
            if summary.rejections.count > 50 { print("  … \(summary.rejections.count - 50) more (use --json)") }
        }
    }
}

struct Lookup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Find a patient's studies by identifier (tokenized locally).")
    @OptionGroup var options: ConfigOption
    @Option(help: "Resident ID (18 characters or 15 digits).") var residentId: String?
    @Option(help: "26-digit person management code.") var personCode: String?
    @Option(help: "Name, with --birth-date and --sex, when there is no ID (a probable match).") var name: String?
    @Option(help: "Birth date YYYYMMDD.") var birthDate: String?
    @Option(help: "Sex, M or F.") var sex: String?
    @Option(help: "HL7 purpose of use.") var purpose = "TREAT"
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() async throws {
        let config = try options.load()
        var fields: [String: JSONValue] = [:]
        for (key, value) in [("residentId", residentId), ("personCode", personCode), ("name", name),
                             ("birthDate", birthDate), ("sex", sex)] {
            if let value { fields[key] = .string(value) }
        }
        let identity: TokenInput
        switch StudyList.identity(fields) {
        case .success(let i): identity = i
        case .failure(let why): throw ValidationError("identifier: \(why.description)")
        }
        try await report {
            var lookup = PatientLookup(config: config)
            lookup.purpose = purpose
            let studies = try await lookup.studies(of: identity)
            if json {
                print("[" + studies.map(\.jsonText).joined(separator: ",") + "]")
                return
            }
            print("DATE\tMODALITY\tBODY PART\tDESCRIPTION\tINSTITUTION\tREGION\tRETRIEVE")
            for s in studies {
                print([s.studyDate, s.modalitiesInStudy.joined(separator: "\\"), s.bodyPartExamined ?? "",
                       s.studyDescription ?? "", s.institutionName ?? "", s.region, s.retrieveURL].joined(separator: "\t"))
            }
            print("\(studies.count) studies")
        }
    }
}
