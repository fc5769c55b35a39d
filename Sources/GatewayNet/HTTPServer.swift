import CGatewayShims
import Dispatch
import Foundation
import Logging

/// One address to listen on; `tls` nil means plain HTTP (only for local metrics and
/// benchmarks: configure it deliberately).
public struct ListenerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var tls: TLSContext?

    public init(host: String, port: Int, tls: TLSContext?) {
        self.host = host
        self.port = port
        self.tls = tls
    }
}

public struct HTTPServerConfiguration: Sendable {
    public var listeners: [ListenerConfiguration]
    public var loopCount = ProcessInfo.processInfo.activeProcessorCount
    public var limits = HTTPLimits()
    /// The four waits on a peer. Each is the most it waits while at most half of
    /// `maxConnections` are open; above that it shrinks (`HTTPServer.patience`).
    public var handshakeTimeout: Duration = .seconds(10)
    /// From a request's first byte until its head is complete; absolute, so a client
    /// that trickles one byte a second is closed all the same.
    public var headerTimeout: Duration = .seconds(60)
    public var bodyTimeout: Duration = .seconds(60)
    public var idleTimeout: Duration = .seconds(60)
    /// What those waits shrink to when the connection cap is reached.
    public var timeoutAtCapacity: Duration = .seconds(5)
    public var maxConnections = 16_384
    /// Output buffered beyond this stops reading a connection until the peer catches up.
    public var outputHighWater = 1 << 20
    /// Responses at least this large are gzipped for clients that accept it.
    public var gzipMinimumBytes = 1024
    /// Nice value of the thread that runs TLS handshakes (see HTTPServer).
    public var handshakeNice: Int32 = 10

    public init(listeners: [ListenerConfiguration]) {
        self.listeners = listeners
    }
}

/// Counters an operator reads through /metrics; cheap atomics bumped from any loop.
public final class HTTPServerStatistics: Sendable {
    let accepted = Counter()
    let closed = Counter()
    let requests = Counter()
    let rejectedOverCap = Counter()
    let handshakeFailures = Counter()
    let timeouts = Counter()
    let protocolErrors = Counter()
    public let durations = RequestDurations()

    public struct Snapshot: Sendable {
        public let accepted, open, requests, rejectedOverCap, handshakeFailures, timeouts, protocolErrors: Int
    }

    var open: Int { accepted.current - closed.current }

    public var snapshot: Snapshot {
        let a = accepted.current
        return Snapshot(accepted: a, open: a - closed.current, requests: requests.current,
                        rejectedOverCap: rejectedOverCap.current, handshakeFailures: handshakeFailures.current,
                        timeouts: timeouts.current, protocolErrors: protocolErrors.current)
    }
}

public enum HTTPServerError: Error, CustomStringConvertible {
    case bind(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case let .bind(host, port, reason): return "cannot listen on \(host):\(port): \(reason)"
        }
    }
}

/// The gateway's HTTP/1.1 server: listeners, a group of event loops, connections.
///
/// TLS handshakes run on a loop of their own whose thread has a lower priority, and a
/// connection moves to one of the group's loops once its handshake is done. A handshake
/// costs about 0.35 ms of CPU (OpenSSL 3, P-256, X25519), a request on an established
/// connection tens of microseconds: on the same loops, a wave of new connections (a
/// slowloris attack reopening two thousand of them every header timeout, or every
/// client reconnecting after a restart) put requests behind handshakes, and serving only
/// a few handshakes per pass did not help (a 200/s client's p99 under attack: 7.2 × its
/// baseline with handshakes on the loops, 4.7 × with this). The cost: when the machine
/// is saturated new connections wait (the handshake thread gets about a tenth of a
/// contended core at nice 10), and one thread does every handshake (about 2 800 a second
/// on this machine's cores).
public final class HTTPServer: @unchecked Sendable {
    let context: ServerContext
    let group: EventLoopGroup
    /// Where TLS connections live until their handshake is done.
    let handshakeLoop: EventLoop
    public var statistics: HTTPServerStatistics { context.statistics }
    private var configuration: HTTPServerConfiguration { context.configuration }
    private var logger: Logger { context.logger }
    private var listeners: [Listener] = []

    public init(configuration: HTTPServerConfiguration, router: Router, logger: Logger) {
        context = ServerContext(configuration: configuration, router: router, logger: logger)
        group = EventLoopGroup(count: configuration.loopCount)
        handshakeLoop = EventLoop(name: "gateway.tls", nice: configuration.handshakeNice)
    }

    /// Binds every listener; returns the bound ports in configuration order (useful
    /// with port 0).
    @discardableResult
    public func start() throws(HTTPServerError) -> [Int] {
        var ports: [Int] = []
        for l in configuration.listeners {
            var port: Int32 = 0, err: Int32 = 0
            let fd = gw_listen_tcp(l.host, Int32(l.port), SOMAXCONN, &port, &err)
            guard fd >= 0 else {
                listeners.forEach { $0.stop() }
                throw .bind(host: l.host, port: l.port, reason: String(cString: strerror(err)))
            }
            let listener = Listener(fd: fd, tls: l.tls, server: self, loop: group.loops[listeners.count % group.loops.count])
            listeners.append(listener)
            ports.append(Int(port))
            logger.info("listening", metadata: ["address": "\(l.host):\(port)", "tls": "\(l.tls != nil)"])
        }
        listeners.forEach { $0.begin() }
        return ports
    }

    /// Stops accepting, lets in-flight requests finish (their responses say
    /// `Connection: close`), closes idle connections, and returns once every connection
    /// is gone or `grace` has passed, closing whatever remains.
    public func shutdown(grace: Duration = .seconds(10)) {
        context.drainingFlag.add(1)
        listeners.forEach { $0.stop() }
        let deadline = ContinuousClock.now + grace
        let loops = group.loops + [handshakeLoop]
        for loop in loops {
            loop.execute { loop.forEachHandler { ($0 as? ServerConnection)?.closeIfIdle() } }
        }
        while statistics.snapshot.open > 0, ContinuousClock.now < deadline {
            usleep(20_000)
        }
        let done = DispatchGroup()
        for loop in loops {
            done.enter()
            loop.execute {
                loop.forEachHandler { ($0 as? ServerConnection)?.close() }
                done.leave()
            }
        }
        done.wait()
        logger.info("stopped", metadata: ["requests": "\(statistics.snapshot.requests)"])
    }

    func admit(fd: Int32, tls: TLSContext?) {
        let open = statistics.snapshot.open
        if open >= configuration.maxConnections || context.draining {
            statistics.rejectedOverCap.add(1)
            if tls == nil {
                var out: [UInt8] = []
                let busy = HTTPError(503, "over_capacity", "The gateway is at its connection limit; retry shortly.")
                ResponseEncoder.encode(busy.response, into: &out, date: group.loops[0].httpDate,
                                       keepAlive: false, headRequest: false)
                _ = out.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            Glibc.close(fd)
            return
        }
        statistics.accepted.add(1)
        _ = gw_set_nodelay(fd)
        let home = group.next()
        let loop = tls == nil ? home : handshakeLoop
        loop.execute { [self] in
            ServerConnection.open(fd: fd, tls: tls, context: context, loop: loop, home: home)
        }
    }
}

/// What every connection of a server reads on every request, held strongly by each of
/// them. It refers to no loop or connection, so holding it makes no cycle; the server
/// itself is behind an `unowned` reference in its listeners only. (Connections once held
/// the server `unowned` too: each of some ten reads a request was an atomic
/// `swift_unownedRetainStrong` and release on one object shared by every loop's thread,
/// about 2 % of an unaudited lookup's CPU.)
final class ServerContext: Sendable {
    let configuration: HTTPServerConfiguration
    let router: Router
    let logger: Logger
    let statistics = HTTPServerStatistics()
    let drainingFlag = Counter()

    init(configuration: HTTPServerConfiguration, router: Router, logger: Logger) {
        self.configuration = configuration
        self.router = router
        self.logger = logger
    }

    var draining: Bool { drainingFlag.current > 0 }

    /// How long to wait on a peer whose configured timeout is `timeout`, in nanoseconds:
    /// all of it while at most half of `maxConnections` are open, then less in proportion
    /// down to `timeoutAtCapacity` at the cap. Connections ask on every tick, so waits
    /// already running shrink as the node fills.
    ///
    /// Why not always short: a slow client is harmless until connection slots run out,
    /// and closing it only makes it come back. A TLS reconnection costs the node a
    /// handshake (0.35 ms of CPU), holding the connection a timer entry and its idle
    /// buffers. Two thousand slowloris connections closed at a 10 s header timeout
    /// reopened 174 times a second, held for 60 s 33 times, and the p99 of a 200/s client
    /// beside them fell from 1.8–2.3 ms to 1.2–1.4 ms (about 1 ms alone). Near the cap
    /// slots are what counts, and the short waits free them.
    func patience(_ timeout: Duration) -> UInt64 {
        let full = timeout.nanoseconds
        let least = min(full, configuration.timeoutAtCapacity.nanoseconds)
        let cap = configuration.maxConnections, half = cap / 2
        let open = min(statistics.open, cap)
        guard open > half else { return full }
        return full - UInt64(Double(full - least) * Double(open - half) / Double(cap - half))
    }
}

/// A listening socket on one loop. Accepts until EAGAIN on every readiness, and again
/// on every tick, because an edge-triggered listener that hit EMFILE gets no new edge
/// for the connections already queued.
final class Listener: EventHandler, @unchecked Sendable {
    private let fd: Int32
    private let tls: TLSContext?
    private unowned let server: HTTPServer
    private let loop: EventLoop
    private var token: UInt64?

    init(fd: Int32, tls: TLSContext?, server: HTTPServer, loop: EventLoop) {
        self.fd = fd
        self.tls = tls
        self.server = server
        self.loop = loop
    }

    func begin() {
        loop.execute { [self] in
            token = loop.add(fd: fd, handler: self)
            acceptAll()
        }
    }

    func stop() {
        let done = DispatchSemaphore(value: 0)
        loop.execute { [self] in
            if let token {
                loop.remove(fd: fd, token: token)
                Glibc.close(fd)
                self.token = nil
            }
            done.signal()
        }
        done.wait()
    }

    func ready(readable: Bool, writable: Bool, failed: Bool) {
        if readable { acceptAll() }
    }

    func tick(now: UInt64) {
        if token != nil { acceptAll() }
    }

    private func acceptAll() {
        while true {
            let conn = gw_accept(fd)
            if conn >= 0 {
                server.admit(fd: conn, tls: tls)
                continue
            }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN, EWOULDBLOCK: return
            default:
                server.context.logger.warning("accept failed", metadata: ["error": "\(String(cString: strerror(errno)))"])
                return
            }
        }
    }
}
