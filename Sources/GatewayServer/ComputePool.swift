import Foundation

/// Threads for CPU-bound request work (token evaluation: about 10 ms for 100 elements).
/// Such work must not run on an event loop, and on Swift's cooperative pool it was seen
/// to run one job at a time on a 2-core machine, leaving a core idle; a plain pool of
/// one thread per core uses them all. Jobs run in arrival order.
final class ComputePool: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false

    init(threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        for i in 0..<max(1, threads) {
            let thread = Thread { self.work() }
            thread.name = "compute-\(i)"
            thread.start()
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
            condition.lock()
            jobs.append { c.resume(with: Result { try body() }) }
            condition.signal()
            condition.unlock()
        }
    }

    /// Lets the threads finish the queued jobs and exit.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
