import Synchronization

/// A shared monotonically increasing counter, read and bumped from any thread.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
    func add(_ n: Int) { value.wrappingAdd(n, ordering: .relaxed) }
    var current: Int { value.load(ordering: .relaxed) }
}
