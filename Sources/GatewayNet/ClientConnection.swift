import CGatewayShims
import Foundation

/// One client connection to an origin: connect, TLS handshake, then one request at a
/// time. Lives on its pool's loop; every method runs there.
///
/// What must stay true: a task is finished exactly once (`ClientTask.finish` guards it);
/// a connection goes back to the pool only after a complete response that leaves it
/// reusable; a task that met a stale keep-alive connection (closed before any response
/// byte) is tried once more on a new connection.
final class ClientConnection: EventHandler, @unchecked Sendable {
    private enum Phase {
        case connecting, handshaking, idle, busy, closed
    }

    private let pool: OriginPool
    private let fd: Int32
    private let transport: Transport
    private var token: UInt64 = 0
    private var phase = Phase.connecting
    private var task: ClientTask?
    private var parser: HTTPResponseParser?
    private var inbound: [UInt8] = []
    private var outbound: [UInt8] = []
    private var outOffset = 0
    private var served = 0
    private var connectDeadline: UInt64
    private var idleDeadline: UInt64 = .max

    static func open(for task: ClientTask, pool: OriginPool) {
        var err: Int32 = 0
        let fd = gw_connect_tcp(pool.origin.host, Int32(pool.origin.port), &err)
        guard fd >= 0 else {
            task.finish(.failure(.connectFailed(String(cString: strerror(err)))))
            return pool.closed(nil)
        }
        var transport = Transport.plain(fd)
        if pool.origin.tls {
            guard let tls = pool.configuration.tls,
                  let session = TLSSession(context: tls, fd: fd, serverName: pool.origin.host) else {
                Glibc.close(fd)
                task.finish(.failure(.tlsFailed("cannot create a TLS session")))
                return pool.closed(nil)
            }
            transport = .tls(session)
        }
        let connection = ClientConnection(fd: fd, transport: transport, pool: pool)
        guard let token = pool.loop.add(fd: fd, handler: connection) else {
            Glibc.close(fd)
            task.finish(.failure(.connectFailed("cannot watch the socket")))
            return pool.closed(nil)
        }
        connection.token = token
        connection.task = task
        task.connection = connection
    }

    private init(fd: Int32, transport: Transport, pool: OriginPool) {
        self.fd = fd
        self.transport = transport
        self.pool = pool
        connectDeadline = EventLoop.now() + pool.configuration.connectTimeout.nanoseconds
    }

    func start(_ next: ClientTask) {
        task = next
        next.connection = self
        phase = .busy
        parser = HTTPResponseParser(limits: pool.configuration.limits, requestWasHead: next.request.method == "HEAD")
        encode(next.request)
        flush()
        // The answer can't be there yet, except for bytes OpenSSL read ahead earlier;
        // otherwise the next edge says when it comes.
        if phase == .busy, case .tls(let session) = transport, session.hasPending { readResponse() }
    }

    func ready(readable: Bool, writable: Bool, failed: Bool) {
        switch phase {
        case .closed:
            return
        case .idle where !readable && !failed:
            return
        case .connecting:
            guard writable || failed else { return }
            let err = gw_socket_error(fd)
            guard err == 0 else { return fail(.connectFailed(String(cString: strerror(err))), retry: false) }
            if case .tls = transport { phase = .handshaking } else { return connected() }
            fallthrough
        case .handshaking:
            guard case .tls(let session) = transport else { return }
            switch session.handshake() {
            case .done: connected()
            case .wantRead, .wantWrite: return
            case .eof: fail(.tlsFailed("the server closed the connection during the handshake"), retry: false)
            case .failed(let reason): fail(.tlsFailed(reason), retry: false)
            }
        case .idle:
            // An idle keep-alive connection that becomes readable was closed (or spoke
            // out of turn): either way it is done.
            close()
        case .busy:
            if outOffset < outbound.count { flush() }
            if phase == .busy { readResponse() }
        }
    }

    /// The connect and idle deadlines; a request's own deadline is timed work on the loop
    /// (`OriginPool.deadlinePassed`), exact rather than to the tick.
    func tick(now: UInt64) {
        switch phase {
        case .connecting, .handshaking:
            if now > connectDeadline { fail(.timedOut, retry: false) }
        case .idle:
            if now > idleDeadline { close() }
        case .busy, .closed:
            return
        }
    }

    /// `ended`'s deadline passed while this connection carried it.
    func deadlinePassed(_ ended: ClientTask) {
        guard task === ended else { return }
        fail(.timedOut, retry: false)
    }

    private func connected() {
        guard let task else { return close() }
        start(task)
    }

    private func encode(_ request: HTTPRequest) {
        outbound.append(contentsOf: request.method.utf8)
        outbound.append(space)
        outbound.append(contentsOf: request.target.utf8)
        outbound.append(contentsOf: " HTTP/1.1\r\n".utf8)
        outbound.append(contentsOf: pool.hostLine)
        for (name, value) in request.headers
        where !name.caseInsensitiveEquals("Host") && !name.caseInsensitiveEquals("Content-Length") {
            outbound.append(contentsOf: "\(name): \(value)\r\n".utf8)
        }
        if pool.configuration.acceptGzip && request.headers["Accept-Encoding"] == nil {
            outbound.append(contentsOf: "Accept-Encoding: gzip\r\n".utf8)
        }
        if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            outbound.append(contentsOf: "Content-Length: \(request.body.count)\r\n".utf8)
        }
        outbound.append(contentsOf: "\r\n".utf8)
        outbound.append(contentsOf: request.body)
    }

    private func flush() {
        while outOffset < outbound.count {
            let result = outbound.withUnsafeBytes { transport.write(UnsafeRawBufferPointer(rebasing: $0[outOffset...])) }
            switch result {
            case .done(let n): outOffset += n
            case .wantRead, .wantWrite: return
            case .eof, .failed: return fail(.connectionClosed, retry: true)
            }
        }
        outbound.removeAll(keepingCapacity: outbound.capacity <= 64 * 1024)
        outOffset = 0
    }

    private func readResponse() {
        let buffer = pool.loop.readBuffer
        while phase == .busy {
            switch transport.read(into: buffer) {
            case .done(let n):
                inbound.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                parseInbound()
            case .wantRead, .wantWrite:
                return
            case .eof:
                if parser?.isAtStart == true, inbound.isEmpty { return fail(.connectionClosed, retry: true) }
                do throws(HTTPError) {
                    guard var p = parser else { return close() }
                    complete(try p.finishAtClose(), reusable: false)
                } catch {
                    fail(.badResponse(error.message), retry: false)
                }
                return
            case .failed(let reason):
                return fail(.badResponse(reason), retry: false)
            }
        }
    }

    private func parseInbound() {
        var offset = 0
        while phase == .busy, var p = parser, offset < inbound.count {
            let step = inbound.withUnsafeBytes { b in
                Result { () throws(HTTPError) in try p.parse(UnsafeRawBufferPointer(rebasing: b[offset...])) }
            }
            guard case .success(let (consumed, response)) = step else {
                if case .failure(let error) = step { fail(.badResponse(error.message), retry: false) }
                return
            }
            offset += consumed
            parser = p
            if let response {
                inbound.removeFirst(offset)
                let reusable = !p.closeDelimited && !response.headers.hasToken("Connection", "close")
                return complete(response, reusable: reusable)
            }
            if consumed == 0 { break }
        }
        inbound.removeFirst(offset)
    }

    private func complete(_ response: HTTPResponse, reusable: Bool) {
        var response = response
        if response.headers["Content-Encoding"]?.caseInsensitiveEquals("gzip") == true {
            do {
                response.body = try Gzip.decompress(response.body, limit: pool.configuration.limits.maxDecompressedBytes)
                response.headers.remove("Content-Encoding")
            } catch {
                return fail(.badResponse("the gzip body could not be decoded"), retry: false)
            }
        }
        let finished = task
        task = nil
        parser = nil
        served += 1
        if reusable && inbound.isEmpty {
            phase = .idle
            idleDeadline = EventLoop.now() + pool.configuration.idleTimeout.nanoseconds
            finished?.finish(.success(response))
            pool.release(self)
        } else {
            close()
            finished?.finish(.success(response))
        }
    }

    /// Ends the current task with `error`, unless it met a stale keep-alive connection
    /// and may go once more on a fresh one.
    private func fail(_ error: HTTPClientError, retry: Bool) {
        let failed = task
        task = nil
        close()
        guard let failed else { return }
        if retry && served > 0 && !failed.retried {
            failed.retried = true
            failed.connection = nil
            pool.submit(failed)
        } else {
            failed.finish(.failure(error))
        }
    }

    func close() {
        guard phase != .closed else { return }
        phase = .closed
        if case .tls(let session) = transport { session.shutdown() }
        pool.loop.remove(fd: fd, token: token)
        Glibc.close(fd)
        pool.closed(self)
    }
}
