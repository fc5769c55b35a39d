import ArgumentParser
import Foundation
import GatewayAgent
import ImagingIndex
import PatientTokens

struct RequestRead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request-read",
        abstract: "Ask for a remote read of a study (a UPS-RS workitem); prints the workitem as JSON.",
        discussion: """
            The study must be in the index. Give the patient's resident ID too when the study may be held in another
            region: it is tokenized here and only the token is sent, so the node can find the study there.
            """)
    @OptionGroup var options: ConfigOption
    @Argument(help: "The study's Study Instance UID.") var study: String
    @Option(help: "The storage unit's code, when several hold this Study Instance UID.") var storageUnit: String?
    @Option(help: "HIGH (or STAT), MEDIUM or LOW.") var priority = "MEDIUM"
    @Option(help: "Worklist label, e.g. a subspecialty (neuro, chest).") var label: String?
    @Option(help: "The patient's resident ID, to find the study in other regions.") var residentId: String?

    func run() async throws {
        let config = try options.load()
        var request = ReadClient.Request(studyInstanceUID: study)
        request.storageUnit = storageUnit
        request.priority = priority.uppercased()
        request.label = label
        if let residentId {
            do {
                request.identity = try TokenInput.residentID(residentId)
            } catch {
                throw ValidationError("resident ID: \(error)")
            }
        }
        try await report { print(try await ReadClient(config: config).request(request)) }
    }
}

struct Reads: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A reader's queue: take the next read, keep its lease alive, complete it.",
        subcommands: [Next.self, Heartbeat.self, Complete.self])

    struct Next: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Claim the best next read; prints it as JSON with its transactionUID and lease deadline.",
            discussion: "Exit status 3 when nothing is waiting.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Only work with this worklist label (repeatable).") var label: [String] = []

        func run() async throws {
            let config = try options.load()
            let item = try await report { try await ReadClient(config: config).next(labels: label) }
            guard let item else {
                FileHandle.standardError.write(Data("gateway-agent: no read is waiting\n".utf8))
                throw ExitCode(3)
            }
            print(item)
        }
    }

    struct Heartbeat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Extend the lease on a read you hold.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The workitem UID.") var uid: String
        @Option(help: "The Transaction UID your claim returned.") var transaction: String

        func run() async throws {
            let config = try options.load()
            try await report { print(try await ReadClient(config: config).heartbeat(uid: uid, transactionUID: transaction)) }
        }
    }

    struct Complete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Complete a read you hold, with a reference to the report.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The workitem UID.") var uid: String
        @Option(help: "The Transaction UID your claim returned.") var transaction: String
        @Option(name: .customLong("report"), help: "The report's URL.") var reportURL: String?

        func run() async throws {
            let config = try options.load()
            try await report {
                print(try await ReadClient(config: config).complete(uid: uid, transactionUID: transaction, report: reportURL))
            }
        }
    }
}
