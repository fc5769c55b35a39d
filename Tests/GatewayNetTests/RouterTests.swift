@testable import GatewayNet
import XCTest

/// The router's fast paths (an exact path looked up by path then method; segments cut by
/// hand) must resolve exactly as matching every route segment by segment does.
final class RouterTests: XCTestCase {
    func testSegmentsAreWhatSplitGives() {
        for path in ["", "/", "//", "/healthz", "/healthz/", "//v1//patients/x/studies", "v1/a", "/v1/patients/v1:ab-_cd/studies",
                     "/dicomweb/studies/1.2.3/series", "/é/中/🩻"] {
            let target = Substring(path)
            XCTAssertEqual(Router.segments(of: target), target.split(separator: "/"), path)
        }
    }

    /// What an inline handler answered, or the refusal's status and Allow header.
    private static func body(_ router: Router, _ method: String, _ target: String) -> String {
        var request = HTTPRequest(method: method, target: target)
        switch router.resolve(&request) {
        case .handler(.inline(let run)): return String(decoding: (try? run(request))?.body ?? [], as: UTF8.self)
        case .handler: return "?"
        case .refused(let response): return "\(response.status) \(response.headers["Allow"] ?? "")"
        }
    }

    func testResolution() {
        var router = Router()
        router.add("GET", "/healthz", .inline { _ in HTTPResponse(status: 200, body: Array("health".utf8)) })
        router.add("POST", "/v1/reads/next", .inline { _ in HTTPResponse(status: 200, body: Array("next".utf8)) })
        router.add("GET", "/v1/reads/{uid}", .inline { r in HTTPResponse(status: 200, body: Array((r.pathParameters["uid"] ?? "").utf8)) })
        func body(_ method: String, _ target: String) -> String { Self.body(router, method, target) }
        XCTAssertEqual(body("GET", "/healthz"), "health")
        XCTAssertEqual(body("GET", "/healthz?x=1"), "health")
        XCTAssertEqual(body("GET", "/healthz/"), "health", "a trailing slash finds the same route")
        XCTAssertEqual(body("HEAD", "/healthz"), "health", "HEAD is served by GET")
        XCTAssertEqual(body("POST", "/healthz"), "405 GET")
        XCTAssertEqual(body("GET", "/v1/reads/1.2.3"), "1.2.3")
        XCTAssertEqual(body("GET", "/v1/reads/a%2Fb"), "a/b")
        XCTAssertEqual(body("POST", "/v1/reads/next"), "next")
        XCTAssertEqual(body("GET", "/v1/reads/next"), "405 POST", "the literal route owns its path")
        XCTAssertEqual(body("GET", "/v1/reads"), "404 ")
    }

    /// Routes of other lengths never match; among routes of the path's length, a literal
    /// after a parameter still decides, and only the matching route's parameters are bound.
    func testParametersComeFromTheRouteThatMatches() {
        var router = Router()
        func echo(_ name: String) -> RouteHandler {
            .inline { r in
                let params = r.pathParameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                return HTTPResponse(status: 200, body: Array((name + " " + params.joined(separator: ",")).utf8))
            }
        }
        router.add("GET", "/v1/patients/{token}/studies", echo("studies"))
        router.add("GET", "/v1/patients/{token}", echo("patient"))
        router.add("GET", "/v1/{a}/x/{b}", echo("x"))
        router.add("GET", "/v1/{c}/y/{d}", echo("y"))
        func body(_ target: String) -> String { Self.body(router, "GET", target) }
        XCTAssertEqual(body("/v1/patients/v1:t%41/studies"), "studies token=v1:tA")
        XCTAssertEqual(body("/v1/patients/v1:t"), "patient token=v1:t")
        XCTAssertEqual(body("/v1/patients/v1:t/series"), "404 ")
        XCTAssertEqual(body("/v1/p/y/q"), "y c=p,d=q")
        XCTAssertEqual(body("/v1/p/x/q?y=1"), "x a=p,b=q")
        XCTAssertEqual(body("/v1/p/z/q"), "404 ")
        XCTAssertEqual(body("/v1/patients/v1:t/studies/more"), "404 ")
    }
}
