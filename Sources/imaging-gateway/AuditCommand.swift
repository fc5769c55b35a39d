import ArgumentParser
import AuditLog
import Foundation
import GatewayServer
import IndexStore

/// `imaging-gateway audit …`: check the log, export it.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify the audit log against its signed checkpoints; export it as FHIR AuditEvent lines.",
        subcommands: [Verify.self, Export.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the tree from storage, check every checkpoint's signature and consistency.",
            discussion: "Exits 1 and names the first leaf or checkpoint that does not hold. Prefer --public-key "
                + "from a copy kept away from the node: a key read from the node proves less. Beside a running node "
                + "it reads the log as committed so far, without writing; with the node stopped it first finishes "
                + "an audit commit a crash interrupted.")
        @OptionGroup var location: NodeLocation
        @Option(help: "The audit public key (PEM); default: derived from the node's audit key.") var publicKey: String?

        func run() async throws {
            let cfg = try location.resolved()
            let pem: String
            if let publicKey {
                guard let text = try? String(contentsOfFile: publicKey, encoding: .utf8) else {
                    throw ValidationError("cannot read \(publicKey)")
                }
                pem = text
            } else {
                guard FileManager.default.fileExists(atPath: cfg.auditKeyFile) else {
                    throw ValidationError("no audit key at \(cfg.auditKeyFile); pass --public-key")
                }
                pem = try CheckpointSigner(keyPath: cfg.auditKeyFile).publicKeyPEM
            }
            // Checkpoints first: a running node may append and sign meanwhile, and every
            // checkpoint read before the events covers a prefix of them.
            let report = try await location.withAuditLog(cfg) { log in
                let checkpoints = try await log.checkpoints()
                return AuditVerifier.verify(events: try await log.events(from: 0, limit: Int.max),
                                            checkpoints: checkpoints, publicKeyPEM: pem)
            }
            if let finding = report.finding {
                print("FAILED: \(finding)")
                throw ExitCode(1)
            }
            print("ok: \(report.events) events, \(report.checkpoints) checkpoints verified")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the events of a UTC day range as FHIR R4 AuditEvent resources, one JSON object per line.",
            discussion: "Runs beside a running node or with it stopped, as `audit verify`.")
        @OptionGroup var location: NodeLocation
        @Option(help: "First day, YYYY-MM-DD (UTC).") var from: String
        @Option(help: "Last day, YYYY-MM-DD (UTC); default: from.") var to: String?
        @Option(help: "Output file (default: standard output).") var output: String?

        func run() async throws {
            let cfg = try location.resolved()
            let last = to ?? from
            let decoder = JSONDecoder()
            // The output is opened (and emptied) only once the log is open: a refused
            // export leaves an earlier file where it was.
            let written = try await location.withAuditLog(cfg) { log in
                let out: FileHandle
                if let output {
                    guard FileManager.default.createFile(atPath: output, contents: nil),
                          let handle = FileHandle(forWritingAtPath: output) else { throw ValidationError("cannot write \(output)") }
                    out = handle
                } else {
                    out = FileHandle.standardOutput
                }
                var next = 0, written = 0
                while true {
                    let page = try await log.events(from: next, limit: 10_000)
                    guard let end = page.last else { break }
                    next = end.index + 1
                    var lines = Data()
                    for stored in page {
                        guard let event = try? decoder.decode(AuditEvent.self, from: Data(stored.text.utf8)),
                              event.day >= from, event.day <= last else { continue }
                        let resource = event.fhirAuditEvent(observer: "imaging-gateway/\(cfg.region)")
                        lines += try JSONSerialization.data(withJSONObject: resource, options: [.sortedKeys, .withoutEscapingSlashes])
                        lines += Data("\n".utf8)
                        written += 1
                    }
                    out.write(lines)
                }
                return written
            }
            if output != nil { print("wrote \(written) AuditEvent resources") }
        }
    }
}
