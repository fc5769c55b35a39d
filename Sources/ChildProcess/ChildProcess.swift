import CChildProcess
import Foundation
import Glibc

/// A program the tests or gateway-bench start: a real peer (curl, openssl, python3, grep),
/// one of our own binaries, or git. It replaces Foundation's `Process`, whose `run()` crashed the test process on
/// Linux (see child_process.c); it does less: no run loop, no notifications, the exit status
/// by `waitpid(2)`.
public final class ChildProcess: @unchecked Sendable {
    /// Where a standard stream of the child goes.
    public enum Output: Sendable {
        /// The test process's own stream.
        case inherit
        /// /dev/null.
        case discard
        /// A pipe whose read end is `stdout` or `stderr`.
        case pipe
        /// A file at this path, created or truncated.
        case file(String)
        /// Standard error only: wherever standard output goes.
        case sameAsStdout
    }

    public enum SpawnError: Error, CustomStringConvertible {
        case failed(executable: String, errno: Int32)
        case cannotOpen(path: String, errno: Int32)

        public var description: String {
            switch self {
            case .failed(let executable, let code): "cannot start \(executable): \(String(cString: strerror(code)))"
            case .cannotOpen(let path, let code): "cannot open \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    public let pid: pid_t
    /// The read end of standard output when it is `.pipe`.
    public let stdout: FileHandle?
    /// The read end of standard error when it is `.pipe`.
    public let stderr: FileHandle?
    /// The write end of standard input when `input` was true; close it to send EOF.
    public let stdin: FileHandle?
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` (an absolute path) with `arguments`, in `environment` (default:
    /// this process's).
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                input: Bool = false, stdout out: Output = .inherit, stderr err: Output = .inherit) throws {
        var parentEnds: [Int32] = []
        var childEnds: [Int32] = []
        defer { childEnds.forEach { _ = close($0) } }
        func pipeEnds() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            let rc = child_process_pipe(&fds)
            guard rc == 0 else { throw SpawnError.failed(executable: executable, errno: rc) }
            return (fds[0], fds[1])
        }
        func target(_ output: Output, stdoutFD: Int32) throws -> (child: Int32, parent: Int32?) {
            switch output {
            case .inherit: return (-1, nil)
            case .sameAsStdout: return (stdoutFD == -1 ? 1 : stdoutFD, nil)
            case .discard, .file:
                var path = "/dev/null"
                if case .file(let p) = output { path = p }
                let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw SpawnError.cannotOpen(path: path, errno: errno) }
                childEnds.append(fd)
                return (fd, nil)
            case .pipe:
                let ends = try pipeEnds()
                childEnds.append(ends.write)
                parentEnds.append(ends.read)
                return (ends.write, ends.read)
            }
        }
        var inFD: Int32 = -1
        var inWrite: Int32?
        if input {
            // A child that exits without reading its input must not kill the test process.
            Glibc.signal(SIGPIPE, SIG_IGN)
            let ends = try pipeEnds()
            childEnds.append(ends.read)
            inFD = ends.read
            inWrite = ends.write
        }
        let o = try target(out, stdoutFD: -1)
        let e = try target(err, stdoutFD: o.child)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let rc = child_process_spawn(executable, argv, envp, inFD, o.child, e.child, &child)
        guard rc == 0 else {
            parentEnds.forEach { _ = close($0) }
            if let inWrite { close(inWrite) }
            throw SpawnError.failed(executable: executable, errno: rc)
        }
        pid = child
        stdout = o.parent.map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) }
        stderr = e.parent.map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) }
        stdin = inWrite.map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) }
    }

    /// Waits for the child to end: its exit status, or 128 + the signal that ended it.
    @discardableResult
    public func wait() -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        exitStatus = Self.decode(status)
        return exitStatus!
    }

    /// Whether the child has not ended yet (reaping it if it has).
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if exitStatus != nil { return false }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return true }
        exitStatus = Self.decode(status)
        return false
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// SIGTERM.
    public func terminate() { signal(SIGTERM) }

    private static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Runs to the end, writing `input` to its standard input: the exit status and what it
    /// wrote to standard output and error, each read as it comes (a child filling one pipe
    /// while the other is read would otherwise stall). The reads block, so each has a
    /// thread of its own: on Dispatch's global queue they held the threads Swift
    /// concurrency runs on, and an in-process server's handlers waited (about 0.8 s, until
    /// Dispatch added a thread) behind the child they were serving.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           input: Data? = nil, mergeStderr: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try ChildProcess(executable, arguments, environment: environment, input: input != nil,
                                     stdout: .pipe, stderr: mergeStderr ? .sameAsStdout : .pipe)
        let group = DispatchGroup()
        let collected = Collected()
        for (index, handle) in [child.stdout, child.stderr].enumerated() {
            guard let handle else { continue }
            group.enter()
            Thread.detachNewThread {
                collected.set(index, handle.readDataToEndOfFile())
                group.leave()
            }
        }
        if let input, let stdin = child.stdin {
            stdin.write(input)
            try? stdin.close()
        }
        group.wait()
        let status = child.wait()
        return (status, String(decoding: collected.get(0), as: UTF8.self), String(decoding: collected.get(1), as: UTF8.self))
    }

    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var data = [Data(), Data()]
        func set(_ i: Int, _ d: Data) { lock.lock(); data[i] = d; lock.unlock() }
        func get(_ i: Int) -> Data { lock.lock(); defer { lock.unlock() }; return data[i] }
    }
}
