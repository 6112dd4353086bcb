#if canImport(Glibc)
import Glibc
#endif
@preconcurrency import Dispatch
import OrchestratorCore

/// What the kernel told us about the watched tree. Events are hints: the directory listing stays the
/// truth, which is why an overflow only asks for a rescan.
public enum WatchEvent: Sendable, Equatable {
    /// Renamed into place: complete by construction.
    case renamedIn(RelativePath)
    /// Closed after writing: complete unless it is written again.
    case closedAfterWrite(RelativePath)
    /// Opened (for writing or reading: the kernel does not say which until the close). Right after `created`, its
    /// creator's open; a hard link brings none.
    case opened(RelativePath)
    /// Closed after reading only.
    case closedWithoutWrite(RelativePath)
    /// Written to (the writer may still hold it open).
    case modified(RelativePath)
    /// A new entry that is not a folder: a file opened for writing, a hard link (`link()`, which brings
    /// no other event), a symlink, a FIFO or a socket.
    case created(RelativePath)
    /// A subdirectory appeared (recursive mode): watch it and scan it.
    case directoryAppeared(RelativePath)
    /// The kernel queue overflowed: some events were lost.
    case overflow
    /// The watched root was deleted or moved away.
    case rootGone
}

public struct WatchError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// Raw inotify (`inotify_init1(IN_NONBLOCK|IN_CLOEXEC)`) read on the dispatcher's queue, through its event
/// loop when given one (a burst's events then wake the thread already waiting for workers), else through a
/// DispatchSource: no thread of its own, no global state, and the fd never leaks into workers.
public final class InotifyWatcher: @unchecked Sendable {  // confined to `queue`
    private let fd: Int32
    private let root: PathBytes
    private let queue: DispatchQueue
    private var source: (any DispatchSourceRead)?
    private var loop: EventLoop?
    private var registration: EventLoop.Registration?
    private var directories: [Int32: RelativePath] = [:]
    private let handler: ([WatchEvent]) -> Void
    private var buffer = [UInt8](repeating: 0, count: 65536)

    private static let fileMask = UInt32(
        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_ONLYDIR | IN_CREATE | IN_OPEN | IN_CLOSE_NOWRITE)
    private static let rootMask = fileMask | UInt32(IN_DELETE_SELF | IN_MOVE_SELF)

    /// EMFILE means either limit: this process's open files (`ulimit -n`) or the user's inotify instances. Said as the
    /// one that is reached (it blamed the inotify limit at `ulimit -n 24`, with 1 of 128 instances in use).
    static func cannotCreate(errno code: Int32, fileLimitReached: Bool) -> String {
        guard code == EMFILE else { return "cannot create an inotify instance: \(String(cString: strerror(code)))" }
        return fileLimitReached
            ? "cannot create an inotify instance: this process has as many files open as its limit allows (raise ulimit -n / LimitNOFILE=)"
            : "cannot create an inotify instance: limit reached (raise fs.inotify.max_user_instances)"
    }

    /// Whether this process's descriptors are (all but) used up: the lowest free fd is at the soft limit.
    static func atOpenFileLimit() -> Bool {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        let probe = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if probe < 0 { return errno == EMFILE }
        close(probe)
        return rlim_t(probe) + 1 >= limit.rlim_cur
    }

    public init(
        root: PathBytes, queue: DispatchQueue, loop: EventLoop? = nil, handler: @escaping ([WatchEvent]) -> Void
    ) throws(WatchError) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            let code = errno
            throw WatchError(description: Self.cannotCreate(errno: code, fileLimitReached: code == EMFILE && Self.atOpenFileLimit()))
        }
        self.fd = fd
        self.root = root
        self.queue = queue
        self.handler = handler
        do {
            try addWatch(RelativePath([]))
        } catch {
            close(fd)
            throw error
        }
        if let loop {
            do {
                registration = try loop.add(fd) { [weak self] in self?.drain() }
                self.loop = loop
            } catch {
                close(fd)
                throw WatchError(description: error.description)
            }
            return
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [unowned self] in self.drain() }
        source.setCancelHandler { close(fd) }
        source.resume()
        self.source = source
    }

    /// Watches a subdirectory (recursive mode). Watch-limit errors name the sysctl to raise.
    public func addWatch(_ relative: RelativePath) throws(WatchError) {
        let mask = relative.bytes.isEmpty ? Self.rootMask : Self.fileMask
        let wd = root.appending(relative).withCString { inotify_add_watch(fd, $0, mask) }
        guard wd >= 0 else {
            let code = errno
            let path = root.appending(relative).description
            switch code {
            case ENOSPC:
                throw WatchError(description: "cannot watch \(path): inotify watch limit reached (raise fs.inotify.max_user_watches)")
            case EMFILE:
                throw WatchError(description: "cannot watch \(path): too many open files")
            default:
                throw WatchError(description: "cannot watch \(path): \(String(cString: strerror(code)))")
            }
        }
        directories[wd] = relative
    }

    public func cancel() {
        source?.cancel()
        source = nil
        if let registration {
            loop?.remove(registration)
            close(fd)
            self.registration = nil
        }
    }

    private func drain() {
        var events: [WatchEvent] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            buffer.withUnsafeBytes { raw in parse(raw.prefix(count), into: &events) }
        }
        if !events.isEmpty { handler(events) }
    }

    private func parse(_ raw: UnsafeRawBufferPointer.SubSequence, into events: inout [WatchEvent]) {
        let headerSize = MemoryLayout<inotify_event>.size
        var offset = raw.startIndex
        while offset + headerSize <= raw.endIndex {
            let wd = raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let length = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            let nameBytes = raw[(offset + headerSize)..<(offset + headerSize + length)]
            let name = Array(nameBytes.prefix { $0 != 0 })
            offset += headerSize + length

            if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                events.append(.overflow)
                continue
            }
            guard let directory = directories[wd] else { continue }
            if mask & UInt32(IN_IGNORED) != 0 {
                directories[wd] = nil
                if directory.bytes.isEmpty { events.append(.rootGone) }
                continue
            }
            if mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                if directory.bytes.isEmpty { events.append(.rootGone) }
                continue
            }
            guard !name.isEmpty else { continue }
            let path = directory.appending(name)
            if mask & UInt32(IN_ISDIR) != 0 {
                if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 { events.append(.directoryAppeared(path)) }
            } else if mask & UInt32(IN_MOVED_TO) != 0 {
                events.append(.renamedIn(path))
            } else if mask & UInt32(IN_CREATE) != 0 {
                events.append(.created(path))
            } else if mask & UInt32(IN_CLOSE_WRITE) != 0 {
                events.append(.closedAfterWrite(path))
            } else if mask & UInt32(IN_MODIFY) != 0 {
                events.append(.modified(path))
            } else if mask & UInt32(IN_OPEN) != 0 {
                events.append(.opened(path))
            } else if mask & UInt32(IN_CLOSE_NOWRITE) != 0 {
                events.append(.closedWithoutWrite(path))
            }
        }
    }
}
