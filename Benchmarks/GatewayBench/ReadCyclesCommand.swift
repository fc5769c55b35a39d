import ArgumentParser
import BenchCore
import Foundation
import GatewayNet

struct ReadCyclesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reads",
        abstract: "Full read cycles per second: create → AI stage → claim (reads/next) → complete.",
        discussion: """
            The node's studies 0..<--studies must be seeded (gateway-bench seed) and its AI stage must run
            (reads.aiStage node, the stub engine). Clinic and reader certificates come from one folder that
            holds ROLE.pem and ROLE-key.pem (a node's dev-certs).
            """)

    @Argument(help: "Base URL of the node.") var url: String
    @Option(help: "Folder with ca.pem, clinic.pem, reader.pem and their keys.") var certs: String
    @Option(help: "Concurrent readers.") var readers = 8
    @Option(help: "Concurrent creating clinics.") var creators = 4
    @Option(help: "Open workitems at most; creation waits beyond it.") var backlog = 2_000
    @Option(help: "Seeded studies to reference.") var studies = 1_000
    @Option(help: "Warm-up seconds, not measured.") var warmup: Double = 2
    @Option(help: "Seconds measured.") var duration: Double = 10
    @Option(help: "Write the figures as JSON here too.") var out: String?

    func run() throws {
        guard let endpoint = HTTPEndpoint(url) else { throw ValidationError("\(url) is not an http(s) URL") }
        func client(_ role: String) throws -> HTTPClient {
            let tls = try TLSContext(configuration: TLSConfiguration(certificateChainPath: "\(certs)/\(role).pem",
                                                                     privateKeyPath: "\(certs)/\(role)-key.pem",
                                                                     trustedCAPath: "\(certs)/ca.pem"), server: false)
            return HTTPClient(configuration: HTTPClientConfiguration(tls: tls))
        }
        var settings = ReadCycles.Settings()
        settings.readers = readers
        settings.creators = creators
        settings.backlog = backlog
        settings.studies = studies
        settings.warmup = warmup
        settings.duration = duration
        let o = ReadCycles.run(clinic: try client("clinic"), reader: try client("reader"), endpoint: endpoint, settings: settings)
        let line = String(format: "read cycles: %d in %.1f s = %.0f cycles/s with %d readers; reads/next p50 %.2f ms p99 %.2f ms; "
                          + "create p99 %.2f ms; complete p99 %.2f ms; empty nexts %d; errors %d",
                          o.cycles, o.seconds, o.cyclesPerSecond, readers, o.next.p50, o.next.p99, o.create.p99, o.complete.p99,
                          o.emptyNexts, o.errors)
        print(line)
        if let out {
            let json = String(format: "{\"cyclesPerSecond\":%.1f,\"cycles\":%d,\"seconds\":%.2f,\"readers\":%d,\"nextP50Ms\":%.3f,"
                              + "\"nextP99Ms\":%.3f,\"createP99Ms\":%.3f,\"completeP99Ms\":%.3f,\"emptyNexts\":%d,\"errors\":%d}\n",
                              o.cyclesPerSecond, o.cycles, o.seconds, readers, o.next.p50, o.next.p99, o.create.p99,
                              o.complete.p99, o.emptyNexts, o.errors)
            try Data(json.utf8).write(to: URL(fileURLWithPath: out))
        }
        if o.errors > 0 { throw ExitCode(1) }
    }
}
