import Foundation

/// One accepted connection: TLS handshake, request parsing, dispatch to the router,
/// ordered responses, timeouts. Lives on one loop at a time, and every method runs on
/// that loop's thread: a TLS connection on the server's handshake loop, then, once its
/// handshake is done, on its home loop (`moveHome`); between the two it is on neither and
/// nothing calls it.
///
/// What must stay true: responses leave in request order (one request is handled at a
/// time; pipelined ones wait parsed-but-unanswered in `inbound`); a connection whose
/// output is over the high-water mark reads nothing more; the fd is closed exactly once,
/// after it left the epoll set.
final class ServerConnection: EventHandler, @unchecked Sendable {
    private enum Phase {
        case handshake, header, body, handling, idle, closing
    }

    private let server: ServerContext
    private var loop: EventLoop
    private let home: EventLoop
    private let fd: Int32
    private let transport: Transport
    private var token: UInt64 = 0
    private var handshaking: Bool
    private var peer: PeerIdentity?
    private let identityPrefix: String
    private var parser: HTTPRequestParser
    private var inbound: [UInt8] = []
    private var outbound: [UInt8] = []
    private var outOffset = 0
    private var phase: Phase
    private var phaseStarted: UInt64 = 0
    private var inFlight = false
    private var closeAfterFlush = false
    private var closed = false
    /// An expiry is queued on the loop (`expire`).
    private var expiring = false

    static func open(fd: Int32, tls: TLSContext?, context server: ServerContext, loop: EventLoop, home: EventLoop) {
        var transport = Transport.plain(fd)
        if let tls {
            guard let session = TLSSession(context: tls, fd: fd) else {
                server.statistics.closed.add(1)
                Glibc.close(fd)
                return
            }
            transport = .tls(session)
        }
        let connection = ServerConnection(fd: fd, transport: transport, identityPrefix: tls?.identityPrefix ?? "",
                                          server: server, loop: loop, home: home)
        guard let token = loop.add(fd: fd, handler: connection) else {
            server.statistics.closed.add(1)
            Glibc.close(fd)
            return
        }
        connection.token = token
        if !connection.handshaking { connection.ready(readable: true, writable: true, failed: false) }
    }

    private init(fd: Int32, transport: Transport, identityPrefix: String, server: ServerContext, loop: EventLoop, home: EventLoop) {
        self.fd = fd
        self.identityPrefix = identityPrefix
        self.transport = transport
        self.server = server
        self.loop = loop
        self.home = home
        parser = HTTPRequestParser(limits: server.configuration.limits)
        if case .tls = transport { handshaking = true } else { handshaking = false }
        phase = .idle
        enter(handshaking ? .handshake : .header)
    }

    // MARK: readiness

    func ready(readable: Bool, writable: Bool, failed: Bool) {
        if closed { return }
        if handshaking {
            guard case .tls(let session) = transport else { return }
            switch session.handshake() {
            case .done:
                handshaking = false
                peer = session.peerURI().flatMap { PeerIdentity(uri: $0, prefix: identityPrefix) }
                enter(.header)
                if loop !== home { return moveHome() }
            case .wantRead, .wantWrite:
                return
            case .eof:
                server.statistics.handshakeFailures.add(1)
                return close()
            case .failed(let reason):
                server.statistics.handshakeFailures.add(1)
                server.logger.debug("TLS handshake failed", metadata: ["reason": "\(reason)"])
                return close()
            }
        }
        if outOffset < outbound.count { flush() }
        readAndProcess()
    }

    /// Leaves the handshake loop for the home loop. Adding the fd to the home loop's epoll
    /// set reports input that arrived meanwhile, and bytes OpenSSL already decrypted are
    /// read by `readAndProcess` there, so no request is missed in the move.
    private func moveHome() {
        loop.remove(fd: fd, token: token)
        home.execute { [self] in
            loop = home
            guard let token = home.add(fd: fd, handler: self) else {
                closed = true
                Glibc.close(fd)
                server.statistics.closed.add(1)
                return
            }
            self.token = token
            if server.draining { return close() }
            readAndProcess()
        }
    }

    func tick(now: UInt64) {
        guard !closed, now > deadline else {
            if !closed, server.draining, phase == .idle, outOffset == outbound.count { close() }
            if !closed { releaseIdleBuffers() }
            return
        }
        switch phase {
        case .handling:
            return
        case .handshake:
            // On the handshake loop, where no request waits: at once.
            server.statistics.timeouts.add(1)
            close()
        case .header, .body, .idle, .closing:
            guard !expiring else { return }
            expiring = true
            loop.eventually { [self] in expire() }
        }
    }

    /// The deadline passed a moment ago (EventLoop.eventually); input that arrived since
    /// and moved the deadline on cancels the expiry.
    private func expire() {
        expiring = false
        guard !closed, EventLoop.now() > deadline else { return }
        switch phase {
        case .handling, .handshake:
            return
        case .header, .body:
            server.statistics.timeouts.add(1)
            if !handshaking, parser.isIdle == false || !inbound.isEmpty {
                inbound = []
                respond(HTTPError(408, "request_timeout", "The request was not received in time.").response,
                        keepAlive: false, headRequest: false, acceptsGzip: false)
                enter(.closing)
                flush()
            } else {
                close()
            }
        case .idle, .closing:
            close()
        }
    }

    /// A connection waiting for its next request gives back its TLS record buffers, so
    /// that thousands of idle keep-alive connections cost little. Under load a tick
    /// rarely lands between two requests, so this costs almost nothing in throughput.
    private func releaseIdleBuffers() {
        guard case .tls(let session) = transport, !handshaking, parser.isIdle, inbound.isEmpty,
              !inFlight, outOffset == outbound.count else { return }
        session.releaseBuffers()
    }

    private func enter(_ next: Phase) {
        guard next != phase else { return }
        phase = next
        phaseStarted = EventLoop.now()
    }

    /// When the phase's wait ends: found again at every look, because the server's
    /// patience depends on how many connections are open now.
    private var deadline: UInt64 {
        let c = server.configuration
        switch phase {
        case .handshake: return phaseStarted + server.patience(c.handshakeTimeout)
        case .header: return phaseStarted + server.patience(c.headerTimeout)
        case .body: return phaseStarted + server.patience(c.bodyTimeout)
        case .idle: return phaseStarted + server.patience(c.idleTimeout)
        case .handling: return phaseStarted
        case .closing: return phaseStarted + 2_000_000_000
        }
    }

    private var paused: Bool {
        inFlight || closeAfterFlush || outbound.count - outOffset >= server.configuration.outputHighWater
    }

    /// Reads until EAGAIN (edge triggering gives no second notice), answering every
    /// complete request on the way, then sends all the answers in one flush.
    private func readAndProcess() {
        process()
        reading: while !closed && !paused {
            switch transport.read(into: loop.readBuffer) {
            case .done(let n):
                inbound.append(contentsOf: UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<n]))
                process()
            case .wantRead, .wantWrite:
                break reading
            case .eof:
                if inFlight || outOffset < outbound.count { closeAfterFlush = true } else { return close() }
                break reading
            case .failed:
                return close()
            }
        }
        if !closed { flush() }
    }

    // MARK: requests

    private func process() {
        var offset = 0
        defer { consume(offset) }
        while !closed && !paused && offset < inbound.count {
            let result = inbound.withUnsafeBytes { bytes in
                Result { () throws(HTTPError) in try parser.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...])) }
            }
            let step: (consumed: Int, event: HTTPRequestParser.Event)
            switch result {
            case .success(let s): step = s
            case .failure(let error):
                server.statistics.protocolErrors.add(1)
                respond(error.response, keepAlive: false, headRequest: false, acceptsGzip: false)
                offset = inbound.count
                return
            }
            offset += step.consumed
            switch step.event {
            case .needMore:
                if step.consumed == 0 { return }
            case .expectContinue:
                outbound.append(contentsOf: ResponseEncoder.continueLine)
                flush()
            case .request(let request):
                handle(request)
            }
        }
    }

    private func consume(_ offset: Int) {
        if offset == inbound.count {
            inbound = inbound.capacity > 64 * 1024 ? [] : { inbound.removeAll(keepingCapacity: true); return inbound }()
        } else if offset > 0 {
            inbound.removeFirst(offset)
        }
        if closed || inFlight || closeAfterFlush { return }
        if parser.isReadingBody {
            enter(.body)
        } else if !parser.isIdle || !inbound.isEmpty {
            enter(.header)
        } else {
            enter(.idle)
        }
    }

    private func handle(_ incoming: HTTPRequest) {
        server.statistics.requests.add(1)
        let started = ContinuousClock.now
        var request = incoming
        request.peer = peer
        if case .tls = transport { request.isTLS = true }
        let keepAlive = request.keepAlive && !server.draining
        let head = request.method == "HEAD"
        let acceptsGzip = request.headers.hasToken("Accept-Encoding", "gzip")
        do throws(HTTPError) {
            try request.decodeContentEncoding(limit: server.configuration.limits.maxDecompressedBytes)
        } catch {
            return respond(error.response, keepAlive: false, headRequest: head, acceptsGzip: false, started: started)
        }
        switch server.router.resolve(&request) {
        case .refused(let response):
            respond(response, keepAlive: keepAlive, headRequest: head, acceptsGzip: acceptsGzip, started: started)
            logAccess(request, response)
        case .handler(.inline(let body)):
            let response = Self.run({ try body(request) }, { $0 })
            respond(response, keepAlive: keepAlive, headRequest: head, acceptsGzip: acceptsGzip, started: started)
            logAccess(request, response)
        case .handler(.async(let body)):
            runTask(body, request, on: .pool, keepAlive: keepAlive, head: head, acceptsGzip: acceptsGzip, started: started)
        case .handler(.awaiting(let body)):
            runTask(body, request, on: .loop, keepAlive: keepAlive, head: head, acceptsGzip: acceptsGzip, started: started)
        case .handler(.immediate(let atOnce, let body)):
            if let response = Self.run({ try atOnce(request) }, { $0 }) {
                respond(response, keepAlive: keepAlive, headRequest: head, acceptsGzip: acceptsGzip, started: started)
                logAccess(request, response)
            } else {
                runTask(body, request, on: .loopAtOnce, keepAlive: keepAlive, head: head, acceptsGzip: acceptsGzip, started: started)
            }
        }
    }

    /// Where a handler's task runs (RouteHandler): the cooperative pool, this connection's
    /// loop after its current events, or the loop at once.
    private enum TaskStart { case pool, loop, loopAtOnce }

    /// Runs an async handler as a task and writes its response on the loop: from a task
    /// already there after the current events, without the doorbell.
    private func runTask(_ body: @escaping @Sendable (HTTPRequest) async throws -> HTTPResponse, _ request: HTTPRequest,
                         on start: TaskStart, keepAlive: Bool, head: Bool, acceptsGzip: Bool, started: ContinuousClock.Instant?) {
        inFlight = true
        enter(.handling)
        let logger = server.logger
        let work: @Sendable () async -> Void = { [self] in
            let response: HTTPResponse
            do {
                response = try await body(request)
            } catch let error as HTTPError {
                response = error.response
            } catch {
                logger.error("handler failed", metadata: ["error": "\(error)"])
                response = Self.internalError
            }
            let finish: @Sendable () -> Void = { [self] in
                inFlight = false
                guard !closed else { return }
                respond(response, keepAlive: keepAlive && !server.draining, headRequest: head, acceptsGzip: acceptsGzip,
                        started: started)
                logAccess(request, response)
                readAndProcess()
            }
            if loop.inLoop { loop.runSoon(finish) } else { loop.execute(finish) }
        }
        switch start {
        case .pool: Task(operation: work)
        case .loop: Task(executorPreference: loop, operation: work)
        case .loopAtOnce: Task.immediate(executorPreference: loop, operation: work)
        }
    }

    /// The access log, at debug level: method, path without its query, status, caller and
    /// sizes. Never bodies or queries, which may carry what the caller was looking for.
    private func logAccess(_ request: HTTPRequest, _ response: HTTPResponse) {
        guard server.logger.logLevel <= .debug else { return }
        server.logger.debug("request", metadata: [
            "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status)",
            "peer": "\(request.peer?.uri ?? "-")", "in": "\(request.body.count)", "out": "\(response.body.count)",
        ])
    }

    private static let internalError = HTTPError(500, "internal_error", "The gateway failed to handle this request; it has been logged.").response

    /// What `body` answers, or (`answer`) the answer to the error it threw.
    private static func run<Answer>(_ body: () throws -> Answer, _ answer: (HTTPResponse) -> Answer) -> Answer {
        do {
            return try body()
        } catch let error as HTTPError {
            return answer(error.response)
        } catch {
            return answer(internalError)
        }
    }

    private func respond(_ response: HTTPResponse, keepAlive: Bool, headRequest: Bool, acceptsGzip: Bool,
                         started: ContinuousClock.Instant? = nil) {
        var response = response
        if acceptsGzip, response.body.count >= server.configuration.gzipMinimumBytes,
           response.headers["Content-Encoding"] == nil {
            response.body = Gzip.compress(response.body)
            response.headers.add("Content-Encoding", "gzip")
            response.headers.add("Vary", "Accept-Encoding")
        }
        ResponseEncoder.encode(response, into: &outbound, date: loop.httpDate, keepAlive: keepAlive,
                               headRequest: headRequest)
        if !keepAlive { closeAfterFlush = true }
        if let started { server.statistics.durations.record(since: started) }
    }

    // MARK: output and close

    private func flush() {
        while outOffset < outbound.count {
            let result = outbound.withUnsafeBytes {
                transport.write(UnsafeRawBufferPointer(rebasing: $0[outOffset...]))
            }
            switch result {
            case .done(let n): outOffset += n
            case .wantRead, .wantWrite: return
            case .eof, .failed: return close()
            }
        }
        let wasPaused = outbound.count >= server.configuration.outputHighWater
        if outbound.capacity > 256 * 1024 { outbound = [] } else { outbound.removeAll(keepingCapacity: true) }
        outOffset = 0
        if closeAfterFlush && !inFlight { return close() }
        if wasPaused { readAndProcess() }
    }

    /// Closes the connection if no request is in progress on it (graceful shutdown).
    func closeIfIdle() {
        if phase == .idle || phase == .handshake, outOffset == outbound.count { close() }
    }

    func close() {
        if closed { return }
        closed = true
        if case .tls(let session) = transport, !handshaking { session.shutdown() }
        loop.remove(fd: fd, token: token)
        Glibc.close(fd)
        server.statistics.closed.add(1)
        inbound = []
        outbound = []
    }
}
