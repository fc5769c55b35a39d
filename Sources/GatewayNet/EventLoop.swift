import CGatewayShims
import Dispatch
import Foundation
import HeapModule
import Synchronization

/// What an event loop calls back into: a connection, a listener or a client socket.
/// Every call arrives on the loop's thread, so an implementation needs no locks
/// for state it touches only from these calls.
protocol EventHandler: AnyObject {
    /// The fd became readable, writable, or failed. With edge triggering a handler must
    /// consume readiness fully (read or write until EAGAIN) or remember that it did not.
    func ready(readable: Bool, writable: Bool, failed: Bool)
    /// Called about four times a second with a monotonic clock in nanoseconds, so that a
    /// handler can enforce its deadlines without a timer of its own.
    func tick(now: UInt64)
}

/// One readiness loop, in the manner of redis's ae.c: a thread of its own blocked in
/// epoll_wait, an eventfd doorbell for work posted from other threads, a tick four
/// times a second for coarse deadlines and timed work for exact ones. Everything a loop
/// owns is touched only on its thread.
///
/// Why not Dispatch read sources: on Linux libdispatch's manager thread hands every
/// source event to a worker thread, so each ready socket costs a context switch
/// (SERVER.md measured 76 k switches/s at 61 k req/s). Here one epoll_wait returns every
/// socket that became ready meanwhile and the same thread serves them all, with no
/// handoff between the thread that learns of readiness and the one that acts on it.
/// Dispatch still serves the rest of the process (signals, async handlers' tasks).
///
/// Hazard: handlers are keyed by a token that is never reused, not by fd; an fd number
/// comes back after close, and a stale event for it must not reach the new owner.
/// Token 0 is the doorbell.
public final class EventLoop: @unchecked Sendable {
    private let epfd: Int32
    private let doorbell: Int32
    /// Work from other threads; `closed` once the loop has stopped and let its doorbell go.
    private let posted = Mutex<(work: [@Sendable () -> Void], closed: Bool)>(([], false))
    private let rung = Atomic<Bool>(false)
    private var handlers: [UInt64: EventHandler] = [:]
    /// Work queued from the loop's own thread, run after the current batch of events.
    private var soon: [() -> Void] = []
    /// Work that may wait behind the events, `eventualPerPass` a pass (see `eventually`).
    private var later: [() -> Void] = []
    private static let eventualPerPass = 8
    private var nextToken: UInt64 = 1
    private var events = [gw_event](repeating: gw_event(), count: 256)
    private var nextTick: UInt64 = 0
    /// Work due at a time (client request deadlines, which the 250 ms tick would miss by
    /// up to a tick): one entry per request until its deadline, answered or not (an entry
    /// holds its task weakly, so about 100 bytes), so a few hundred thousand under the
    /// benchmark's open-loop load with 10 s deadlines. A heap, because this was once an array scanned on every pass and
    /// every wake ticked every handler, each tick scanning its pool's waiting requests:
    /// at 20 000 requests waiting the benchmark client spent its core on that scan and
    /// an overload of a few seconds never ended (RESULTS.md, the 75 % sweep stage).
    private var timers = Heap<TimedWork>()
    private var timerSequence: UInt64 = 0
    private let threadID = Atomic<UInt>(0)
    /// Set by `stopWhenIdle`; the loop ends when it also watches nothing.
    private var stopping = false
    private static let tickInterval: UInt64 = 250_000_000
    /// Read scratch shared by every connection of this loop: a connection keeps only
    /// the bytes it could not consume yet, so idle connections hold no buffer.
    let readBuffer: UnsafeMutableRawBufferPointer
    /// The HTTP Date header, rebuilt by the tick rather than per response.
    private(set) var httpDate: [UInt8] = []

    /// `nice` above 0 lowers the thread's priority (HTTPServer's handshake loop).
    init(name: String, nice: Int32 = 0) {
        epfd = gw_epoll_create()
        precondition(epfd >= 0, "epoll_create1 failed: errno \(errno)")
        doorbell = gw_eventfd_create(epfd)
        precondition(doorbell >= 0, "eventfd failed: errno \(errno)")
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        httpDate = Self.formatDate()
        // The thread keeps its loop alive until the loop stops, whoever else lets go of it.
        // Foundation's Thread.name does not reach the kernel on Linux: without this, every
        // loop showed in top -H under the name of the Dispatch thread that made it.
        let thread = Thread {
            _ = gw_name_thread(name)
            _ = gw_lower_thread_priority(nice)
            self.run()
        }
        thread.start()
    }

    /// Runs `work` on this loop's thread, after whatever the loop is doing now; never,
    /// once the loop has stopped. The doorbell rings only when it is not already ringing,
    /// so a burst of posts costs one eventfd write and one wakeup. It rings outside the
    /// lock: Swift's Mutex is a priority-inheritance futex, which does not lift a nice
    /// thread (the handshake loop) that the ring's wakeup preempted while holding it, and
    /// the woken loop then slept on the lock for a scheduler tick (4 ms, seen). The
    /// doorbell closes in deinit, so a caller, who holds the loop, never rings a closed fd.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        let accepted = posted.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.work.append(work)
            return true
        }
        if accepted, !rung.exchange(true, ordering: .acquiringAndReleasing) { gw_eventfd_ring(doorbell) }
    }

    /// Ends the loop's thread once nothing is watched any more (its owner closes the
    /// connections, or lets their requests finish first); the epoll fd, the doorbell and
    /// the read buffer go when the last reference does. Without it a loop lives as long
    /// as the process: fine for a server's loops, a leak of a thread and two descriptors
    /// for each short-lived client that made its own.
    public func stopWhenIdle() {
        execute { self.stopping = true }
    }

    /// Watches `fd` for both directions, edge-triggered, for the handler's lifetime.
    /// Interest never changes afterwards, so no epoll_ctl is paid per request.
    /// Must run on the loop's thread.
    func add(fd: Int32, handler: EventHandler) -> UInt64? {
        let token = nextToken
        nextToken += 1
        guard gw_epoll_add(epfd, fd, token, 1) == 0 else { return nil }
        handlers[token] = handler
        return token
    }

    /// Stops watching; the caller closes the fd afterwards. Events already fetched for
    /// this token in the current pass are dropped by the lookup in `poll`.
    func remove(fd: Int32, token: UInt64) {
        _ = gw_epoll_del(epfd, fd)
        handlers[token] = nil
    }

    /// Visits every handler, e.g. to close idle connections at shutdown.
    func forEachHandler(_ body: (EventHandler) -> Void) {
        for handler in Array(handlers.values) { body(handler) }
    }

    /// Runs `work` on this loop after the events being handled now, without the doorbell.
    /// Must be called on the loop's thread. A completion that starts the next request
    /// goes through here, so a chain of ready answers never grows the stack.
    func runSoon(_ work: @escaping () -> Void) {
        soon.append(work)
    }

    /// Runs `work` on this loop after the events of this pass and of later ones, a few
    /// per pass, and the loop does not sleep while any waits. For work that is costly in
    /// bulk and can wait: closing connections whose deadline passed costs tens of
    /// microseconds each (a 408, a TLS alert, freeing the session), and a slowloris
    /// attack makes a thousand expire in one tick; done in the tick, they held a request
    /// on an established connection for 10 ms. Must be called on the loop's thread.
    func eventually(_ work: @escaping () -> Void) {
        later.append(work)
    }

    /// Runs `work` on this loop once `time` (EventLoop.now() clock) has passed: only
    /// `work`, not every handler's tick. Costs O(log n) in the work already waiting.
    /// Must be called on the loop's thread.
    func schedule(at time: UInt64, _ work: @escaping () -> Void) {
        timerSequence += 1
        timers.insert(TimedWork(time: time, sequence: timerSequence, work: work))
    }

    /// Runs `work` on this loop `delay` from now, to the microsecond (timer slack aside).
    /// Must be called on the loop's thread (from work it runs).
    public func schedule(after delay: Duration, _ work: @escaping () -> Void) {
        let (seconds, attoseconds) = delay.components
        let nanoseconds = max(0, seconds) * 1_000_000_000 + max(0, attoseconds / 1_000_000_000)
        schedule(at: Self.now() + UInt64(nanoseconds), work)
    }

    /// True on this loop's own thread: work may then run at once instead of being posted.
    var inLoop: Bool { threadID.load(ordering: .relaxed) == UInt(pthread_self()) }

    private func run() {
        threadID.store(UInt(pthread_self()), ordering: .relaxed)
        nextTick = Self.now() + Self.tickInterval
        defer { release() }
        while !(stopping && handlers.isEmpty) {
            let due = min(nextTick, timers.min?.time ?? .max)
            let wait = soon.isEmpty && later.isEmpty ? Int64(due &- min(due, Self.now())) : 0
            let n = events.withUnsafeMutableBufferPointer {
                gw_epoll_wait(epfd, $0.baseAddress, Int32($0.count), wait)
            }
            for i in 0..<Int(max(n, 0)) {
                let event = events[i]
                if event.token == 0 {
                    runPosted()
                    continue
                }
                guard let handler = handlers[event.token] else { continue }
                deliver(event.events, to: handler)
            }
            while !soon.isEmpty {
                let work = soon
                soon.removeAll(keepingCapacity: true)
                for item in work { item() }
            }
            if !later.isEmpty {
                let count = min(later.count, Self.eventualPerPass)
                let work = later.prefix(count)
                later.removeFirst(count)
                for item in work { item() }
            }
            let now = Self.now()
            while let first = timers.min, first.time <= now {
                timers.removeMin().work()
            }
            if now >= nextTick {
                nextTick = now + Self.tickInterval
                httpDate = Self.formatDate()
                forEachHandler { $0.tick(now: now) }
            }
        }
    }

    /// The thread's end: work posted from now on is dropped, and so is what waits, out
    /// of the lock (what a closure held may post again as it goes).
    private func release() {
        _ = posted.withLock { state -> [@Sendable () -> Void] in
            state.closed = true
            defer { state.work = [] }
            return state.work
        }
        // Timed work holds what scheduled it (a client's pool, which holds this loop):
        // kept, it would keep the loop and its descriptors alive after the thread ends.
        timers = Heap()
        soon = []
        later = []
    }

    deinit {
        Glibc.close(doorbell)
        Glibc.close(epfd)
        readBuffer.deallocate()
    }

    private func deliver(_ bits: UInt32, to handler: EventHandler) {
        handler.ready(
            readable: bits & UInt32(GW_EV_READ) != 0,
            writable: bits & UInt32(GW_EV_WRITE) != 0,
            failed: bits & UInt32(GW_EV_ERROR | GW_EV_HUP) != 0)
    }

    /// Clears the doorbell before taking the work, so a post that lands in between
    /// rings again instead of waiting for the next wakeup.
    private func runPosted() {
        gw_eventfd_drain(doorbell)
        rung.store(false, ordering: .sequentiallyConsistent)
        let work = posted.withLock { state -> [@Sendable () -> Void] in
            let taken = state.work
            state.work.removeAll(keepingCapacity: true)
            return taken
        }
        for item in work { item() }
    }

    static func now() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds
    }

    private static func formatDate() -> [UInt8] {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buf = [Int8](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return buf[0..<n].map { UInt8(bitPattern: $0) }
    }
}

/// Work for a time; equal times run in the order they were scheduled.
private struct TimedWork: Comparable {
    let time: UInt64
    let sequence: UInt64
    let work: () -> Void

    static func < (a: TimedWork, b: TimedWork) -> Bool {
        (a.time, a.sequence) < (b.time, b.sequence)
    }

    static func == (a: TimedWork, b: TimedWork) -> Bool {
        a.time == b.time && a.sequence == b.sequence
    }
}

/// A fixed set of loops, about one per core; connections are spread round-robin.
public final class EventLoopGroup: @unchecked Sendable {
    public let loops: [EventLoop]
    private let counter = Counter()

    public init(count: Int = ProcessInfo.processInfo.activeProcessorCount) {
        Self.ignoreSIGPIPE
        loops = (0..<max(1, count)).map { EventLoop(name: "gateway.loop.\($0)") }
    }

    /// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE when the peer has
    /// gone; plain sends use MSG_NOSIGNAL, but TLS ones cannot. So any process that runs
    /// loops ignores SIGPIPE, once, before the first socket exists; a write to a closed
    /// peer then fails with EPIPE, which the connection handles as a close.
    private static let ignoreSIGPIPE: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    public func next() -> EventLoop {
        loops[nextIndex()]
    }

    func nextIndex() -> Int {
        counter.next() % loops.count
    }
}
