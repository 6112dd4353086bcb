#if canImport(Glibc)
import Glibc
#endif
import CLinuxShims
import OrchestratorCore

/// An absolute path as bytes. File names are bytes on Linux; keeping them as bytes end to end is what
/// lets a name with invalid UTF-8 be claimed, run and moved intact.
public struct PathBytes: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }

    public func appending(_ relative: RelativePath) -> PathBytes {
        relative.bytes.isEmpty ? self : PathBytes(bytes + [UInt8(ascii: "/")] + relative.bytes)
    }

    public var parent: PathBytes {
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return PathBytes(".") }
        return slash == 0 ? PathBytes("/") : PathBytes(Array(bytes[..<slash]))
    }

    /// The name after the last `/`.
    public var lastComponent: [UInt8] {
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return bytes }
        return Array(bytes[(slash + 1)...])
    }

    public var description: String { String(decoding: bytes, as: UTF8.self) }

    /// Calls `body` with a NUL-terminated copy of the path.
    public func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        var terminated = bytes
        terminated.append(0)
        return try terminated.withUnsafeBufferPointer { buffer in
            try buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { try body($0) }
        }
    }
}

/// A failed system call, with the path it concerned; renders as one line.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32
    public init(_ operation: String, _ path: String, _ code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }
    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

public struct FileStatus: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case regular
        case directory
        case symlink
        case fifo = "FIFO"
        case socket
        case characterDevice = "character device"
        case blockDevice = "block device"
        case unknown
    }

    public var size: Int64
    public var modified: Int64  // nanoseconds since the epoch
    public var device: UInt64
    public var inode: UInt64
    public var kind: Kind
    /// Hard links to the inode: more than one right after it arrives means it was linked in, not written.
    public var linkCount: UInt64

    public var isRegular: Bool { kind == .regular }
    public var isDirectory: Bool { kind == .directory }
    public var isSymlink: Bool { kind == .symlink }

    /// What the inbox takes in: every entry but folders. Only regular files reach a worker; the others are
    /// claimed without being opened and go to Failed/ (guarantee 10).
    public var isInboxEntry: Bool { kind != .directory }

    public init(size: Int64, modified: Int64, device: UInt64, inode: UInt64, kind: Kind, linkCount: UInt64 = 1) {
        self.size = size
        self.modified = modified
        self.device = device
        self.inode = inode
        self.kind = kind
        self.linkCount = linkCount
    }

    static func kind(of mode: mode_t) -> Kind {
        switch mode & S_IFMT {
        case S_IFREG: .regular
        case S_IFDIR: .directory
        case S_IFLNK: .symlink
        case S_IFIFO: .fifo
        case S_IFSOCK: .socket
        case S_IFCHR: .characterDevice
        case S_IFBLK: .blockDevice
        default: .unknown
        }
    }
}

extension Optional where Wrapped == FileStatus {
    /// The same file (device and inode) as `other`; two missing files are the same.
    public func isSame(as other: FileStatus?) -> Bool { self?.device == other?.device && self?.inode == other?.inode }
}

public enum FileSystem {
    public static func status(_ path: PathBytes) -> FileStatus? {
        var info = stat()
        let result = path.withCString { lstat($0, &info) }
        guard result == 0 else { return nil }
        return FileStatus(
            size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
            device: UInt64(info.st_dev),
            inode: UInt64(info.st_ino),
            kind: FileStatus.kind(of: info.st_mode),
            linkCount: UInt64(info.st_nlink))
    }

    public static func exists(_ path: PathBytes) -> Bool { status(path) != nil }

    /// `mkdir -p`.
    public static func createDirectories(_ path: PathBytes) throws(SystemError) {
        if let existing = status(path) {
            if existing.isDirectory { return }
            // A symlink to a folder is that folder (Done on another disk); `config check` has made sure it
            // is not another of the instance's folders.
            var target = stat()
            if existing.isSymlink, path.withCString({ stat($0, &target) }) == 0, (target.st_mode & S_IFMT) == S_IFDIR { return }
            throw SystemError("mkdir", path.description, EEXIST)
        }
        let parent = path.parent
        if parent != path && parent.bytes != [UInt8(ascii: "/")] {
            try createDirectories(parent)
        }
        let result = path.withCString { mkdir($0, 0o755) }
        if result != 0 && errno != EEXIST { throw SystemError("mkdir", path.description) }
    }

    public enum RenameResult: Equatable, Sendable {
        case moved
        case destinationExists
        case sourceMissing
    }

    /// Renames without ever replacing an existing destination (renameat2 RENAME_NOREPLACE).
    public static func renameNoReplace(_ source: PathBytes, _ destination: PathBytes) throws(SystemError) -> RenameResult {
        let result = source.withCString { from in
            destination.withCString { to in orch_renameat2_noreplace(AT_FDCWD, from, AT_FDCWD, to) }
        }
        if result == 0 { return .moved }
        switch errno {
        case EEXIST: return .destinationExists
        case ENOENT where exists(destination.parent): return .sourceMissing
        case EINVAL, ENOSYS, ENOTSUP:
            // The filesystem takes no rename flags (NFS, many FUSE filesystems): link() never replaces either.
            return try linkThenUnlink(source, destination)
        default: throw SystemError("rename \(source) to", destination.description)
        }
    }

    /// No-replace rename without renameat2: a hard link (which fails if the name exists), then the old name
    /// goes. Where there are no hard links either, a plain rename after checking the name is free.
    private static func linkThenUnlink(_ source: PathBytes, _ destination: PathBytes) throws(SystemError) -> RenameResult {
        let linked = source.withCString { from in destination.withCString { to in link(from, to) } }
        if linked == 0 {
            if source.withCString({ unlink($0) }) != 0 && errno != ENOENT {
                let error = SystemError("unlink", source.description)
                _ = destination.withCString { unlink($0) }  // One name, as before, rather than two.
                throw error
            }
            return .moved
        }
        switch errno {
        case EEXIST:
            // The same inode under both names: a crash between link and unlink; finish it.
            if let from = status(source), let to = status(destination), from.inode == to.inode, from.device == to.device {
                if source.withCString({ unlink($0) }) != 0 && errno != ENOENT { throw SystemError("unlink", source.description) }
                return .moved
            }
            return .destinationExists
        case ENOENT where exists(destination.parent): return .sourceMissing
        case EPERM, ENOTSUP, EOPNOTSUPP, EMLINK, EXDEV:
            if exists(destination) { return .destinationExists }
            let renamed = source.withCString { from in destination.withCString { to in rename(from, to) } }
            if renamed == 0 { return .moved }
            if errno == ENOENT, exists(destination.parent) { return .sourceMissing }
            throw SystemError("rename \(source) to", destination.description)
        default:
            throw SystemError("link \(source) to", destination.description)
        }
    }

    /// Moves `source` to `root/relative`, creating subfolders; when the name is taken, tries
    /// `stem~TAG.ext`, then `stem~TAG-2.ext` ... so nothing is ever overwritten. Returns the name used.
    /// See `FileMover` for names too long for a suffix, folders taken by files and other filesystems.
    public static func moveAvoidingCollisions(
        _ source: PathBytes, into root: PathBytes, as relative: RelativePath, tag: String
    ) throws(SystemError) -> RelativePath? {
        try FileMover.move(source, into: root, as: relative, tag: tag)
    }

    /// Free space for unprivileged users and the size of the filesystem holding `path`, in bytes.
    public static func space(_ path: PathBytes) -> (free: UInt64, total: UInt64)? {
        var info = statvfs()
        guard path.withCString({ statvfs($0, &info) }) == 0 else { return nil }
        return (UInt64(info.f_bavail) * UInt64(info.f_frsize), UInt64(info.f_blocks) * UInt64(info.f_frsize))
    }

    /// Makes the entries of a directory durable (after renames into it).
    public static func syncDirectory(_ path: PathBytes) {
        let fd = path.withCString { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// Resolves symlinks and `..`; nil if the path does not exist.
    public static func realPath(_ path: PathBytes) -> PathBytes? {
        guard let resolved = path.withCString({ realpath($0, nil) }) else { return nil }
        defer { free(resolved) }
        return PathBytes(Array(UnsafeBufferPointer(start: resolved, count: strlen(resolved))).map { UInt8(bitPattern: $0) })
    }

    /// Removes an empty directory; silently keeps one that is not empty.
    public static func removeEmptyDirectory(_ path: PathBytes) {
        _ = path.withCString { rmdir($0) }
    }

    public static func writeFile(_ path: PathBytes, _ contents: [UInt8], mode: mode_t = 0o644, exclusive: Bool = true) throws(SystemError) {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC)
        let fd = path.withCString { open($0, flags, mode) }
        guard fd >= 0 else { throw SystemError("create", path.description) }
        defer { close(fd) }
        var offset = 0
        while offset < contents.count {
            let written = contents[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemError("write", path.description)
            }
            offset += written
        }
    }

    public static func readFile(_ path: PathBytes, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < limit {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            result.append(contentsOf: buffer[..<count])
        }
        return result
    }

    /// The last `count` bytes of a file.
    public static func readTail(_ path: PathBytes, count: Int) -> [UInt8] {
        guard let size = status(path)?.size else { return [] }
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        let start = max(0, size - Int64(count))
        var buffer = [UInt8](repeating: 0, count: Int(size - start))
        let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
        return got > 0 ? Array(buffer[..<got]) : []
    }
}
