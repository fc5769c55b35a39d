import ArgumentParser
import CGatewayShims
import Foundation
import GatewayServer
import IndexStore

/// `imaging-gateway backup`: a copy of a node's data directory a node can start from,
/// taken while it runs (or stopped). The databases go through SQLiteBackup (consistent,
/// index before audit, a new outbox epoch); the other files (keys, certificates) are
/// copied with their modes. The copy is built in `<to>.partial`, synced, and renamed into
/// place: a directory named `<to>` is always a whole backup.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a node's data directory, consistently, while it runs or with it stopped.",
        discussion: """
            Restore: stop the node, put the copy where its data directory was, start it. The \
            restored node's witnesses hold checkpoints of a longer log than the copy's and will \
            refuse its next ones until their operator forgets them (Protocols/audit.md, \
            "Witnesses"); a regional node sends its outbox again from the backup's moment.
            """)
    @OptionGroup var location: NodeLocation
    @Option(help: "Where to put the copy: a directory that does not exist yet.") var to: String

    /// Files of the data directory the copy does not take as files: the databases (copied
    /// through SQLite), the lock, and leftovers of writes a crash interrupted.
    private static func skipped(_ name: String) -> Bool {
        name.hasPrefix("index.sqlite") || name.hasPrefix("index-audit.sqlite") || name == "node.lock" || name.hasSuffix(".tmp")
    }

    func run() throws {
        let cfg = try location.resolved()
        let data = cfg.dataDirectory
        let index = try location.existingDatabase(cfg)
        let files = FileManager.default
        guard !files.fileExists(atPath: to) else { throw ValidationError("\(to) exists; name a directory that does not") }
        let staging = to + ".partial"
        try? files.removeItem(atPath: staging)
        try files.createDirectory(atPath: staging, withIntermediateDirectories: true)
        // Held, no node can start on the directory while it is copied; refused, a node runs
        // and its files are read through read-only connections.
        let lock = try? DataDirectoryLock(directory: data)
        let copied: SQLiteBackup.Copied
        do {
            copied = try SQLiteBackup.copy(index: index, into: staging, owned: lock != nil)
        } catch {
            throw ValidationError("backup failed: \(error)")
        }
        var others = 0
        for name in try files.contentsOfDirectory(atPath: data).sorted() where !Self.skipped(name) {
            others += try copyTree(data + "/" + name, to: staging + "/" + name)
        }
        // Keys configured outside the data directory go into the copy under their default
        // names: without the audit key a restored node would sign with a new one.
        for (path, name) in [(cfg.auditKeyFile, "audit-key.pem"), (cfg.tokenKeyFile, "token-keys.json")]
        where !path.hasPrefix(data + "/") && files.fileExists(atPath: path) && !files.fileExists(atPath: staging + "/" + name) {
            others += try copyTree(path, to: staging + "/" + name)
            print("copied \(path) as \(name)")
        }
        try sync(staging)
        guard rename(staging, to) == 0 else { throw ValidationError("cannot rename \(staging) to \(to): \(String(cString: strerror(errno)))") }
        let parent = URL(fileURLWithPath: to).deletingLastPathComponent().path
        guard gw_sync_directory(parent) == 0 else { throw ValidationError("cannot sync \(parent)") }
        withExtendedLifetime(lock) {}
        print("backed up \(data) \(lock == nil ? "from the running node " : "")into \(to): \(copied.studies) studies, "
              + "\(copied.auditEvents) audit events, \(others) other files; check it with "
              + "`imaging-gateway audit verify --data-dir \(to)`")
    }

    /// Copies a file (with its mode, synced) or a directory's files; how many files.
    private func copyTree(_ source: String, to destination: String) throws -> Int {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else { return 0 }
        if isDirectory.boolValue {
            try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
            var n = 0
            for name in try FileManager.default.contentsOfDirectory(atPath: source).sorted() where !name.hasSuffix(".tmp") {
                n += try copyTree(source + "/" + name, to: destination + "/" + name)
            }
            return n
        }
        let mode = (try FileManager.default.attributesOfItem(atPath: source)[.posixPermissions] as? Int) ?? 0o600
        let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
        let failure = bytes.withUnsafeBytes { gw_publish_file(destination, $0.baseAddress, $0.count, UInt32(mode & 0o777), 0) }
        guard failure == 0 else { throw ValidationError("cannot write \(destination): \(String(cString: strerror(failure)))") }
        return 1
    }

    /// fsync of the databases' copies (SQLite wrote them; the other files were published
    /// synced) and of every directory of the copy.
    private func sync(_ directory: String) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            if isDirectory.boolValue {
                try sync(path)
            } else if Self.skipped(name) {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                defer { if fd >= 0 { close(fd) } }
                guard fd >= 0, fsync(fd) == 0 else { throw ValidationError("cannot sync \(path): \(String(cString: strerror(errno)))") }
            }
        }
        guard gw_sync_directory(directory) == 0 else { throw ValidationError("cannot sync \(directory)") }
    }
}
