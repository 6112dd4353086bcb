import CLinuxShims
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// Many file descriptors behind one dispatch source: an epoll instance of our own, whose fd is
/// the only one libdispatch watches.
///
/// Every worker has three fds (pidfd, stdout, stderr). As separate `DispatchSource`s each one is
/// registered, fired and cancelled through libdispatch's manager thread, a cross-thread round
/// trip per step; a burst of short workers then spends more CPU waking threads than running
/// them. Here adding and removing an fd is one `epoll_ctl` on the calling thread, and one
/// wake-up of `queue` reports every fd that became ready meanwhile.
///
/// Level-triggered: an fd left unread is reported again on the next round. `@unchecked
/// Sendable`: touched only on `queue`.
final class ReadinessPoller: @unchecked Sendable {
    private let queue: DispatchQueue
    private let epollFD: Int32
    private var source: (any DispatchSourceRead)?
    private var handlers: [UInt64: () -> Void] = [:]
    private var nextToken: UInt64 = 1
    private var roundScheduled = false
    /// Ready fds handled per round before other work on `queue` gets a turn.
    private static let roundSize: Int32 = 64

    struct Registration: Hashable {
        let fd: Int32
        let token: UInt64
    }

    init(queue: DispatchQueue) throws(SpawnError) {
        self.queue = queue
        epollFD = orch_epoll_create()
        guard epollFD >= 0 else {
            let e = errno
            throw SpawnError(errno: e, description: "cannot create an epoll instance: \(String(cString: strerror(e)))")
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: epollFD, queue: queue)
        source.setEventHandler { [weak self] in self?.round() }
        // The fd is closed only once libdispatch has stopped watching it.
        source.setCancelHandler { [epollFD] in close(epollFD) }
        source.resume()
        self.source = source
    }

    deinit {
        source?.cancel()
    }

    /// Calls `handler` on `queue` whenever `fd` is readable, hung up or in error, until `remove`.
    func add(_ fd: Int32, handler: @escaping () -> Void) throws(SpawnError) -> Registration {
        dispatchPrecondition(condition: .onQueue(queue))
        let token = nextToken
        nextToken += 1
        guard orch_epoll_add(epollFD, fd, token) == 0 else {
            let e = errno
            throw SpawnError(errno: e, description: "cannot watch a worker's fd (epoll_ctl): \(String(cString: strerror(e)))")
        }
        handlers[token] = handler
        return Registration(fd: fd, token: token)
    }

    /// Stops watching; the caller closes the fd right afterwards, which takes it out of the epoll set (no
    /// `EPOLL_CTL_DEL`, one syscall per fd saved). Until every copy of the fd is closed (a child between its fork
    /// and its exec may hold one) it may still be reported: its token has no handler then, and is skipped. Safe to
    /// call from a handler.
    func remove(_ registration: Registration) {
        dispatchPrecondition(condition: .onQueue(queue))
        handlers[registration.token] = nil
    }

    private func round() {
        roundScheduled = false
        var tokens = [UInt64](repeating: 0, count: Int(Self.roundSize))
        let count = tokens.withUnsafeMutableBufferPointer { orch_epoll_ready(epollFD, $0.baseAddress, Self.roundSize) }
        guard count > 0 else { return }
        // A handler may remove a registration whose token also came back in this round.
        for token in tokens[..<Int(count)] { handlers[token]?() }
        // Something may still be ready (a full round, or a pipe with more to read): look again after
        // the work queued meanwhile, without waiting for a new edge from the outer source.
        if !roundScheduled {
            roundScheduled = true
            queue.async { [weak self] in self?.round() }
        }
    }
}
