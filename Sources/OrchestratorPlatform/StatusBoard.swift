#if canImport(Glibc)
import Glibc
#endif

/// A small file the daemon rewrites in place to tell other processes what the store cannot: that it is
/// paused because the disk is full. Its blocks are allocated when the daemon starts, so writing it later
/// needs no new space.
public final class StatusBoard: @unchecked Sendable {  // used on the dispatcher's queue only
    public static let size = 4096
    private let fd: Int32
    public let path: PathBytes

    /// Creates (or reuses) the file at full size; nil if that is not possible right now.
    public init?(path: PathBytes) {
        let fd = path.withCString { open($0, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { return nil }
        guard posix_fallocate(fd, 0, off_t(Self.size)) == 0 else {
            close(fd)
            return nil
        }
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// The file at `path` is still this board's (not removed with its folder, or replaced).
    public var isInPlace: Bool {
        var open = stat()
        var named = stat()
        guard fstat(fd, &open) == 0, path.withCString({ lstat($0, &named) }) == 0 else { return false }
        return open.st_dev == named.st_dev && open.st_ino == named.st_ino
    }

    /// Replaces the content with `text` (cut to fit), padded with newlines.
    @discardableResult
    public func post(_ text: String) -> Bool {
        var bytes = Array(text.utf8.prefix(Self.size - 1))
        bytes += [UInt8](repeating: UInt8(ascii: "\n"), count: Self.size - bytes.count)
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return written == Self.size && fdatasync(fd) == 0
    }

    /// The posted text, trimmed; nil if the file cannot be read.
    public static func read(_ path: PathBytes) -> String? {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: size)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        // Trimmed as bytes: the board is padded with about 4,000 newlines, and trimming them as Characters
        // (grapheme by grapheme) cost the HTTP API's status a tenth of its time.
        let padding: Set<UInt8> = [UInt8(ascii: "\n"), 0, UInt8(ascii: " ")]
        var end = count
        while end > 0, padding.contains(buffer[end - 1]) { end -= 1 }
        var start = 0
        while start < end, padding.contains(buffer[start]) { start += 1 }
        return String(decoding: buffer[start..<end], as: UTF8.self)
    }
}
