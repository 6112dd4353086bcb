#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on a file, held for the life of the process (one daemon per state dir, one
/// running sweep per kind).
///
/// POSIX record locks (`F_SETLK`) rather than `flock`: another process can ask who holds one
/// (`F_GETLK`) without taking it, so `status` never makes a starting daemon fail with "locked".
/// The kernel drops the lock when the holder dies, however it dies.
public final class InstanceLock: @unchecked Sendable {  // immutable after init
    public let path: String
    private let fd: Int32

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
        let pid = Array((role.isEmpty ? "\(getpid())\n" : "\(getpid()) \(role)\n").utf8)
        // Written over the old content, then cut to length: the file is never empty.
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        _ = ftruncate(fd, off_t(pid.count))
        return .acquired(InstanceLock(path: path, fd: fd))
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

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }
}
