#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a file, held for the life of the process (one daemon per state dir, one
/// running sweep per kind).
///
/// POSIX record locks (`F_SETLK`) rather than `flock`: another process can ask who holds one
/// (`F_GETLK`) without taking it, so `status` never makes a starting daemon fail with "locked".
/// The kernel drops the lock when the holder dies, however it dies.
public final class InstanceLock: @unchecked Sendable {  // `fd` changes only in `keepInPlace`, on one thread
    public let path: String
    /// Replaced only by `keepInPlace`, which one thread calls (the daemon's dispatcher).
    private var fd: Int32
    private let shared: Bool
    /// The pid and role line the file holds.
    private let record: [UInt8]

    public enum Outcome {
        case acquired(InstanceLock)
        case heldBy(pid: Int32?)
    }

    /// `role` is written beside the pid, so that others can tell who holds it (`holderRole`). `shared`: a read
    /// lock, which other shared holders may hold at the same time and an exclusive one may not (the holder last
    /// to take it is the one whose role the file names).
    public static func acquire(_ path: String, role: String = "", shared: Bool = false) throws(SystemError) -> Outcome {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("open lock", path) }
        var request = flock()
        request.l_type = Int16(shared ? F_RDLCK : F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        if fcntl(fd, F_SETLK, &request) != 0 {
            let code = errno
            close(fd)
            if code == EAGAIN || code == EACCES { return .heldBy(pid: holder(path)) }
            throw SystemError("lock", path, code)
        }
        let record = Array((role.isEmpty ? "\(getpid())\n" : "\(getpid()) \(role)\n").utf8)
        // Written over the old content, then cut to length: the file is never empty.
        _ = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        _ = ftruncate(fd, off_t(record.count))
        return .acquired(InstanceLock(path: path, fd: fd, shared: shared, record: record))
    }

    /// The pid of the live holder, or nil when nobody holds the lock.
    public static func holder(_ path: String) -> Int32? { heldLock(path)?.l_pid }

    /// A lock someone holds on the file (F_GETLK for an exclusive one: any lock conflicts); nil when none.
    private static func heldLock(_ path: String) -> flock? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var query = flock()
        query.l_type = Int16(F_WRLCK)
        query.l_whence = Int16(SEEK_SET)
        guard fcntl(fd, F_GETLK, &query) == 0, query.l_type != Int16(F_UNLCK) else { return nil }
        return query
    }

    /// Whether the lock is held shared (a read lock: the daemons of one shared store), not exclusively; nil when
    /// nobody holds it. Shared holders are several: the pid `holder` reports is any one of them, and the file names
    /// the one that took it last, so the two need not match.
    public static func isHeldShared(_ path: String) -> Bool? {
        heldLock(path).map { $0.l_type == Int16(F_RDLCK) }
    }

    /// The role line the file holds, whoever wrote it ("" when it names none); nil when unreadable.
    public static func writtenRole(_ path: String) -> (pid: Int32, role: String)? {
        guard let line = firstLine(path) else { return nil }
        let parts = line.split(separator: " ", maxSplits: 1)
        guard let pid = parts.first.flatMap({ Int32($0) }) else { return nil }
        return (pid, parts.count > 1 ? String(parts[1]) : "")
    }

    /// The file's first line ("" when empty); nil when it cannot be opened.
    private static func firstLine(_ path: String) -> Substring? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return "" }
        return String(decoding: buffer[..<n], as: UTF8.self).split(separator: "\n").first ?? ""
    }

    /// What the live holder wrote as its role: nil when nobody holds the lock or when the file does not
    /// (yet) carry the holder's pid (it has just taken the lock); "" when it gave no role.
    public static func holderRole(_ path: String) -> String? {
        guard let pid = holder(path), let line = firstLine(path) else { return nil }
        guard !line.isEmpty else { return "" }
        let parts = line.split(separator: " ", maxSplits: 1)
        guard parts.first.flatMap({ Int32($0) }) == pid else { return nil }
        return parts.count > 1 ? String(parts[1]) : ""
    }

    /// Where the lock file stands now, from `keepInPlace`.
    public enum Placement: Equatable, Sendable {
        /// The path still names the file this process locked.
        case inPlace
        /// The file was removed (by hand, by a temporary-file cleaner) or replaced by one nobody locks: this
        /// process's file, lock and all, is back under its name, so the next process to try it is kept out again.
        case putBack
        /// Replaced by a file another process holds a lock on: someone took the lock meanwhile.
        case takenBy(pid: Int32?)
        /// Removed or replaced, and it could not be put back (the errno's text).
        case lost(String)
    }

    /// A record lock belongs to the file, not to its name: once the name is removed, the next process to open the path
    /// makes a new file and locks it unhindered. Called from time to time (the daemon's watchdog sweep), this puts a
    /// locked file back under the name when it is gone: a new one (a removed file cannot be linked again), locked and
    /// written before it takes the name in one rename, so no one finds it there unlocked.
    public func keepInPlace() -> Placement {
        var mine = stat()
        var there = stat()
        guard fstat(fd, &mine) == 0 else { return .inPlace }
        let exists = stat(path, &there) == 0
        if exists, there.st_dev == mine.st_dev, there.st_ino == mine.st_ino { return .inPlace }
        if exists, let taken = Self.heldLock(path) {
            // Daemons of one shared store hold it together: one of them locking the new file keeps the others out.
            if shared, taken.l_type == Int16(F_RDLCK) { return .inPlace }
            return .takenBy(pid: taken.l_pid)
        }
        let staging = "\(path).restore-\(getpid())"
        unlink(staging)
        let fresh = open(staging, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fresh >= 0 else { return .lost(SystemError("open", staging).description) }
        var request = flock()
        request.l_type = Int16(shared ? F_RDLCK : F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        let written = record.withUnsafeBytes { pwrite(fresh, $0.baseAddress, $0.count, 0) }
        guard fcntl(fresh, F_SETLK, &request) == 0, written == record.count else {
            let failure = SystemError("lock", staging)
            close(fresh)
            unlink(staging)
            return .lost(failure.description)
        }
        guard rename(staging, path) == 0 else {
            let failure = SystemError("rename \(staging) to", path)
            close(fresh)
            unlink(staging)
            return .lost(failure.description)
        }
        close(fd)
        fd = fresh
        return .putBack
    }

    private init(path: String, fd: Int32, shared: Bool, record: [UInt8]) {
        self.path = path
        self.fd = fd
        self.shared = shared
        self.record = record
    }

    deinit { close(fd) }
}
