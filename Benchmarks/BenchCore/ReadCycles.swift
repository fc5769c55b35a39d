import Foundation
import GatewayNet
import Synchronization

/// Full read cycles against a node: clinics create workitems for seeded studies, the
/// node's AI stage triages them, `readers` claim with `POST /v1/reads/next` and complete
/// with `PUT …/state`. Creation stops while `backlog` items are open, so the figure is
/// the rate the whole cycle sustains, not how fast a queue can be filled. Every step the
/// node acknowledges is durable; nothing here changes that.
public enum ReadCycles {
    public struct Settings: Sendable {
        public var readers = 8
        public var creators = 4
        public var backlog = 2_000
        /// Studies 0..<studies were seeded (`gateway-bench seed`); workitems cycle over them.
        public var studies = 1_000
        public var warmup: Double = 2
        public var duration: Double = 10

        public init() {}
    }

    public struct Outcome: Sendable {
        public let cycles: Int
        public let seconds: Double
        public var cyclesPerSecond: Double { seconds > 0 ? Double(cycles) / seconds : 0 }
        public let next: StageResult.Latency
        public let create: StageResult.Latency
        public let complete: StageResult.Latency
        /// `reads/next` answers of 204: a reader found the ready set empty.
        public let emptyNexts: Int
        public let errors: Int
    }

    public static func run(clinic: HTTPClient, reader: HTTPClient, endpoint: HTTPEndpoint, settings: Settings) -> Outcome {
        let measuring = Atomic<Bool>(false), stopping = Atomic<Bool>(false)
        let open = Atomic<Int>(0), created = Atomic<Int>(0), cycles = Atomic<Int>(0), empty = Atomic<Int>(0), errors = Atomic<Int>(0)
        let next = Recorder(), create = Recorder(), complete = Recorder()
        let dicom = HTTPHeaders([("Content-Type", "application/dicom+json")])

        @Sendable func timed(_ client: HTTPClient, _ request: HTTPRequest, into recorder: Recorder,
                             _ done: @escaping @Sendable (HTTPResponse?) -> Void) {
            let start = ContinuousClock.now
            client.execute(request, at: endpoint, deadline: .now + .seconds(30)) { result in
                if measuring.load(ordering: .relaxed) {
                    recorder.record(micros: UInt64(max(0, (ContinuousClock.now - start).seconds * 1e6)), outcome: result)
                }
                guard case .success(let r) = result, r.status < 300 else {
                    errors.add(1, ordering: .relaxed)
                    return done(nil)
                }
                done(r)
            }
        }

        @Sendable func createOne() {
            guard !stopping.load(ordering: .relaxed) else { return }
            guard open.load(ordering: .relaxed) < settings.backlog else {
                return DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(1)) { createOne() }
            }
            let s = created.add(1, ordering: .relaxed).oldValue % settings.studies
            let u = s % SyntheticStudies.storageUnitCount
            let body = "{\"00741200\":{\"vr\":\"CS\",\"Value\":[\"\(["HIGH", "MEDIUM", "LOW"][s % 3])\"]},"
                + "\"00404021\":{\"vr\":\"SQ\",\"Value\":[{\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.156.600.\(u).\(s)\"]},"
                + "\"00080082\":{\"vr\":\"SQ\",\"Value\":[{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"\(SyntheticStudies.storageUnit(u))\"]}}]}}]}}"
            open.add(1, ordering: .relaxed)
            timed(clinic, HTTPRequest(method: "POST", target: "/dicomweb/workitems", headers: dicom, body: Array(body.utf8)),
                  into: create) { response in
                if response == nil { open.subtract(1, ordering: .relaxed) }
                createOne()
            }
        }

        @Sendable func readOne() {
            guard !stopping.load(ordering: .relaxed) else { return }
            timed(reader, HTTPRequest(method: "POST", target: "/v1/reads/next"), into: next) { response in
                guard let response, response.status == 200, let held = Held(response.body) else {
                    if response?.status == 204 { empty.add(1, ordering: .relaxed) }
                    return DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(1)) { readOne() }
                }
                let body = "{\"00741000\":{\"vr\":\"CS\",\"Value\":[\"COMPLETED\"]},\"00081195\":{\"vr\":\"UI\",\"Value\":[\"\(held.transactionUID)\"]}}"
                timed(reader, HTTPRequest(method: "PUT", target: "/dicomweb/workitems/\(held.uid)/state", headers: dicom,
                                          body: Array(body.utf8)), into: complete) { done in
                    if done != nil {
                        open.subtract(1, ordering: .relaxed)
                        if measuring.load(ordering: .relaxed) { cycles.add(1, ordering: .relaxed) }
                    }
                    readOne()
                }
            }
        }

        for _ in 0..<settings.creators { createOne() }
        for _ in 0..<settings.readers { readOne() }
        Thread.sleep(forTimeInterval: settings.warmup)
        let emptyBefore = empty.load(ordering: .relaxed), errorsBefore = errors.load(ordering: .relaxed)
        measuring.store(true, ordering: .relaxed)
        let start = ContinuousClock.now
        Thread.sleep(forTimeInterval: settings.duration)
        measuring.store(false, ordering: .relaxed)
        let seconds = (ContinuousClock.now - start).seconds
        stopping.store(true, ordering: .relaxed)
        Thread.sleep(forTimeInterval: 0.5)
        return Outcome(cycles: cycles.load(ordering: .relaxed), seconds: seconds, next: next.histogram.latencyMs,
                       create: create.histogram.latencyMs, complete: complete.histogram.latencyMs,
                       emptyNexts: empty.load(ordering: .relaxed) - emptyBefore, errors: errors.load(ordering: .relaxed) - errorsBefore)
    }

    /// The claim's UID and Transaction UID from the node's native workitem JSON.
    private struct Held {
        let uid: String
        let transactionUID: String

        init?(_ body: [UInt8]) {
            guard let o = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                  let uid = o["uid"] as? String, let txn = o["transactionUID"] as? String else { return nil }
            self.uid = uid
            transactionUID = txn
        }
    }
}
