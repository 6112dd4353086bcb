import CLinuxShims
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's event loop: one epoll instance and one thread of our own that waits on it and runs what became
/// ready on `queue` itself: workers' fds (pidfd, stdout, stderr), one timer, and work posted from other threads.
///
/// Every worker has three fds. As separate `DispatchSource`s each one is registered, fired and cancelled
/// through libdispatch's manager thread, and every event is handed from that thread to a pool thread; a
/// `DispatchSourceTimer` re-armed for each worker's timeout wakes the manager thread too. On a busy two-core
/// machine those hand-offs were a quarter of the daemon's CPU per worker. Here adding and removing an fd is
/// one `epoll_ctl`, arming the timer one `timerfd_settime`, both on the calling thread; the waiting thread
/// wakes straight from the kernel and runs the handlers inside `queue.sync`, which libdispatch runs on the
/// calling thread: one wake-up per round of events, whatever their number.
///
/// Level-triggered: an fd left unread is reported again on the next round. `@unchecked Sendable`: touched
/// only on `queue`, apart from `posted` (behind its mutex) and the fds the thread waits on.
public final class EventLoop: @unchecked Sendable {
    private let queue: DispatchQueue
    private let core: Core
    private var handlers: [UInt64: () -> Void] = [:]
    private var nextToken: UInt64 = Core.firstRegistration
    /// Wraps each round (on `queue`): the owner's chance to act once on everything a round brought.
    public var round: ((() -> Void) -> Void)?
    /// Called on `queue` when the timer set with `setTimer` expires.
    public var onTimer: (() -> Void)?

    public struct Registration: Hashable, Sendable {
        public let fd: Int32
        let token: UInt64
    }

    public init(queue: DispatchQueue) throws(SpawnError) {
        self.queue = queue
        core = try Core()
        core.start(queue: queue, loop: self)
    }

    deinit {
        core.requestStop()
    }

    /// Ends the thread after the round in progress; nothing is reported afterwards. Also done when the loop goes.
    public func stop() {
        core.requestStop()
    }

    /// Calls `handler` on `queue` whenever `fd` is readable, hung up or in error, until `remove`.
    public func add(_ fd: Int32, handler: @escaping () -> Void) throws(SpawnError) -> Registration {
        dispatchPrecondition(condition: .onQueue(queue))
        let token = nextToken
        nextToken += 1
        guard orch_epoll_add(core.epollFD, fd, token) == 0 else {
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
    public func remove(_ registration: Registration) {
        dispatchPrecondition(condition: .onQueue(queue))
        handlers[registration.token] = nil
    }

    /// Stops watching an fd that stays open (a store's session socket): it is taken out of the epoll set, so that
    /// it can be added again.
    public func removeKeepingOpen(_ registration: Registration) {
        dispatchPrecondition(condition: .onQueue(queue))
        handlers[registration.token] = nil
        _ = orch_epoll_remove(core.epollFD, registration.fd)
    }

    /// Arms the one timer `milliseconds` from now (replacing any earlier setting), or disarms it (nil).
    public func setTimer(after milliseconds: UInt64?) {
        dispatchPrecondition(condition: .onQueue(queue))
        _ = orch_timerfd_arm(core.timerFD, milliseconds.map { Int64(clamping: $0) } ?? -1)
    }

    /// Runs `work` on `queue` in the loop's next round. From any thread.
    public func post(_ work: @escaping @Sendable () -> Void) {
        core.posted.withLock { $0.append(work) }
        core.wake()
    }

    /// One round, on `queue`. A handler may remove a registration whose token also came back in this round.
    fileprivate func handle(_ tokens: ArraySlice<UInt64>, timerExpired: Bool, posted: [@Sendable () -> Void]) {
        let body = { [self] in
            for token in tokens where token >= Core.firstRegistration { handlers[token]?() }
            if timerExpired { onTimer?() }
            for work in posted { work() }
        }
        if let round { round(body) } else { body() }
    }

    /// The fds and the thread. The thread holds the core, not the loop: the loop goes when its owner lets it
    /// go, and its `deinit` tells the thread to end.
    private final class Core: @unchecked Sendable {
        static let controlToken: UInt64 = 0
        static let timerToken: UInt64 = 1
        static let firstRegistration: UInt64 = 2

        let epollFD: Int32
        /// An eventfd: readable when work was posted or a stop requested.
        let controlFD: Int32
        let timerFD: Int32
        let posted = Mutex<[@Sendable () -> Void]>([])
        let stopRequested = Atomic<Bool>(false)

        init() throws(SpawnError) {
            epollFD = orch_epoll_create()
            controlFD = orch_eventfd()
            timerFD = orch_timerfd_create()
            guard epollFD >= 0, controlFD >= 0, timerFD >= 0,
                orch_epoll_add(epollFD, controlFD, Self.controlToken) == 0,
                orch_epoll_add(epollFD, timerFD, Self.timerToken) == 0
            else {
                let e = errno
                for fd in [epollFD, controlFD, timerFD] where fd >= 0 { close(fd) }
                throw SpawnError(errno: e, description: "cannot set up the event loop: \(String(cString: strerror(e)))")
            }
        }

        func wake() {
            var one: UInt64 = 1
            _ = write(controlFD, &one, MemoryLayout<UInt64>.size)
        }

        func requestStop() {
            stopRequested.store(true, ordering: .releasing)
            wake()
        }

        /// A thread of its own (not one of libdispatch's pool, which may be short of threads exactly when
        /// workers exit in numbers), detached: it ends by itself once the loop is stopped or gone.
        func start(queue: DispatchQueue, loop: EventLoop) {
            let context = Unmanaged.passRetained(Waiter(core: self, queue: queue, loop: loop)).toOpaque()
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { context in
                Unmanaged<Waiter>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
            guard created == 0 else {
                // Without its thread nothing would ever be reported: fail loudly rather than hang.
                fatalError("cannot start the event loop's thread: \(String(cString: strerror(created)))")
            }
            pthread_detach(thread)
        }

        deinit {
            for fd in [epollFD, controlFD, timerFD] { close(fd) }
        }
    }

    private final class Waiter {
        let core: Core
        let queue: DispatchQueue
        weak var loop: EventLoop?

        /// SCHED_BATCH (linux/sched.h), which Glibc's module does not export.
        static let schedBatch: Int32 = 3

        init(core: Core, queue: DispatchQueue, loop: EventLoop) {
            self.core = core
            self.queue = queue
            self.loop = loop
        }

        func run() {
            // SCHED_BATCH: a worker's exit wakes this thread up to three times (its two pipes close, then its pidfd is
            // ready); at the normal policy each wake-up preempted the exiting worker on its core, and the exit
            // finished only after this thread had run and slept again, once per wake-up. As a batch thread it waits
            // for the core instead (with the spawner's batch policy, 0.02 more of the floor at c=2 in each of three
            // runs: README, Benchmarks). Only from the normal policy: one the service manager chose (idle, real-time) stays. What this thread
            // starts does not inherit it (shims.c, parent_thread).
            var batch = sched_param()
            if sched_getscheduler(0) == 0 { _ = sched_setscheduler(0, Self.schedBatch, &batch) }
            var tokens = [UInt64](repeating: 0, count: 64)
            while !core.stopRequested.load(ordering: .acquiring) {
                let count = tokens.withUnsafeMutableBufferPointer {
                    orch_epoll_wait_tokens(core.epollFD, $0.baseAddress, Int32($0.count))
                }
                guard count >= 0 else { break }
                let ready = tokens[..<Int(count)]
                var posted: [@Sendable () -> Void] = []
                if ready.contains(Core.controlToken) {
                    orch_drain_counter(core.controlFD)
                    posted = core.posted.withLock { work in
                        defer { work.removeAll(keepingCapacity: true) }
                        return work
                    }
                }
                let timerExpired = ready.contains(Core.timerToken)
                if timerExpired { orch_drain_counter(core.timerFD) }
                if core.stopRequested.load(ordering: .acquiring) { break }
                let alive = queue.sync { () -> Bool in
                    guard let loop else { return false }
                    loop.handle(ready, timerExpired: timerExpired, posted: posted)
                    return true
                }
                if !alive { break }
            }
        }
    }
}
