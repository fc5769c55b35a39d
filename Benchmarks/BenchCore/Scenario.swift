import GatewayNet
import PatientTokens

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
                            body: SyntheticStudies.batch(n, size: 1000, unit: 0)), "/v1/index/studies")
    }

    /// A clinic's lookup of one synthetic patient's studies (native API).
    public static let tokenLookup = Scenario(name: "token-lookup", summary: "GET /v1/patients/{token}/studies") { n in
        let path = "/v1/patients/\(SyntheticStudies.token((n &* 7919) % SyntheticStudies.lookupPatients))/studies?purpose=TREAT"
        return (HTTPRequest(method: "GET", target: path), path)
    }

    /// The token lookup answered from the node's own store only (scope=local): the
    /// reference for cross-region lookups.
    public static let tokenLookupLocal = Scenario(name: "token-lookup-local",
                                                  summary: "GET /v1/patients/{token}/studies?scope=local") { n in
        let path = "/v1/patients/\(SyntheticStudies.token((n &* 7919) % SyntheticStudies.lookupPatients))/studies?purpose=TREAT&scope=local"
        return (HTTPRequest(method: "GET", target: path), path)
    }

    /// The repeat-examination check for a planned CT of the same synthetic patient: a
    /// ten-year window, so the patient's CTs are priors (the seed's studies are 2020–2024).
    public static let priorCheck = Scenario(name: "prior-check", summary: "GET /v1/patients/{token}/priors?modality=CT") { n in
        let path = "/v1/patients/\(SyntheticStudies.token((n &* 7919) % SyntheticStudies.lookupPatients))/priors?purpose=TREAT&modality=CT&days=3650"
        return (HTTPRequest(method: "GET", target: path), path)
    }

    public static let priorCheckLocal = Scenario(name: "prior-check-local",
                                                 summary: "GET /v1/patients/{token}/priors?modality=CT&scope=local") { n in
        let path = "/v1/patients/\(SyntheticStudies.token((n &* 7919) % SyntheticStudies.lookupPatients))/priors?purpose=TREAT&modality=CT&days=3650&scope=local"
        return (HTTPRequest(method: "GET", target: path), path)
    }

    /// The same patient lookup through QIDO-RS.
    public static let qidoLookup = Scenario(name: "qido-lookup", summary: "GET /dicomweb/studies?PatientID={token}") { n in
        let path = "/dicomweb/studies?PatientID=\(SyntheticStudies.token((n &* 7919) % SyntheticStudies.lookupPatients))&purpose=TREAT"
        return (HTTPRequest(method: "GET", target: path), path)
    }

    /// The same patient lookup through FHIR.
    public static let fhirLookup = Scenario(name: "fhir-lookup", summary: "GET /fhir/ImagingStudy?subject:identifier={token}") { n in
        let path = "/fhir/ImagingStudy?subject:identifier=\(SyntheticStudies.token((n &* 7919) % SyntheticStudies.lookupPatients))&purpose=TREAT"
        return (HTTPRequest(method: "GET", target: path), path)
    }

    /// A QIDO-RS search by one month and modality CT, at most 100 studies: the month is
    /// picked from the five synthetic years by n.
    public static let qidoMonthCT = Scenario(name: "qido-month-ct", summary: "GET /dicomweb/studies?StudyDate=<month>&ModalitiesInStudy=CT&limit=100") { n in
        let year = 2020 + n % 5, month = (n / 5) % 12 + 1
        let m = month < 10 ? "0\(month)" : "\(month)"
        let path = "/dicomweb/studies?StudyDate=\(year)\(m)01-\(year)\(m)28&ModalitiesInStudy=CT&limit=100&purpose=TREAT"
        return (HTTPRequest(method: "GET", target: path), path)
    }

    /// An agent's token-service call: 100 blinded elements (needs a token-client certificate).
    public static let tokenEvaluate100 = Scenario(name: "token-evaluate-100",
                                                  summary: "POST /v1/tokens/evaluate, 100 blinded elements") { n in
        let bodies = BlindedBatches.bodies
        return (HTTPRequest(method: "POST", target: "/v1/tokens/evaluate",
                            headers: HTTPHeaders([("Content-Type", "application/json")]), body: bodies[n % bodies.count]),
                "/v1/tokens/evaluate")
    }

    public static let all: [Scenario] = [healthz, upload1000, tokenLookup, tokenLookupLocal, priorCheck, priorCheckLocal, qidoLookup,
                                         fhirLookup, qidoMonthCT, tokenEvaluate100]

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

/// Synthetic, deterministic index data: study s always produces the same record, so
/// runs are comparable and a re-run updates rather than grows the index. Shapes: about
/// four studies per patient, dates over five years, a modality mix weighted like a
/// general hospital's, 200 storage units in 10 regions.
public enum SyntheticStudies {
    static let modalities = ["CT", "CT", "CT", "MR", "MR", "DX", "DX", "DX", "US", "MG", "PT", "NM", "XA"]
    static let regions = ["610100", "610300", "610400", "110100", "310100", "440100", "510100", "320100", "330100", "420100"]
    public static let storageUnitCount = 200
    /// Lookups pick patients below this, which a seed of 1 M studies (250 k patients) covers.
    public static let lookupPatients = 250_000

    /// Storage unit u: a valid unified social credit code. Unit 0 is the dev
    /// certificates' organization, so a dev hospital certificate may upload its studies.
    public static func storageUnit(_ u: Int) -> String {
        if u == 0 { return "91610000MA6TG0001A" }
        let alphabet = Array("0123456789ABCDEFGHJKLMNPQRTUWXY")
        let weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
        let body = Array("91" + regions[u % regions.count] + "MA" + String(format: "%07d", u))
        let sum = zip(body, weights).reduce(0) { $0 + alphabet.firstIndex(of: $1.0)! * $1.1 }
        return String(body) + String(alphabet[(31 - sum % 31) % 31])
    }

    /// A token for patient p: base64url of 32 bytes from a counter (not a VOPRF output,
    /// but the same shape).
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

    /// Study s of patient s / 4, in storage unit `unit` (default: spread over all units).
    public static func record(_ s: Int, unit: Int? = nil) -> String {
        let day = (s &* 2_654_435_761) % 1826
        let year = 2020 + day / 366, month = (day % 366) / 31 % 12 + 1, dom = day % 28 + 1
        let u = unit ?? (s % storageUnitCount)
        return "{\"patientToken\":\"\(token(s / 4))\",\"studyInstanceUID\":\"1.2.156.600.\(u).\(s)\","
            + "\"accessionNumber\":\"A\(s)\",\"studyDate\":\"\(year)\(pad(month))\(pad(dom))\",\"studyTime\":\"\(pad(s % 24))3000\","
            + "\"modalitiesInStudy\":[\"\(modalities[s % modalities.count])\"],\"numberOfStudyRelatedInstances\":\(s % 900 + 1),"
            + "\"storageUnit\":\"\(storageUnit(u))\",\"retrieveURL\":\"https://pacs\(u).example/dicomweb\","
            + "\"region\":\"\(regions[u % regions.count])\"}"
    }

    static func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// Studies [n × size, (n + 1) × size), NDJSON, gzipped. `unit` pins them to one
    /// storage unit (a hospital uploads only its own).
    public static func batch(_ n: Int, size: Int, unit: Int? = nil) -> [UInt8] {
        studies(from: n * size, count: size, unit: unit)
    }

    /// Studies [from, from + count), NDJSON, gzipped.
    public static func studies(from: Int, count: Int, unit: Int? = nil) -> [UInt8] {
        let lines = (from..<(from + count)).map { record($0, unit: unit) }
        return Gzip.compress(Array(lines.joined(separator: "\n").utf8), level: 1)
    }
}

/// Request bodies of 100 real blinded elements each, made once: the service's cost per
/// element does not depend on which point it is, so 32 bodies are cycled.
enum BlindedBatches {
    static let bodies: [[UInt8]] = {
        // The P-256 generator: any valid point serves, the service never sees it.
        let generator = "A2sX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW"
        let client = try! VOPRFClient(publicKey: Base64URL.decode(generator)!)
        return (0..<32).map { b in
            let batch = try! client.blind((0..<100).map { Array("imaging-gateway/v1/resident-id|bench-\(b)-\($0)".utf8) })
            let elements = batch.blindedElements.map { "\"\(Base64URL.encode($0))\"" }.joined(separator: ",")
            return Array("{\"blindedElements\":[\(elements)]}".utf8)
        }
    }()
}
