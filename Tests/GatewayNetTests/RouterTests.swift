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

    func testResolution() {
        var router = Router()
        router.add("GET", "/healthz", .inline { _ in HTTPResponse(status: 200, body: Array("health".utf8)) })
        router.add("POST", "/v1/reads/next", .inline { _ in HTTPResponse(status: 200, body: Array("next".utf8)) })
        router.add("GET", "/v1/reads/{uid}", .inline { r in HTTPResponse(status: 200, body: Array((r.pathParameters["uid"] ?? "").utf8)) })
        func body(_ method: String, _ target: String) -> String {
            var request = HTTPRequest(method: method, target: target)
            switch router.resolve(&request) {
            case .handler(.inline(let run)): return String(decoding: (try? run(request))?.body ?? [], as: UTF8.self)
            case .handler: return "?"
            case .refused(let response): return "\(response.status) \(response.headers["Allow"] ?? "")"
            }
        }
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
}
