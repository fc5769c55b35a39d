import ArgumentParser
import Foundation

extension AsyncParsableCommand {
    /// ArgumentParser's entry point, except for the way out: output flushed, then `_exit`.
    ///
    /// Why: a command ends while threads of its own may still be at work — HTTP client
    /// loops closing TLS connections, a node's background tasks finishing their last pass —
    /// and `exit` would run OpenSSL's atexit clean-up and the C++ runtime's static
    /// destructors under them. Once in CI that crashed `gateway-agent` after an upload it
    /// had already recorded as done, its summary cut by a backtrace.
    ///
    /// What must stay true for a command that uses it: everything it must keep is written
    /// and closed (or, for the node, committed and synced) before `run` returns, because
    /// nothing registered with `atexit` runs afterwards.
    public static func runThenExit() async -> Never {
        let status: Int32
        do {
            var command = try await asyncParseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            status = 0
        } catch {
            let code = exitCode(for: error)
            let text = fullMessage(for: error)
            if code == .success {
                print(text)
            } else if !text.isEmpty {
                FileHandle.standardError.write(Data((text + "\n").utf8))
            }
            status = code.rawValue
        }
        fflush(nil)
        _exit(status)
    }
}
