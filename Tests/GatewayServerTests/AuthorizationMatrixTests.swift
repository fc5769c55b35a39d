import Foundation
import TestScratch
import XCTest

/// Every route × every role, and no certificate at all: a role a route names is let
/// through (whatever the handler then says), any other role gets 403, no certificate
/// gets 401 — except on the routes meant for anyone. Real TLS, real curl.
final class AuthorizationMatrixTests: XCTestCase {
    static let roles = ["hospital", "clinic", "reader", "ai-worker", "node", "operator", "token-client"]
    static let lookup: Set<String> = ["clinic", "reader", "node", "operator"]
    static let viewers: Set<String> = ["clinic", "reader", "ai-worker", "operator"]
    static let token = "v1:" + String(repeating: "A", count: 42) + "Q"

    /// (method, path, allowed roles; nil = anyone, no certificate needed)
    static let routes: [(String, String, Set<String>?)] = [
        ("POST", "/v1/index/studies", ["hospital", "node"]),
        ("GET", "/v1/patients/\(token)/studies?purpose=TREAT", lookup),
        ("GET", "/dicomweb/studies?PatientID=\(token)&purpose=TREAT", lookup),
        ("GET", "/dicomweb/studies/1.2.3/series?purpose=TREAT", lookup),
        ("GET", "/fhir/ImagingStudy?subject:identifier=\(token)&purpose=TREAT", lookup),
        ("POST", "/v1/tokens/evaluate", ["token-client"]),
        ("GET", "/v1/tokens/keys", ["token-client", "hospital", "clinic", "reader", "node", "operator"]),
        ("GET", "/v1/audit/checkpoint", ["operator", "node"]),
        ("GET", "/v1/audit/proof/inclusion?index=0&treeSize=1", ["operator", "node"]),
        ("GET", "/v1/audit/proof/consistency?first=1&second=1", ["operator", "node"]),
        ("GET", "/v1/audit/usage", ["operator", "node"]),
        ("GET", "/metrics", ["operator"]),
        ("GET", "/v1/patients/\(token)/priors?purpose=TREAT&modality=CT", ["clinic", "hospital", "reader"]),
        ("GET", "/v1/supervision/repeats?from=2026-01&to=2026-02", ["operator"]),
        ("POST", "/dicomweb/workitems", ["clinic"]),
        ("GET", "/dicomweb/workitems", viewers),
        ("GET", "/dicomweb/workitems/1.2.3", viewers),
        ("GET", "/v1/reads/1.2.3", viewers),
        ("PUT", "/dicomweb/workitems/1.2.3/state", ["reader", "ai-worker"]),
        ("POST", "/dicomweb/workitems/1.2.3/cancelrequest", ["clinic", "operator"]),
        ("POST", "/v1/reads/next", ["reader", "ai-worker"]),
        ("POST", "/v1/reads/1.2.3/heartbeat", ["reader", "ai-worker"]),
        ("POST", "/v1/reads/1.2.3/ai-result", ["ai-worker"]),
        ("GET", "/v1/reads/dead-letters", ["operator"]),
        ("POST", "/v1/reads/1.2.3/redrive", ["operator"]),
        ("GET", "/healthz", nil),
        ("GET", "/readyz", nil),
        ("GET", "/fhir/metadata", nil),
    ]

    func testEveryRouteByEveryRole() throws {
        let node = try TestNode { $0.tokens.service = true }
        defer { node.stop() }
        var wrong: [String] = []
        for (method, path, allowed) in Self.routes {
            let body = method != "GET" ? ["-H", "Content-Type: application/json", "--data-binary", "[]"] : []
            for role in Self.roles + ["none"] {
                let args = ["-X", method] + body + [node.baseURL + path]
                let status: Int
                if role == "none" {
                    let p = TestProcess.run("/usr/bin/env", ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                                            "--cacert", node.certs + "/ca.pem"] + args)
                    status = Int(p.output.suffix(3)) ?? 0
                } else {
                    status = node.curl(role, args).status
                }
                let expected: String
                switch (allowed, role) {
                case (nil, _): expected = "served"
                case (_, "none"): expected = "401"
                case (let roles?, _) where roles.contains(role): expected = "served"
                default: expected = "403"
                }
                let ok = expected == "served" ? ![0, 401, 403].contains(status) : String(status) == expected
                if !ok { wrong.append("\(method) \(path) as \(role): \(status), expected \(expected)") }
            }
        }
        XCTAssertEqual(wrong, [], wrong.joined(separator: "\n"))
    }

    /// Every route with a certificate that must not be taken — another CA's, a revoked one,
    /// an expired one — gets no HTTP answer at all: the handshake fails before routing.
    func testEveryRouteRefusesWrongCARevokedAndExpiredCertificates() throws {
        let work = Scratch.path("matrix-certs")
        let org = "91610000MA6TG0001A"
        for (dir, code) in [(work + "/ours", org), (work + "/other", "91110000MA00000001")] {
            let made = TestProcess.run("/bin/bash", [TestNode.repoRoot + "/Certs/make-dev-certs.sh", dir, code])
            XCTAssertEqual(made.status, 0, made.output)
        }
        let expired = TestProcess.run("/bin/bash", ["-c", """
            set -e; cd "\(work)/ours"
            openssl ecparam -name prime256v1 -genkey -noout -out expired-clinic-key.pem
            openssl req -new -key expired-clinic-key.pem -subj "/CN=dev expired clinic" -out expired-clinic.csr
            SAN="URI:urn:imaging-gateway:clinic:\(org)" openssl ca -batch -config ca.cnf -extensions leaf_ext \
              -startdate 20200101000000Z -enddate 20200201000000Z -in expired-clinic.csr -out expired-clinic.pem -notext 2>/dev/null
            """])
        XCTAssertEqual(expired.status, 0, expired.output)
        let ours = work + "/ours"
        let node = try TestNode { c in
            c.tls.certificate = ours + "/node.pem"
            c.tls.privateKey = ours + "/node-key.pem"
            c.tls.clientCA = ours + "/ca.pem"
            c.tls.crl = ours + "/crl.pem"
        }
        defer { node.stop() }
        let bad = [("another CA", work + "/other/clinic"), ("revoked", ours + "/revoked-clinic"), ("expired", ours + "/expired-clinic")]
        XCTAssertEqual(TestProcess.curl(certs: ours, "clinic", [node.baseURL + "/healthz"]).status, 200, "a good certificate is served")
        var answered: [String] = []
        for (method, path, _) in Self.routes {
            for (name, cert) in bad {
                let p = TestProcess.run("/usr/bin/env", ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--http1.1",
                                                        "--cacert", ours + "/ca.pem", "--cert", cert + ".pem", "--key", cert + "-key.pem",
                                                        "-X", method, node.baseURL + path])
                let status = Int(p.output.suffix(3)) ?? 0
                if status != 0 { answered.append("\(method) \(path) with a certificate \(name): \(status)") }
            }
        }
        XCTAssertEqual(answered, [], answered.joined(separator: "\n"))
    }
}
