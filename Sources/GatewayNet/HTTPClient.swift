import DequeModule
import Foundation

public enum HTTPClientError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidURL(String)
    case connectFailed(String)
    case tlsFailed(String)
    /// The request's deadline passed (connecting, waiting for a connection, or waiting
    /// for the response).
    case timedOut
    case connectionClosed
    case badResponse(String)
    case shutDown

    public var description: String {
        switch self {
        case .invalidURL(let u): return "invalid URL: \(u)"
        case .connectFailed(let m): return "connect failed: \(m)"
        case .tlsFailed(let m): return "TLS failed: \(m)"
        case .timedOut: return "deadline passed"
        case .connectionClosed: return "connection closed before the response"
        case .badResponse(let m): return "bad response: \(m)"
        case .shutDown: return "client shut down"
        }
    }
}

public struct HTTPClientConfiguration: Sendable {
    /// Client TLS: the CA bundle servers must chain to and, for mutual TLS, this
    /// client's certificate. Needed for https URLs.
    public var tls: TLSContext?
    public var connectTimeout: Duration = .seconds(5)
    /// Default deadline of a request that names none.
    public var requestTimeout: Duration = .seconds(30)
    /// Connections kept per origin on each event loop.
    public var maxConnectionsPerOrigin = 8
    public var idleTimeout: Duration = .seconds(30)
    /// Ask for gzip and decode it transparently.
    public var acceptGzip = true
    public var limits = HTTPLimits()

    public init(tls: TLSContext? = nil) {
        self.tls = tls
    }
}

/// A parsed base URL (`https://host:port`), for callers that send many requests to one
/// place and should not parse the URL each time.
public struct HTTPEndpoint: Sendable {
    let origin: Origin
    /// Path prefix of the base URL, without a trailing slash.
    let prefix: String

    public init?(_ baseURL: String) {
        guard let (origin, target) = Origin.parse(baseURL) else { return nil }
        self.origin = origin
        prefix = target == "/" ? "" : (target.hasSuffix("/") ? String(target.dropLast()) : target)
    }
}

/// Where a request goes: scheme, host and port.
struct Origin: Hashable, Sendable {
    let tls: Bool
    let host: String
    let port: Int

    var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return (tls && port == 443) || (!tls && port == 80) ? h : "\(h):\(port)"
    }

    /// Splits an absolute http(s) URL into its origin and request target.
    static func parse(_ url: String) -> (Origin, String)? {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") { tls = true; rest = url.dropFirst(8) }
        else if url.hasPrefix("http://") { tls = false; rest = url.dropFirst(7) }
        else { return nil }
        let slash = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<slash]
        var target = String(rest[slash...])
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        rest = authority
        var host: Substring, port = tls ? 443 : 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { guard let p = Int(after.dropFirst()) else { return nil }; port = p }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = p
        } else {
            host = rest
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        return (Origin(tls: tls, host: String(host), port: port), target)
    }
}

/// The one HTTP client of the project (federation, token service, inference, benchmark
/// harness): keep-alive pools per origin on the same event loops as the server, TLS and
/// mutual TLS, deadlines, gzip.
public final class HTTPClient: Sendable {
    let configuration: HTTPClientConfiguration
    private let group: EventLoopGroup
    private let pools: [PoolSet]
    /// The client made its loop and ends it with itself.
    private let ownsGroup: Bool

    /// Runs on `group`'s loops, or on a loop of its own that ends when the client is let
    /// go (its connections closed, requests still in flight finished first).
    public init(configuration: HTTPClientConfiguration, group: EventLoopGroup? = nil) {
        self.configuration = configuration
        self.group = group ?? EventLoopGroup(count: 1)
        ownsGroup = group == nil
        pools = self.group.loops.map { PoolSet(loop: $0) }
    }

    deinit {
        guard ownsGroup else { return }
        for set in pools {
            set.loop.execute { set.drain() }
            set.loop.stopWhenIdle()
        }
    }

    /// Sends `request` to `url` (absolute http or https); `completion` runs on an event
    /// loop thread and must not block. Method, headers and body come from `request`; its
    /// target is replaced by the URL's.
    public func execute(_ request: HTTPRequest, url: String, deadline: ContinuousClock.Instant? = nil,
                        completion: @escaping @Sendable (Result<HTTPResponse, HTTPClientError>) -> Void) {
        guard let (origin, target) = Origin.parse(url) else { return completion(.failure(.invalidURL(url))) }
        var request = request
        request.target = target
        send(request, origin: origin, deadline: deadline, completion: completion)
    }

    /// Runs `work` on one of the client's loops, handing it that loop: requests it
    /// `execute`s start without a hop between threads (with one loop, always), and
    /// `EventLoop.schedule(after:)` times further work there (an open-loop benchmark's
    /// sends).
    public func onLoop(_ work: @escaping @Sendable (EventLoop) -> Void) {
        let loop = group.next()
        loop.execute { work(loop) }
    }

    /// Sends `request` to `endpoint`; the request's target is appended to the endpoint's
    /// path. Called on one of the client's loop threads (say, from a completion), the
    /// request starts right after the current events instead of going through the
    /// loop's doorbell.
    public func execute(_ request: HTTPRequest, at endpoint: HTTPEndpoint, deadline: ContinuousClock.Instant? = nil,
                        completion: @escaping @Sendable (Result<HTTPResponse, HTTPClientError>) -> Void) {
        var request = request
        if !endpoint.prefix.isEmpty { request.target = endpoint.prefix + request.target }
        send(request, origin: endpoint.origin, deadline: deadline, completion: completion)
    }

    private func send(_ request: HTTPRequest, origin: Origin, deadline: ContinuousClock.Instant?,
                      completion: @escaping @Sendable (Result<HTTPResponse, HTTPClientError>) -> Void) {
        if origin.tls && configuration.tls == nil {
            return completion(.failure(.invalidURL("https needs a TLS context: \(origin.host)")))
        }
        let timeout = deadline.map { max(.zero, $0 - .now) } ?? configuration.requestTimeout
        let task = ClientTask(request: request, origin: origin, deadline: EventLoop.now() + timeout.nanoseconds,
                              completion: completion)
        let set = pools[group.nextIndex()]
        let start: @Sendable () -> Void = { [self] in
            let pool = set.pool(for: origin, client: self)
            // Weak: a finished task must not keep its request body until the deadline.
            set.loop.schedule(at: task.deadline) { [weak task] in
                if let task { pool.deadlinePassed(task) }
            }
            pool.submit(task)
        }
        if set.loop.inLoop { set.loop.runSoon(start) } else { set.loop.execute(start) }
    }

    public func execute(_ request: HTTPRequest, url: String,
                        deadline: ContinuousClock.Instant? = nil) async throws(HTTPClientError) -> HTTPResponse {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<HTTPResponse, HTTPClientError>, Never>) in
            execute(request, url: url, deadline: deadline) { c.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Closes idle connections; requests still in flight finish or time out.
    public func closeIdleConnections() {
        for set in pools { set.loop.execute { set.closeIdle() } }
    }
}

/// A request on its way, with what to call when it ends. `finish` runs once.
final class ClientTask: @unchecked Sendable {
    let request: HTTPRequest
    let origin: Origin
    let deadline: UInt64
    var retried = false
    /// The connection carrying the task, nil while it waits for one.
    weak var connection: ClientConnection?
    private var completion: (@Sendable (Result<HTTPResponse, HTTPClientError>) -> Void)?

    init(request: HTTPRequest, origin: Origin, deadline: UInt64,
         completion: @escaping @Sendable (Result<HTTPResponse, HTTPClientError>) -> Void) {
        self.request = request
        self.origin = origin
        self.deadline = deadline
        self.completion = completion
    }

    var isFinished: Bool { completion == nil }

    func finish(_ result: Result<HTTPResponse, HTTPClientError>) {
        guard let done = completion else { return }
        completion = nil
        connection = nil
        done(result)
    }
}

/// The pools of one loop, one per origin. Touched only on that loop.
final class PoolSet: @unchecked Sendable {
    let loop: EventLoop
    private var byOrigin: [Origin: OriginPool] = [:]

    init(loop: EventLoop) {
        self.loop = loop
    }

    func pool(for origin: Origin, client: HTTPClient) -> OriginPool {
        if let pool = byOrigin[origin] { return pool }
        let pool = OriginPool(origin: origin, loop: loop, configuration: client.configuration)
        byOrigin[origin] = pool
        return pool
    }

    func closeIdle() { byOrigin.values.forEach { $0.closeIdle() } }

    func drain() { byOrigin.values.forEach { $0.drain() } }
}

/// Connections to one origin on one loop: idle ones are reused last-in first-out (the
/// warmest), new ones are opened up to the cap, and beyond it requests wait in order.
/// A waiting request whose deadline passes is finished where it stands and skipped when
/// its turn comes, so a deadline costs nothing in proportion to the queue.
final class OriginPool {
    let origin: Origin
    let loop: EventLoop
    let configuration: HTTPClientConfiguration
    /// `Host: …\r\n`, encoded once for every request of this pool.
    let hostLine: [UInt8]
    private var idle: [ClientConnection] = []
    private var open = 0
    private var waiting = Deque<ClientTask>()
    /// Its client is gone: connections close as their requests end and none opens.
    private var draining = false

    init(origin: Origin, loop: EventLoop, configuration: HTTPClientConfiguration) {
        self.origin = origin
        self.loop = loop
        self.configuration = configuration
        hostLine = Array("Host: \(origin.hostHeader)\r\n".utf8)
    }

    func submit(_ task: ClientTask) {
        if draining {
            task.finish(.failure(.shutDown))
        } else if let connection = idle.popLast() {
            connection.start(task)
        } else if open < configuration.maxConnectionsPerOrigin {
            open += 1
            ClientConnection.open(for: task, pool: self)
        } else {
            waiting.append(task)
        }
    }

    /// A connection finished a task and may take the next.
    func release(_ connection: ClientConnection) {
        if draining {
            connection.close()
        } else if let next = nextWaiting() { connection.start(next) } else { idle.append(connection) }
    }

    /// A connection closed (nil: it never opened); its slot may serve a waiting task.
    func closed(_ connection: ClientConnection?) {
        open -= 1
        if let connection { idle.removeAll { $0 === connection } }
        if !draining, let next = nextWaiting() {
            open += 1
            ClientConnection.open(for: next, pool: self)
        }
    }

    /// `task`'s deadline passed: it ends as timed out, and the connection carrying it,
    /// if any, closes (its answer may still be coming).
    func deadlinePassed(_ task: ClientTask) {
        guard !task.isFinished else { return }
        if let connection = task.connection {
            connection.deadlinePassed(task)
        } else {
            task.finish(.failure(.timedOut))
        }
    }

    func closeIdle() {
        let all = idle
        idle = []
        all.forEach { $0.close() }
    }

    func drain() {
        draining = true
        closeIdle()
        while let task = nextWaiting() { task.finish(.failure(.shutDown)) }
    }

    private func nextWaiting() -> ClientTask? {
        while let task = waiting.popFirst() {
            if !task.isFinished { return task }
        }
        return nil
    }
}

extension Duration {
    var nanoseconds: UInt64 {
        let (s, atto) = components
        return s <= 0 && atto <= 0 ? 0 : UInt64(s) * 1_000_000_000 + UInt64(atto / 1_000_000_000)
    }
}
