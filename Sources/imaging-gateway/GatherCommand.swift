import ArgumentParser
import Foundation

/// `imaging-gateway gather …`: the regional node's outbox to the national node.
struct Gather: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue studies for the national node again.",
        subcommands: [Requeue.self])

    struct Requeue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue every study of one storage unit for the national node again.",
            discussion: """
                For a national node that lost studies (restored from an older backup, say): an upload
                of a study exactly as stored queues nothing, so resending an index does not refill it.
                The national node takes the records as uploads, so those it holds are unchanged there.
                Run it with the node stopped (it refuses while the node runs); the node sends what was
                queued once it starts.
                """)
        @OptionGroup var location: NodeLocation
        @Option(help: "The storage unit (its unified social credit code) whose studies to queue.") var storageUnit: String

        func run() async throws {
            let cfg = try location.resolved()
            guard cfg.federation.gatherTo != nil else {
                throw ValidationError("this node gathers to no national node (federation.gatherTo is not set)")
            }
            let queued = try await location.withStoreExclusively(cfg, gathers: true) { store in
                try await store.requeue(storageUnit: storageUnit)
            }
            print("queued \(queued) studies of \(storageUnit) for the national node")
        }
    }
}
