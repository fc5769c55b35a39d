import Foundation

/// Samples a server process's CPU and RSS from /proc/PID every 200 ms during a stage.
public final class ProcessSampler: @unchecked Sendable {
    private let pid: Int32
    private let lock = NSLock()
    private var timer: DispatchSourceTimer?
    private var startTicks = 0
    private var startTime = Date()
    private var rssMax = 0

    public init(pid: Int32) {
        self.pid = pid
    }

    func begin() {
        lock.withLock {
            startTicks = cpuTicks()
            startTime = Date()
            rssMax = rss()
        }
        let t = DispatchSource.makeTimerSource(queue: .global())
        t.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
        t.setEventHandler { [self] in
            let r = rss()
            lock.withLock { rssMax = max(rssMax, r) }
        }
        t.activate()
        timer = t
    }

    func end() -> StageResult.Server {
        timer?.cancel()
        timer = nil
        return lock.withLock {
            let elapsed = Date().timeIntervalSince(startTime)
            let ticks = Double(cpuTicks() - startTicks) / Double(sysconf(Int32(_SC_CLK_TCK)))
            return StageResult.Server(cpuPercent: elapsed > 0 ? 100 * ticks / elapsed : 0, rssKiBMax: max(rssMax, rss()))
        }
    }

    /// utime + stime, fields 14 and 15 of /proc/PID/stat (after the parenthesized name).
    private func cpuTicks() -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let u = Int(fields[11]), let s = Int(fields[12]) else { return 0 }
        return u + s
    }

    private func rss() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}
