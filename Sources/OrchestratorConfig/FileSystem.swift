#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file-system facts config loading needs, done with libc so the module needs no Foundation.
enum FileSystem {
    /// The whole file, or the reason (strerror) it could not be read.
    static func readFile(_ path: String) -> Result<[UInt8], ReadFailure> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(ReadFailure(errno: errno)) }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(errno: errno))
            }
            if count == 0 { return .success(contents) }
            contents.append(contentsOf: buffer[0..<count])
        }
    }

    struct ReadFailure: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { String(cString: strerror(errno)) }
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

    /// Removes `.`, `..`, repeated and trailing slashes from an absolute path, purely
    /// textually: the directories need not exist yet (`init` creates them).
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
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

    /// Whether `name` is an IANA zone this machine can use: a TZif file under /usr/share/zoneinfo.
    ///
    /// The magic check rejects the non-zone files that live there too (`zone.tab`, `tzdata.zi`).
    static func isTimeZone(_ name: String, zoneDirectory: String = "/usr/share/zoneinfo") -> Bool {
        if name == "UTC" { return true }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"),
              !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return false }
        let descriptor = open(zoneDirectory + "/" + name, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return false }
        var magic = [UInt8](repeating: 0, count: 4)
        let count = magic.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, 4) }
        return count == 4 && magic == Array("TZif".utf8)
    }
}
