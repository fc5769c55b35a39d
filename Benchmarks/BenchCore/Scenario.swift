import GatewayNet

/// One kind of request the harness can send. A scenario is a small value: its name, and
/// how to make its n-th request. Features add theirs to `Scenarios.all` as they land.
public struct Scenario: Sendable {
    public let name: String
    public let summary: String
    /// The n-th request and its path (with query) on the target.
    public let makeRequest: @Sendable (Int) -> (request: HTTPRequest, path: String)

    public init(name: String, summary: String, makeRequest: @escaping @Sendable (Int) -> (request: HTTPRequest, path: String)) {
        self.name = name
        self.summary = summary
        self.makeRequest = makeRequest
    }
}

public enum Scenarios {
    public static let healthz = Scenario(name: "healthz", summary: "GET /healthz: the transport alone") { _ in
        (HTTPRequest(method: "GET", target: "/healthz"), "/healthz")
    }

    public static let all: [Scenario] = [healthz]

    public static func named(_ name: String) -> Scenario? { all.first { $0.name == name } }
}

/// A weighted mix of scenarios, `healthz:3,lookup:1`, picked deterministically: request n
/// goes to the scenario whose share of the weight cycle n falls into.
public struct ScenarioMix: Sendable {
    public let entries: [(scenario: Scenario, weight: Int)]
    private let cycle: [Int]

    public init(_ entries: [(scenario: Scenario, weight: Int)]) {
        self.entries = entries
        cycle = entries.enumerated().flatMap { Array(repeating: $0.offset, count: max(1, $0.element.weight)) }
    }

    public enum ParseError: Error, CustomStringConvertible {
        case unknown(String)
        case badWeight(String)

        public var description: String {
            switch self {
            case .unknown(let n): return "unknown scenario '\(n)'; known: \(Scenarios.all.map(\.name).joined(separator: ", "))"
            case .badWeight(let w): return "bad weight in '\(w)'"
            }
        }
    }

    public static func parse(_ text: String) throws(ParseError) -> ScenarioMix {
        var entries: [(scenario: Scenario, weight: Int)] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard let scenario = Scenarios.named(String(parts[0])) else { throw .unknown(String(parts[0])) }
            let weight = parts.count > 1 ? Int(parts[1]) : 1
            guard let weight, weight > 0 else { throw .badWeight(String(item)) }
            entries.append((scenario, weight))
        }
        guard !entries.isEmpty else { throw .unknown(text) }
        return ScenarioMix(entries)
    }

    public var name: String { entries.map { "\($0.scenario.name):\($0.weight)" }.joined(separator: ",") }

    public func request(_ n: Int) -> (request: HTTPRequest, path: String) {
        entries[cycle[n % cycle.count]].scenario.makeRequest(n)
    }
}
