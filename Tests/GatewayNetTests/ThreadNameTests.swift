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
}
