#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file-system facts config loading needs, done with libc so the module needs no Foundation.
enum FileSystem {
    /// A config file is small text: anything larger is a mistake (or `/dev/zero`), refused before it is read.
    static let maximumConfigSize = 1 << 20

    /// The whole file, or why it is refused (SPEC §5 guarantee 19): it must be a regular file of at most
    /// `limit` bytes.
    ///
    /// `O_NONBLOCK` makes opening a FIFO return at once instead of waiting for a writer; `fstat` of the opened
    /// descriptor (not of the path) then judges the very file that would be read. At most `limit + 1` bytes
    /// are read, so a file that grows after the check still cannot make the process read without end.
    static func readFile(_ path: String, limit: Int = maximumConfigSize) -> Result<[UInt8], ReadFailure> {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(.system(errno)) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return .failure(.system(errno)) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { return .failure(.notRegular(kind: kind(of: status.st_mode))) }
        guard status.st_size <= off_t(limit) else { return .failure(.tooLarge(limit: limit)) }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while contents.count <= limit {
            let wanted = min(buffer.count, limit + 1 - contents.count)
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.system(errno))
            }
            if count == 0 { return .success(contents) }
            contents.append(contentsOf: buffer[0..<count])
        }
        return .failure(.tooLarge(limit: limit))
    }

    private static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a folder"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }

    enum ReadFailure: Error, CustomStringConvertible {
        case system(Int32)
        case notRegular(kind: String)
        case tooLarge(limit: Int)

        var description: String {
            switch self {
            case .system(let code): String(cString: strerror(code))
            case .notRegular(let kind): "it is \(kind), not a regular file"
            case .tooLarge(let limit): limit % (1 << 20) == 0
                ? "it is larger than \(limit >> 20) MiB, the most a config file may be"
                : "it is larger than \(limit) bytes, the most a config file may be"
            }
        }
    }

    static func currentDirectory() -> String {
        guard let pointer = getcwd(nil, 0) else { return "/" }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    /// `path` made absolute against `base` (itself absolute), with `~` expanded and normalized.
    static func absolute(_ path: String, relativeTo base: String) -> String {
        if path == "~" || path.hasPrefix("~/"), let home = homeDirectory() {
            return normalize(home + path.dropFirst())
        }
        return normalize(path.hasPrefix("/") ? path : base + "/" + path)
    }

    /// Removes `.`, `..`, repeated and trailing slashes from an absolute path. The directories need not exist yet
    /// (`init` creates them), so this is textual, except where `..` follows an existing path: there the kernel
    /// goes up from where that path really is, and so does this (`link/..` is the parent of the link's target).
    static func normalize(_ path: String, realPath: (String) -> String? = realPath(of:)) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                if !parts.isEmpty, let real = realPath("/" + parts.joined(separator: "/")) {
                    parts = real.split(separator: "/", omittingEmptySubsequences: true)
                }
                _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The path with every symlink resolved, or nil if some part of it does not exist.
    static func realPath(of path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    /// The directory that holds `path` (absolute, normalized).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    private static func homeDirectory() -> String? {
        guard let value = getenv("HOME") else { return nil }
        let home = String(cString: value)
        return home.isEmpty ? nil : home
    }
}
