import Foundation
import Synchronization
import XCTest

/// Where tests put their files: fresh paths under the temporary directory, removed when
/// what made them has passed and kept when it failed, for a look. Before this, each run
/// of `swift test` left some 300 node directories, databases and certificates in /tmp.
///
/// A path made while a test runs goes when that test ends; one made outside a test (a
/// class's `setUp`, a node shared by a class's tests) when its suite ends; one from
/// `processPath` when the whole run ends. Removing `prefix-UUID` removes every entry
/// whose name starts with it too: a database's `-wal` and `-shm`, its `-audit` file.
public enum Scratch {
    /// A fresh `prefix-UUID` under the temporary directory; nothing is made there.
    public static func path(_ prefix: String) -> String {
        let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        Cleaner.shared.keep(path, forRun: false)
        return path
    }

    /// As `path`, for a fixture made once and shared by every test of the process.
    public static func processPath(_ prefix: String) -> String {
        let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        Cleaner.shared.keep(path, forRun: true)
        return path
    }
}

/// Registered with XCTest the first time a path is asked for. Its callbacks come on the
/// thread that runs the tests, its `keep` from any thread (an async test's body).
final class Cleaner: XCTestObservation, @unchecked Sendable {
    static let shared: Cleaner = {
        let cleaner = Cleaner()
        XCTestObservationCenter.shared.addTestObserver(cleaner)
        return cleaner
    }()

    private struct State {
        var testRunning = false
        var test: [String] = []
        /// One list per suite begun since this observer was registered, innermost last.
        var suites: [[String]] = []
        var run: [String] = []
        var failed = false
    }

    private let state = Mutex(State())

    func keep(_ path: String, forRun: Bool) {
        state.withLock { s in
            if forRun || (!s.testRunning && s.suites.isEmpty) {
                s.run.append(path)
            } else if s.testRunning {
                s.test.append(path)
            } else {
                s.suites[s.suites.count - 1].append(path)
            }
        }
    }

    func testSuiteWillStart(_ testSuite: XCTestSuite) {
        state.withLock { $0.suites.append([]) }
    }

    func testCaseWillStart(_ testCase: XCTestCase) {
        state.withLock { $0.testRunning = true }
    }

    func testCaseDidFinish(_ testCase: XCTestCase) {
        finished(passed: testCase.testRun?.hasSucceeded ?? false) { s in
            s.testRunning = false
            defer { s.test = [] }
            return s.test
        }
    }

    func testSuiteDidFinish(_ testSuite: XCTestSuite) {
        finished(passed: testSuite.testRun?.hasSucceeded ?? false) { $0.suites.popLast() ?? [] }
    }

    func testBundleDidFinish(_ testBundle: Bundle) {
        let (paths, failed) = state.withLock { s in
            defer { s.run = [] }
            return (s.run, s.failed)
        }
        if !failed { Self.remove(paths) }
    }

    private func finished(passed: Bool, _ take: (inout State) -> [String]) {
        let paths = state.withLock { s in
            if !passed { s.failed = true }
            return take(&s)
        }
        if passed { Self.remove(paths) }
    }

    private static func remove(_ paths: [String]) {
        let files = FileManager.default
        for path in paths {
            let url = URL(fileURLWithPath: path)
            let directory = url.deletingLastPathComponent().path
            let name = url.lastPathComponent
            for entry in (try? files.contentsOfDirectory(atPath: directory)) ?? [] where entry.hasPrefix(name) {
                try? files.removeItem(atPath: directory + "/" + entry)
            }
        }
    }
}
