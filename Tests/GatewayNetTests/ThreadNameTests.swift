import Foundation
import XCTest

/// An operator finds the server's threads by name in `top -H`, `ps -L` and perf.
final class ThreadNameTests: XCTestCase {
    func testLoopThreadsCarryTheirNamesInTheKernel() throws {
        let s = try TestServer()
        defer { s.stop() }
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")
        let names = Set(tasks.compactMap {
            try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        })
        XCTAssertTrue(names.contains("gateway.tls"), "\(names.sorted())")
        XCTAssertTrue(names.contains("gateway.loop.0"), "\(names.sorted())")
    }

    /// An `immediate` route answers with `atOnce` when it answers (or throws), and with its
    /// task when `atOnce` gives nil.
    func testAnImmediateRouteAnswersAtOnceOrLeavesItToItsTask() throws {
        let s = try TestServer()
        defer { s.stop() }
        for (what, status, body) in [("here", "200", "{\"by\":\"atOnce\"}"), ("refused", "409", "refused_at_once"),
                                     ("later", "200", "{\"by\":\"task\"}")] {
            let (text, _) = RawClient(port: s.plainPort).exchange("GET /at-once/\(what) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 \(status) "), "\(what): \(text)")
            XCTAssertTrue(text.contains(body), "\(what): \(text)")
        }
    }

    /// An `awaiting` or `immediate` handler's task runs on a loop's thread, and resumes
    /// there after it waits; an `async` one runs on the cooperative pool, never on a loop.
    func testAwaitingHandlersRunOnTheLoopAndAsyncOnesDoNot() throws {
        let s = try TestServer()
        defer { s.stop() }
        for (path, onLoop) in [("/thread/awaiting", true), ("/thread/immediate", true), ("/thread/async", false)] {
            let (text, _) = RawClient(port: s.plainPort).exchange("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let body = text.components(separatedBy: "\r\n\r\n").last ?? ""
            let names = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: String] ?? [:]
            XCTAssertEqual(names.count, 2, text)
            for (when, name) in names {
                XCTAssertEqual(name.hasPrefix("gateway.loop."), onLoop, "\(path) \(when): \(name)")
            }
        }
    }
}
