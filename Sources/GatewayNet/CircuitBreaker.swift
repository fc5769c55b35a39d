import Synchronization

/// Closed → open after `threshold` failures in a row; open for `cooldown`, then half-open:
/// one caller probes while the others are refused; the probe's outcome closes or reopens.
/// Used by every caller of a remote peer (federation, inference) so that a peer that keeps
/// failing costs a check of a lock, not a timeout per request.
public final class CircuitBreaker: Sendable {
    private struct State {
        var failures = 0
        var openUntil: ContinuousClock.Instant?
        var probing = false
    }

    private let state = Mutex(State())
    private let threshold: Int
    private let cooldown: Duration

    public init(threshold: Int = 3, cooldown: Duration = .seconds(5)) {
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// Whether a call may go out now.
    public func allow() -> Bool {
        state.withLock { s in
            guard let until = s.openUntil else { return true }
            guard ContinuousClock.now >= until, !s.probing else { return false }
            s.probing = true
            return true
        }
    }

    public func record(success: Bool) {
        state.withLock { s in
            s.probing = false
            if success {
                s.failures = 0
                s.openUntil = nil
            } else {
                s.failures += 1
                if s.failures >= threshold { s.openUntil = ContinuousClock.now + cooldown }
            }
        }
    }

    /// Open (refusing) now, not counting a half-open probe's turn.
    public var isOpen: Bool {
        state.withLock { s in s.openUntil.map { ContinuousClock.now < $0 } ?? false }
    }
}
