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

    /// A hospital's upload of 1 000 studies, gzipped NDJSON (needs a hospital certificate
    /// whose organization is the first synthetic storage unit, as the dev certificates are).
    public static let upload1000 = Scenario(name: "upload-1000", summary: "POST /v1/index/studies, 1 000 records, gzip") { n in
        let headers = HTTPHeaders([("Content-Type", "application/x-ndjson"), ("Content-Encoding", "gzip")])
        return (HTTPRequest(method: "POST", target: "/v1/index/studies", headers: headers,
                            body: SyntheticStudies.batch(n, size: 1000)), "/v1/index/studies")
    }

    /// A clinic's lookup of one synthetic patient's studies (native API).
    public static let tokenLookup = Scenario(name: "token-lookup", summary: "GET /v1/patients/{token}/studies") { n in
        let path = "/v1/patients/\(SyntheticStudies.token((n &* 7919) % 250_000))/studies?purpose=TREAT"
        return (HTTPRequest(method: "GET", target: path), path)
    }

    public static let all: [Scenario] = [healthz, upload1000, tokenLookup]

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

/// Synthetic, deterministic index data: request n always produces the same records, so
/// runs are comparable and re-runs update rather than grow the index.
public enum SyntheticStudies {
    static let modalities = ["CT", "CT", "CT", "MR", "MR", "DX", "DX", "DX", "US", "MG", "PT", "NM", "XA"]
    static let storageUnits = ["91610000MA6TG0001A", "12610000435200100J", "91110000100000000R"]

    /// A token for patient p: base64url of 32 bytes from a counter (not a real VOPRF
    /// output, but the same shape).
    public static func token(_ patient: Int) -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var x = UInt64(truncatingIfNeeded: patient) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        for i in 0..<32 {
            x ^= x >> 33
            x = x &* 0xFF51_AFD7_ED55_8CCD
            bytes[i] = UInt8(truncatingIfNeeded: x >> 24)
        }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out = [UInt8]()
        var bits = 0, acc = 0
        for b in bytes {
            acc = (acc << 8) | Int(b)
            bits += 8
            while bits >= 6 { bits -= 6; out.append(alphabet[(acc >> bits) & 63]) }
        }
        out.append(alphabet[(acc << (6 - bits)) & 63])
        return "v1:" + String(decoding: out, as: UTF8.self)
    }

    /// Study s: patient s / 4 (several studies per patient), dates over five years,
    /// storage unit and modality from fixed mixes, region 610100.
    public static func record(_ s: Int) -> String {
        let day = s % 1826
        let year = 2020 + day / 365, month = (day % 365) / 31 + 1, dom = (day % 31) % 28 + 1
        let storage = storageUnits[s % storageUnits.count]
        return "{\"patientToken\":\"\(token(s / 4))\",\"studyInstanceUID\":\"1.2.156.600.\(s)\","
            + "\"accessionNumber\":\"A\(s)\",\"studyDate\":\"\(year)\(pad(month))\(pad(dom))\",\"studyTime\":\"\(pad(s % 24))3000\","
            + "\"modalitiesInStudy\":[\"\(modalities[s % modalities.count])\"],\"numberOfStudyRelatedInstances\":\(s % 900 + 1),"
            + "\"storageUnit\":\"\(storage)\",\"retrieveURL\":\"https://pacs\(s % 3).example/dicomweb\",\"region\":\"610100\"}"
    }

    static func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// Batch n of `size` records, NDJSON, gzipped. Records belong to storage unit 0 only,
    /// so one hospital certificate may upload them all.
    public static func batch(_ n: Int, size: Int) -> [UInt8] {
        let lines = (0..<size).map { i -> String in
            let s = (n * size + i) * storageUnits.count
            return record(s)
        }
        return Gzip.compress(Array(lines.joined(separator: "\n").utf8), level: 1)
    }
}
