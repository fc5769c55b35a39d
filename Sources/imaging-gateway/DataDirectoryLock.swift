import Foundation

/// One process at a time owns a node's data directory: `serve`, and the offline commands
/// that open its store (`gather requeue`, `keys purge`, and `audit verify` and `audit
/// export` when no node runs), each take an exclusive `flock` on `<data-dir>/node.lock`
/// before opening it, and refuse when someone holds it (the audit commands then read
/// through a read-only connection instead). Opening the store writes even for a command
/// that only reads: it migrates, and it files audit leaves a crash left between the
/// index's commit and the audit file's, which beside a running node would race the
/// node's own writer for them.
///
/// Why: the serving node keeps state about its database in memory that assumes it is the
/// database's only writer (readers keep a snapshot across commits that only append audit
/// leaves, the gatherer learns of new outbox rows from its own commits), and its writer
/// would meet another process's long transactions as SQLITE_BUSY on acknowledged work. Two
/// nodes serving one directory would also share one audit log's sequence numbers.
///
/// The kernel drops a `flock` when its holder exits, however it exits (SIGKILL, power
/// loss on reboot), so there is never a stale lock to clear by hand; the pid written into
/// the file is only for the refusal's message.
final class DataDirectoryLock {
    enum Failure: Error, CustomStringConvertible {
        case held(directory: String, pid: String?)
        case cannotOpen(path: String, errno: Int32)

        var description: String {
            switch self {
            case .held(let directory, let pid):
                let holder = pid.map { "process \($0)" } ?? "another process"
                return "\(directory) is in use by \(holder) (a running node?); stop it first"
            case .cannotOpen(let path, let errno):
                return "cannot open \(path): \(String(cString: strerror(errno)))"
            }
        }
    }

    private let fd: Int32

    /// Takes the lock or throws at once; never waits for a holder.
    init(directory: String) throws(Failure) {
        let path = directory + "/node.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotOpen(path: path, errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw .held(directory: directory, pid: holder?.isEmpty == false ? holder : nil)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        self.fd = fd
    }

    deinit { close(fd) }
}
