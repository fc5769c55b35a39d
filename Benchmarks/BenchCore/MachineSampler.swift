import Foundation

/// The whole machine's CPU time over a stage, from the `cpu` line of /proc/stat: how busy
/// it was, and how much of it the host took (steal). Why steal: on a virtual machine the
/// host may pause every vCPU for the rest of a scheduling period once the VM is over its
/// share, and it counts the VM's I/O emulation towards that share. Measured on the 2-core
/// machine these figures come from: two busy loops alone, no steal; with a loop of 4 KiB
/// `fdatasync`s beside them, 10 % steal and pauses of up to 15 ms, every one ending at the
/// same phase of a 100 ms cycle. Such a stage's p99 is the host's, not the server's, and
/// two builds run side by side are paused together, so a comparison cannot see it either.
public struct MachineSampler: Sendable {
    private let start: CPUTimes?

    public init() { start = CPUTimes.read() }

    /// Busy and steal as percentages of every CPU's time since `init`; nil without /proc.
    func end() -> StageResult.Machine? {
        guard let start, let now = CPUTimes.read() else { return nil }
        return now.since(start)
    }
}

/// The aggregate `cpu` line of /proc/stat, in clock ticks.
struct CPUTimes: Equatable {
    var busy = 0, idle = 0, steal = 0

    /// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`: guest time is
    /// already counted in user, so it is left out.
    init?(statLine line: Substring) {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.first == "cpu", fields.count >= 9 else { return nil }
        let n = fields[1...8].compactMap { Int($0) }
        guard n.count == 8 else { return nil }
        busy = n[0] + n[1] + n[2] + n[5] + n[6]
        idle = n[3] + n[4]
        steal = n[7]
    }

    static func read() -> CPUTimes? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first else { return nil }
        return CPUTimes(statLine: line)
    }

    func since(_ earlier: CPUTimes) -> StageResult.Machine? {
        let busy = self.busy - earlier.busy, steal = self.steal - earlier.steal
        let total = busy + (idle - earlier.idle) + steal
        guard total > 0 else { return nil }
        return StageResult.Machine(busyPercent: 100 * Double(busy) / Double(total), stealPercent: 100 * Double(steal) / Double(total))
    }
}
