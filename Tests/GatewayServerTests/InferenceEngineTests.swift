import ChildProcess
import Foundation
import GatewayNet
import Inference
import XCTest

/// The tests every `InferenceEngine` must pass (see its documentation). An engine's test
/// case subclasses this and returns it, connected and ready, from `makeEngine()`.
class InferenceEngineContract: XCTestCase {
    func makeEngine() async throws -> InferenceEngine? { nil }

    func engine() async throws -> InferenceEngine {
        guard let e = try await makeEngine() else { throw XCTSkip("the contract runs in subclasses") }
        return e
    }

    static let chestCT = InferenceInput(studyInstanceUID: "1.2.156.1.1", modalities: ["CT"], bodyPart: "CHEST")
    static let handDX = InferenceInput(studyInstanceUID: "1.2.156.1.2", modalities: ["DX"], bodyPart: "HAND")

    func testItDescribesItselfAndIsReady() async throws {
        let e = try await engine()
        XCTAssertFalse(e.descriptor.name.isEmpty)
        XCTAssertFalse(e.descriptor.version.isEmpty)
        let health = await e.health()
        XCTAssertTrue(health.ready, health.detail)
    }

    func testTheSameInputGetsTheSameUrgencyInRangeWithAJSONResult() async throws {
        let e = try await engine()
        for input in [Self.chestCT, Self.handDX] {
            let first = try await e.infer(input, deadline: .now + .seconds(5))
            let second = try await e.infer(input, deadline: .now + .seconds(5))
            XCTAssertEqual(first.urgency, second.urgency)
            XCTAssertTrue((0...1).contains(first.urgency))
            XCTAssertTrue((try? JSONSerialization.jsonObject(with: Data(first.result.utf8))) is [String: Any], first.result)
        }
    }

    func testAPassedDeadlineIsATimeoutAtOnce() async throws {
        let e = try await engine()
        let start = ContinuousClock.now
        do {
            _ = try await e.infer(Self.chestCT, deadline: .now - .milliseconds(1))
            XCTFail("no timeout")
        } catch {
            XCTAssertEqual(error, .timeout)
        }
        XCTAssertLessThan(ContinuousClock.now - start, .milliseconds(100))
    }
}

final class StubEngineTests: InferenceEngineContract {
    override func makeEngine() async throws -> InferenceEngine? { StubEngine() }

    func testConfiguredFailuresHitTheSameStudiesEveryTime() async throws {
        var settings = StubEngine.Settings()
        settings.failureRate = 0.5
        let stub = StubEngine(settings: settings)
        var failing: [Bool] = []
        for n in 0..<200 {
            let input = InferenceInput(studyInstanceUID: "1.2.\(n)", modalities: ["CT"], bodyPart: nil)
            let a = (try? await stub.infer(input, deadline: .now + .seconds(1))) == nil
            let b = (try? await stub.infer(input, deadline: .now + .seconds(1))) == nil
            XCTAssertEqual(a, b)
            failing.append(a)
        }
        XCTAssertTrue((60...140).contains(failing.filter { $0 }.count), "about half fail: \(failing.filter { $0 }.count)")
    }

    func testLatencyPastTheDeadlineIsATimeoutAtTheDeadline() async throws {
        var settings = StubEngine.Settings()
        settings.latencyMs = 1_000
        let start = ContinuousClock.now
        do {
            _ = try await StubEngine(settings: settings).infer(Self.chestCT, deadline: .now + .milliseconds(100))
            XCTFail("no timeout")
        } catch {
            XCTAssertEqual(error, .timeout)
        }
        let took = ContinuousClock.now - start
        XCTAssertTrue(took >= .milliseconds(95) && took < .milliseconds(400), "\(took)")
    }
}

/// The KServe v2 adapter against a real v2 server (Tests/clients/kserve_v2_server.py).
final class KServeEngineTests: InferenceEngineContract {
    var server: ChildProcess?
    var url = ""

    override func setUp() async throws {
        let p = try ChildProcess("/usr/bin/env", ["python3", TestNode.repoRoot + "/Tests/clients/kserve_v2_server.py"], stdout: .pipe)
        server = p
        var port = ""
        let handle = p.stdout!
        while !port.hasSuffix("\n"), let byte = try handle.read(upToCount: 1), !byte.isEmpty {
            port += String(decoding: byte, as: UTF8.self)
        }
        url = "http://127.0.0.1:\(port.trimmingCharacters(in: .whitespacesAndNewlines))"
    }

    override func tearDown() {
        if let server {
            server.signal(SIGKILL)
            server.wait()
        }
    }

    func settings() -> KServeEngine.Settings {
        var s = KServeEngine.Settings(url: url, model: "triage")
        s.breakerThreshold = 3
        s.breakerCooldownMs = 300
        s.backoffMs = 10
        return s
    }

    override func makeEngine() async throws -> InferenceEngine? {
        try await KServeEngine.connect(settings())
    }

    func control(_ json: String) async throws {
        let client = HTTPClient(configuration: HTTPClientConfiguration())
        let r = try await client.execute(HTTPRequest(method: "POST", target: "/control", headers: HTTPHeaders([("Content-Type", "application/json")]),
                                                     body: Array(json.utf8)), url: url + "/control")
        XCTAssertEqual(r.status, 200)
    }

    func inferences() async throws -> Int {
        let client = HTTPClient(configuration: HTTPClientConfiguration())
        let r = try await client.execute(HTTPRequest(method: "GET", target: "/stats"), url: url + "/stats")
        return (try JSONSerialization.jsonObject(with: Data(r.body)) as! [String: Any])["infer"] as! Int
    }

    func testTheModelsAnswerAndVersionComeThrough() async throws {
        let e = try await engine()
        XCTAssertEqual(e.descriptor, ModelDescriptor(name: "triage", version: "3", engine: "kserve-v2"))
        let chest = try await e.infer(Self.chestCT, deadline: .now + .seconds(5))
        let hand = try await e.infer(Self.handDX, deadline: .now + .seconds(5))
        XCTAssertEqual(chest.urgency, 0.9, accuracy: 1e-6)
        XCTAssertEqual(hand.urgency, 0.3, accuracy: 1e-6)
    }

    func testAModelWhoseInputDoesNotFitIsRefusedAtConnect() async throws {
        try await control("{\"input_shape\":[-1,4]}")
        do {
            _ = try await KServeEngine.connect(settings())
            XCTFail("connected to a model of the wrong shape")
        } catch {
            guard case .unavailable(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("shape [-1, 8]"), message)
        }
    }

    /// A burst of 500s: retried, then the breaker opens (no more requests reach the
    /// server), then after its cooldown a probe finds the server well and it closes.
    func testA500BurstOpensTheBreakerWhichThenRecovers() async throws {
        let e = try await engine()
        try await control("{\"fail\":100}")
        var errors: [InferenceError] = []
        for _ in 0..<5 {
            do { _ = try await e.infer(Self.chestCT, deadline: .now + .seconds(5)) } catch { errors.append(error) }
        }
        XCTAssertEqual(errors.count, 5)
        XCTAssertEqual(errors.first, .transient("the model server answered 500"))
        guard case .unavailable = errors.last else { return XCTFail("breaker not open: \(errors)") }
        let reached = try await inferences()
        XCTAssertEqual(reached, 3, "three failures open the breaker; the rest never reach the server")
        let health = await e.health()
        XCTAssertFalse(health.ready)
        try await control("{\"fail\":0}")
        try await Task.sleep(for: .milliseconds(350))
        let recovered = try await e.infer(Self.chestCT, deadline: .now + .seconds(5))
        XCTAssertEqual(recovered.urgency, 0.9, accuracy: 1e-6)
    }

    func testASlowModelTimesOutAtTheDeadline() async throws {
        let e = try await engine()
        try await control("{\"delay_ms\":1000}")
        let start = ContinuousClock.now
        do {
            _ = try await e.infer(Self.chestCT, deadline: .now + .milliseconds(200))
            XCTFail("no timeout")
        } catch {
            XCTAssertEqual(error, .timeout)
        }
        let took = ContinuousClock.now - start
        XCTAssertTrue(took >= .milliseconds(190) && took < .milliseconds(500), "\(took)")
    }
}
