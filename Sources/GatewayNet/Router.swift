/// What runs a route. `inline` runs on the connection's event loop and must not block
/// (no disk, no network): it is for answers computed from memory. `async` runs as a
/// task on the cooperative pool, and its response is written back on the loop; use it for
/// anything that waits and computes much (an upload's parse). `awaiting` runs as a task
/// on the connection's loop (EventLoop+TaskExecutor): for handlers that mostly wait (a
/// lookup: a reader, then the writer's commit) and compute little between their awaits,
/// which then cost no hand-off to the pool and back. What it computes delays every other
/// connection on that loop. `immediate` first asks `atOnce`, inline, for an answer it can
/// give without waiting (a token lookup whose read runs here, audit off): a task costs a
/// request some 1.5 µs of CPU, as `/healthz` measured run both ways (RESULTS.md, session
/// 33). When `atOnce` gives nil, the handler runs as `awaiting` does but started at once,
/// on the loop's thread, before the loop reads its other connections: no job and no
/// executor switch until it suspends. A handler that submits work to be grouped with
/// other connections' (a workitem's transition) belongs in `awaiting`: its task runs
/// after the loop's current events, so one turn's submissions reach the writer together
/// and can share a commit. (Started at once, read cycles were no faster in nine pairs.)
public enum RouteHandler: Sendable {
    case inline(@Sendable (HTTPRequest) throws -> HTTPResponse)
    case async(@Sendable (HTTPRequest) async throws -> HTTPResponse)
    case awaiting(@Sendable (HTTPRequest) async throws -> HTTPResponse)
    case immediate(atOnce: @Sendable (HTTPRequest) throws -> HTTPResponse?, @Sendable (HTTPRequest) async throws -> HTTPResponse)
}

/// Method + path-pattern routing. Patterns are `/`-separated; a `{name}` segment binds
/// one path segment (percent-decoded) into `HTTPRequest.pathParameters`.
/// A route with `roles` admits only callers whose verified certificate carries one of
/// them: no certificate gives 401, another role gives 403. `plainListener: true` also
/// admits requests from a plain-HTTP listener, which exists only when an operator
/// configured it on a local address (metrics scrapes, benchmarks).
public struct Router: Sendable {
    /// A class: resolving copied each candidate route, five references retained and
    /// released each time (1.4 % of a token lookup's CPU in `perf`); now one.
    private final class Route: Sendable {
        let method: String
        let segments: [Segment]
        let roles: Set<String>?
        let plainListener: Bool
        let handler: RouteHandler
        /// How many segments are literal: the more, the more specific the route.
        let literals: Int

        init(method: String, segments: [Segment], roles: Set<String>?, plainListener: Bool, handler: RouteHandler, literals: Int) {
            (self.method, self.segments, self.roles, self.plainListener, self.handler, self.literals) =
                (method, segments, roles, plainListener, handler, literals)
        }
    }

    private enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    /// Every route, by its number of segments: a path is matched only against routes of
    /// its own length. Resolving a token lookup's path against all routes in turn was 3.9 %
    /// of the lookup's CPU in `perf`, much of it copying routes and decoding parameters for
    /// routes a later literal refused; 3.1 % this way.
    private var routes: [Int: [Route]] = [:]
    /// Routes without parameters by path, then method: most requests resolve with two hash
    /// lookups, no path splitting and no key built.
    private var exact: [Substring: [String: Route]] = [:]

    public init() {}

    public mutating func add(_ method: String, _ pattern: String, roles: Set<String>? = nil,
                             plainListener: Bool = false, _ handler: RouteHandler) {
        let parts = Self.segments(of: Substring(pattern))
        let segments = parts.map { part -> Segment in
            part.hasPrefix("{") && part.hasSuffix("}")
                ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
        let literals = segments.count { if case .literal = $0 { true } else { false } }
        let route = Route(method: method, segments: segments, roles: roles, plainListener: plainListener,
                          handler: handler, literals: literals)
        routes[segments.count, default: []].append(route)
        if literals == segments.count {
            exact[Substring("/" + parts.joined(separator: "/")), default: [:]][method] = route
        }
    }

    enum Resolution {
        case handler(RouteHandler)
        case refused(HTTPResponse)
    }

    /// Finds the route for `request`, binding its path parameters, or the error answer.
    func resolve(_ request: inout HTTPRequest) -> Resolution {
        let path = request.path
        if let route = exact[path]?[request.method] {
            return admit(route, &request, params: [:])
        }
        let parts = Self.segments(of: path)
        let candidates = routes[parts.count] ?? []
        // The most specific routes own a path: /v1/reads/next belongs to POST
        // /v1/reads/next, not also to GET /v1/reads/{uid} with uid "next", so a GET there
        // is 405 with Allow: POST rather than a lookup of a workitem called "next". Two
        // passes over the few routes of this length, comparing literals only, rather than
        // a list of every match with its parameters: routing a token lookup fell from 4.4
        // to 3.0 % of the node's CPU.
        var specific = -1
        for route in candidates where route.literals > specific && Self.literalsMatch(route.segments, parts) {
            specific = route.literals
        }
        var allowed: [String] = []
        for route in candidates where route.literals == specific && Self.literalsMatch(route.segments, parts) {
            let method = request.method == "HEAD" && route.method == "GET" ? "GET" : request.method
            guard route.method == method else {
                allowed.append(route.method)
                continue
            }
            return admit(route, &request, params: Self.parameters(route.segments, parts))
        }
        if !allowed.isEmpty {
            var response = HTTPError(405, "method_not_allowed", "Use one of: \(allowed.joined(separator: ", ")).").response
            response.headers.add("Allow", allowed.joined(separator: ", "))
            return .refused(response)
        }
        return .refused(HTTPError(404, "not_found", "No resource at this path.").response)
    }

    private func admit(_ route: Route, _ request: inout HTTPRequest, params: [String: String]) -> Resolution {
        if let roles = route.roles, request.isTLS || !route.plainListener {
            guard let peer = request.peer else {
                return .refused(HTTPError(401, "client_certificate_required",
                                          "This resource needs a client certificate with one of the roles: \(roles.sorted().joined(separator: ", ")).").response)
            }
            guard roles.contains(peer.role) else {
                return .refused(HTTPError(403, "role_forbidden",
                                          "Role '\(peer.role)' may not call \(route.method) on this resource; allowed roles: \(roles.sorted().joined(separator: ", ")).").response)
            }
        }
        request.pathParameters = params
        return .handler(route.handler)
    }

    /// The path's segments, empty ones (`//`, a trailing `/`) left out. By hand over the
    /// UTF-8: the standard library's `split` was 3 % of a token lookup's CPU.
    static func segments(of path: Substring) -> [Substring] {
        var parts: [Substring] = []
        parts.reserveCapacity(8)
        let utf8 = path.utf8
        var start = utf8.startIndex
        var i = start
        while i != utf8.endIndex {
            if utf8[i] == UInt8(ascii: "/") {
                if start != i { parts.append(path[start..<i]) }
                start = utf8.index(after: i)
            }
            i = utf8.index(after: i)
        }
        if start != utf8.endIndex { parts.append(path[start...]) }
        return parts
    }

    /// Whether every literal of `segments` is the part at its place. `routes` holds each
    /// route under its length, so the two have the same count.
    private static func literalsMatch(_ segments: [Segment], _ parts: [Substring]) -> Bool {
        for (segment, part) in zip(segments, parts) {
            if case .literal(let text) = segment, part != text { return false }
        }
        return true
    }

    /// The parameters of `parts` under `segments`, percent-decoded.
    private static func parameters(_ segments: [Segment], _ parts: [Substring]) -> [String: String] {
        var params: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            if case .parameter(let name) = segment { params[name] = percentDecode(part) }
        }
        return params
    }
}
