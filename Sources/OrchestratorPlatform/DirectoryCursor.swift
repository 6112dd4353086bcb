#if canImport(Glibc)
import Glibc
#endif
import OrchestratorCore

/// A file (regular or symlink) found by a scan, relative to the scanned root.
public struct ScannedFile: Sendable, Equatable {
    public var path: RelativePath
    public var status: FileStatus
}

/// Walks a directory tree a few entries at a time.
///
/// The directory listing is the source of truth for what waits in Inbox, but a backlog can hold tens of
/// thousands of names: reading it in slices keeps memory flat however many files wait.
public final class DirectoryCursor {
    private struct Level {
        let handle: OpaquePointer
        let relative: RelativePath
    }

    private let root: PathBytes
    private let recursive: Bool
    private let skipDirectory: (RelativePath) -> Bool
    private var stack: [Level] = []
    public private(set) var isFinished = false
    /// Entries whose path is longer than the system allows (PATH_MAX), which no path-based call can reach: their
    /// count, and the first few, relative to the root.
    public private(set) var tooLongCount = 0
    public private(set) var tooLong: [RelativePath] = []

    /// `skipDirectory` is asked for each subdirectory (the processing area, hidden folders).
    public init(root: PathBytes, recursive: Bool, skipDirectory: @escaping (RelativePath) -> Bool) {
        self.root = root
        self.recursive = recursive
        self.skipDirectory = skipDirectory
        if let handle = root.withCString({ opendir($0) }) {
            stack.append(Level(handle: handle, relative: RelativePath([])))
        } else {
            isFinished = true
        }
    }

    deinit {
        for level in stack { closedir(level.handle) }
    }

    /// Up to `limit` regular files; an empty result means the walk is complete.
    public func next(limit: Int) -> [ScannedFile] {
        var found: [ScannedFile] = []
        while found.count < limit, let top = stack.last {
            guard let entry = readdir(top.handle) else {
                closedir(top.handle)
                stack.removeLast()
                continue
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> [UInt8] in
                let bytes = raw.bindMemory(to: UInt8.self)
                let length = bytes.firstIndex(of: 0) ?? bytes.count
                return Array(bytes[..<length])
            }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            let relative = top.relative.appending(name)
            guard let status = FileSystem.status(root.appending(relative)) else {
                if errno == ENAMETOOLONG { noteTooLong(relative) }
                continue
            }
            if status.isDirectory {
                guard recursive, !skipDirectory(relative) else { continue }
                guard let handle = root.appending(relative).withCString({ opendir($0) }) else {
                    if errno == ENAMETOOLONG { noteTooLong(relative) }
                    continue
                }
                stack.append(Level(handle: handle, relative: relative))
            } else if status.isInboxEntry {
                found.append(ScannedFile(path: relative, status: status))
            }
        }
        if stack.isEmpty { isFinished = true }
        return found
    }

    private func noteTooLong(_ relative: RelativePath) {
        tooLongCount += 1
        if tooLong.count < 3 { tooLong.append(relative) }
    }
}
