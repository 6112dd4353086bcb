import CLinuxShims
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// Starts workers in their own sessions and reaps them through pidfds; each dies with this process
/// (`PR_SET_PDEATHSIG`, SIGKILL: see shims.c), so a SIGKILLed daemon leaves no worker running.
///
/// Per worker: a log file, two pipes (stdout, stderr) and a pidfd, all three watched through one
/// `EventLoop` on `queue`; no thread per child. When the pidfd becomes
/// readable the leader is a zombie (so its pid and process group id cannot be reused): the
/// rest of the group is SIGKILLed, the leader is reaped with `wait4` (rusage), the pipes are
/// drained of what is already buffered (never waiting for EOF: an escaped grandchild may hold
/// them open) and closed, and only then is `onExit` called.
///
/// With `subreaper: true` the supervisor also makes this process the child subreaper and ends
/// workers' escaped descendants (see ProcessSupervisor+Orphans.swift). Workers are started
/// through the `orchestrator-spawn` helper, if there is one, so that their max RSS is their own
/// (see spawn.c): by default one spawner process started with the first worker and kept for the
/// next ones, which forks each worker ahead of need (a zygote: the start is one message to it, with
/// no fork and no wait), otherwise one helper run per worker.
///
/// `@unchecked Sendable`: every stored property other than the immutable `queue` is touched
/// only on `queue` (checked with `dispatchPrecondition` in debug builds).
public final class ProcessSupervisor: @unchecked Sendable {
    let queue: DispatchQueue
    /// Workers whose leader has not been reaped yet, by pid. The kernel keeps these pids unique.
    private(set) var running: [Int32: SupervisedWorker] = [:]
    /// Reaped workers whose fds are still open; `onExit` not yet called.
    private var finishing = 0
    /// Watches workers' fds: the owner's loop (the daemon's), given before the first spawn, or one of its own
    /// created with the first worker.
    public var eventLoop: EventLoop?
    /// One read buffer shared by every pipe (handlers run one at a time on `queue`).
    let readBuffer: UnsafeMutableRawBufferPointer
    /// Orphans of workers become our children (`PR_SET_CHILD_SUBREAPER` succeeded).
    public let isSubreaper: Bool
    /// orchestrator-spawn, while workers are started through it; nil: started (vfork) straight from
    /// this process, whose peak RSS the kernel then folds into every worker's max RSS at exec.
    private var spawnHelper: [UInt8]?
    /// How workers go through the helper.
    private let helperUse: HelperUse
    /// The long-lived spawner, once started; registered in `liveWorkers` so that orphan sweeps spare it.
    private var spawner: (pid: pid_t, socket: Int32, replies: Int32)?
    /// Its zygotes taken from `replies` and not yet used, oldest first; registered in `liveWorkers` (owner empty).
    private var zygotes: [Zygote] = []
    /// Zygotes ordered from the spawner and not yet taken from `replies` (announced or still to come).
    private var zygotesOrdered = 0
    /// Replacements for zygotes that became workers, not yet ordered: `sendZygoteOrders` orders them once the
    /// round's starts are out. Ordered at each start, the spawner was woken on the same idle CPU as the zygote
    /// just told to exec, and its fork ran first (seen in a scheduler trace of a burst).
    private var zygotesOwed = 0
    /// How many zygotes a new spawner makes ahead: one per worker that can exit in the same round at the bundled
    /// concurrency, so that a round's starts do not wait for a fork.
    public static let zygotePool: UInt32 = 2
    /// How many are kept ahead: one more each time a start had to wait for one after the spawner had made its
    /// first (it falls behind at higher concurrency, or on a busy machine), up to `zygotePoolMax`.
    private var zygoteTarget = Int(ProcessSupervisor.zygotePool)
    static let zygotePoolMax = 8
    /// Whether the current spawner has announced a zygote yet (waiting for its first is no sign of falling behind).
    private var spawnerHasAnnounced = false
    /// orch_spawner_take without waiting: nothing announced yet.
    private static let noneYet: Int32 = -2
    /// Starting or talking to the spawner failed twice in a row: one helper run per worker from now on.
    private var spawnerFailed = false
    /// The daemon's PATH, which bare command names are looked up in (glibc's default if unset).
    private let searchPath: [UInt8]

    /// Orphan sweeps (ProcessSupervisor+Orphans.swift).
    var orphanSweepScheduled = false
    var lastOrphanSweep = DispatchTime(uptimeNanoseconds: 0)
    var orphanRetryDelay = ProcessSupervisor.orphanRetryFirst

    static let readChunk = 64 * 1024
    static let stderrTailSize = 4 * 1024

    /// `subreaper`: become the child subreaper and end workers' escaped descendants (one such
    /// supervisor per process: it takes every child in another session for a worker's orphan).
    /// `spawnHelper`: orchestrator-spawn, by default the one beside this executable; nil, or
    /// missing, spawns workers directly (their max RSS then starts at this process's peak).
    /// `helperUse`: one spawner for all workers, or one helper run per worker.
    ///
    /// `ORCH_SPAWN` in the environment overrides both, to compare their costs (Benchmarks/bench.sh):
    /// `direct` spawns without the helper, `helper` runs it per worker, `spawner` keeps one.
    public init(
        queue: DispatchQueue, subreaper: Bool = false, spawnHelper: String? = ProcessSupervisor.bundledSpawnHelper,
        helperUse: HelperUse = .spawner
    ) {
        self.queue = queue
        self.readBuffer = .allocate(byteCount: Self.readChunk, alignment: 16)
        isSubreaper = subreaper && orch_set_child_subreaper(1) == 0
        let override = getenv("ORCH_SPAWN").map { String(cString: $0) }
        if let helper = spawnHelper, access(helper, X_OK) == 0, override != "direct" {
            self.spawnHelper = Array(helper.utf8)
        }
        self.helperUse = switch override {
        case "helper": .perWorker
        case "spawner": .spawner
        default: helperUse
        }
        searchPath = Array((getenv("PATH").map { String(cString: $0) } ?? "/bin:/usr/bin").utf8)
    }

    /// orchestrator-spawn in the directory of the running executable, if it is there.
    public static var bundledSpawnHelper: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let executable = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = executable.lastIndex(of: "/") else { return nil }
        let helper = String(executable[..<slash]) + "/orchestrator-spawn"
        return access(helper, X_OK) == 0 ? helper : nil
    }

    /// Whether recorded CPU time and max RSS are the worker's own (started through the helper).
    public var measuresWorkersOwnUsage: Bool {
        dispatchPrecondition(condition: .onQueue(queue))
        return spawnHelper != nil
    }

    /// How workers are started through orchestrator-spawn.
    public enum HelperUse: Sendable {
        /// One spawner for all workers, started with the first (spawn.c, mode `s`).
        case spawner
        /// One helper run per worker: three processes hand off each time.
        case perWorker
    }

    deinit {
        Self.liveWorkers.withLock { stopSpawner(live: &$0) }
        readBuffer.deallocate()
    }

    /// Workers started and not yet reported through `onExit`.
    public var runningCount: Int {
        dispatchPrecondition(condition: .onQueue(queue))
        return running.count + finishing
    }

    /// Starts the worker in its own session; `onExit` runs on `queue` exactly once, after the leader is reaped,
    /// the rest of its process group killed, and its output drained.
    public func spawn(
        _ request: SpawnRequest, onExit: @escaping (WorkerExit) -> Void
    ) throws(SpawnError) -> WorkerHandle {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let program = request.arguments.first, !program.isEmpty else {
            throw SpawnError(errno: EINVAL, description: "cannot run an empty command")
        }
        try Self.checkNoNUL(request)

        let owner = Self.owner(inEnvironment: request.environment)
        let started: StartedProcess
        let throughZygote: Bool
        if let viaZygote = try startThroughZygote(request, owner: owner) {
            started = viaZygote
            throughZygote = true
        } else {
            started = try startWithPipes(request, owner: owner)
            throughZygote = false
        }
        let pid = started.pid

        // Its start time (which tells it from a later process of the same pid) is read only when asked for:
        // most workers of a burst are gone before anyone needs it (see `startTime(ofLive:)`).
        let handle = WorkerHandle(pid: pid, startTime: 0)
        let worker = SupervisedWorker(
            handle: handle, logPath: request.logPath, logCap: max(0, request.logCap), onExit: onExit,
            stdoutFD: started.stdout, stderrFD: started.stderr, owner: owner,
            startedBySpawner: throughZygote
                ? (program: request.arguments[0], workingDirectory: request.workingDirectory) : nil)
        do throws(SpawnError) {
            let loop: EventLoop
            if let existing = eventLoop {
                loop = existing
            } else {
                loop = try EventLoop(queue: queue)
                eventLoop = loop
            }
            try watch(.exit, started.pidFD, worker, with: loop) { [self] in self.leaderExited(worker) }
            try watch(.stdout, started.stdout, worker, with: loop) { [self] in self.readOutput(worker, .stdout) }
            try watch(.stderr, started.stderr, worker, with: loop) { [self] in self.readOutput(worker, .stderr) }
        } catch {
            // Cannot supervise it: end it now rather than leave an unsupervised group.
            Self.signalGroup(pid, SIGKILL)
            var reaped = orch_reaped()
            _ = orch_reap(pid, &reaped)
            Self.liveWorkers.withLock { $0[pid] = nil }
            for slot in Array(worker.registrations.keys) { stopWatching(worker, slot) }
            for fd in [started.pidFD, started.stdout, started.stderr] where !worker.closed.contains(fd) { close(fd) }
            throw error
        }
        running[pid] = worker
        return handle
    }

    /// A started worker's pid and the fds it is watched through: its pidfd and the read ends of its output pipes.
    private struct StartedProcess {
        let pid: pid_t
        let pidFD: Int32
        let stdout: Int32
        let stderr: Int32
    }

    /// Through a zygote of the long-lived spawner, which comes with its pipes and pidfd; nil when there is no
    /// spawner to use (another way, or it failed): then `startWithPipes`.
    private func startThroughZygote(_ request: SpawnRequest, owner: [UInt8]) throws(SpawnError) -> StartedProcess? {
        guard let helper = spawnHelper, helperUse == .spawner, !spawnerFailed else { return nil }
        let program = request.arguments[0]
        let bare = !program.contains(UInt8(ascii: "/"))
        var pid: pid_t = 0
        var fds: [Int32] = [-1, -1, -1, -1]
        let outcome: Int32? = Self.liveWorkers.withLock { live in
            withCStringArray(request.arguments) { argv in
                withCStringArray(request.environment) { envp in
                    withCBytes(program) { path in
                        withCBytes(request.workingDirectory) { cwd in
                            withCBytes(helper) { helper in
                                withCBytes(searchPath) { search in
                                    let rc = requestFromSpawner(
                                        helper, &pid, &fds, search: bare ? search : nil, path, argv, envp, cwd,
                                        owner: owner, live: &live)
                                    if rc == 0 { live[pid] = owner }
                                    return rc
                                }
                            }
                        }
                    }
                }
            }
        }
        guard let rc = outcome else { return nil }
        guard rc == 0 else { throw SpawnError(errno: rc, description: Self.describeSpawnFailure(rc, request)) }
        return StartedProcess(pid: pid, pidFD: fds[1], stdout: fds[2], stderr: fds[3])
    }

    /// Started straight from this process or by one helper run: the pipes and pidfd are made here.
    private func startWithPipes(_ request: SpawnRequest, owner: [UInt8]) throws(SpawnError) -> StartedProcess {
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        func closeAll() {
            for fd in stdoutPipe + stderrPipe where fd >= 0 { close(fd) }
        }
        guard orch_pipe_cloexec_nonblock(&stdoutPipe) == 0, orch_pipe_cloexec_nonblock(&stderrPipe) == 0 else {
            let e = errno
            closeAll()
            throw SpawnError(errno: e, description: "cannot create output pipes: \(Self.text(e))")
        }

        var pid: pid_t = 0
        let rc = Self.liveWorkers.withLock { live in
            var rc = startProcess(&pid, request, stdout: stdoutPipe[1], stderr: stderrPipe[1])
            if rc != 0, let helper = spawnHelper, withCBytes(helper, { access($0, X_OK) }) != 0 {
                // The helper went away (a reinstall): spawn directly rather than fail every worker.
                spawnHelper = nil
                rc = startProcess(&pid, request, stdout: stdoutPipe[1], stderr: stderrPipe[1])
            }
            if rc == 0 { live[pid] = owner }
            return rc
        }
        close(stdoutPipe[1])
        close(stderrPipe[1])
        stdoutPipe[1] = -1
        stderrPipe[1] = -1
        guard rc == 0 else {
            closeAll()
            throw SpawnError(errno: rc, description: Self.describeSpawnFailure(rc, request))
        }

        let pidFD = orch_pidfd_open(pid)
        guard pidFD >= 0 else {
            // Cannot watch it: end it now rather than leave an unsupervised group.
            let e = errno
            Self.signalGroup(pid, SIGKILL)
            var reaped = orch_reaped()
            _ = orch_reap(pid, &reaped)
            Self.liveWorkers.withLock { $0[pid] = nil }
            closeAll()
            let program = request.arguments[0]
            throw SpawnError(errno: e, description: "cannot watch \(Self.show(program)) (pidfd_open): \(Self.text(e))")
        }
        return StartedProcess(pid: pid, pidFD: pidFD, stdout: stdoutPipe[0], stderr: stderrPipe[0])
    }

    /// Called with `liveWorkers` locked.
    private func startProcess(_ pid: inout pid_t, _ request: SpawnRequest, stdout: Int32, stderr: Int32) -> Int32 {
        let program = request.arguments[0]
        let bare = !program.contains(UInt8(ascii: "/"))
        return withCStringArray(request.arguments) { argv in
            withCStringArray(request.environment) { envp in
                withCBytes(program) { path in
                    withCBytes(request.workingDirectory) { cwd in
                        guard let helper = spawnHelper else {
                            return orch_spawn(&pid, path, argv, envp, cwd, -1, stdout, stderr, bare ? 1 : 0)
                        }
                        return withCBytes(helper) { helper in
                            withCBytes(searchPath) { search in
                                orch_spawn_via_helper(&pid, helper, bare ? search : nil, path, argv, envp, cwd, stdout, stderr)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Starts the worker through one of the long-lived spawner's zygotes, starting the spawner first if needed:
    /// 0 (`pid` and `fds` the zygote's: socket, now closed, pidfd, stdout and stderr) or the errno of the worker's
    /// start. nil if the spawner cannot be had (twice: gone, hung, or not startable): the caller runs the helper
    /// once for this worker, and so for every later one.
    private func requestFromSpawner(
        _ helper: UnsafePointer<CChar>, _ pid: inout pid_t, _ fds: inout [Int32], search: UnsafePointer<CChar>?,
        _ path: UnsafePointer<CChar>, _ argv: UnsafePointer<UnsafeMutablePointer<CChar>?>,
        _ envp: UnsafePointer<UnsafeMutablePointer<CChar>?>, _ cwd: UnsafePointer<CChar>, owner: [UInt8],
        live: inout [Int32: [UInt8]]
    ) -> Int32? {
        var spawnerFailures = 0
        // A zygote found gone (killed while it waited) is ended and the next one tried: it ran nothing. Several in
        // a row count as the spawner's failure (sending itself fails, or something ends every zygote).
        var zygotesGone = 0
        while spawnerFailures < 2 {
            if zygotesGone > zygoteTarget {
                stopSpawner(live: &live)
                zygotesGone = 0
                spawnerFailures += 1
                continue
            }
            if spawner == nil {
                var spawnerPID: pid_t = 0
                var socket: Int32 = -1
                var replies: Int32 = -1
                guard orch_spawner_start(helper, &spawnerPID, &socket, &replies) == 0 else { break }
                spawner = (spawnerPID, socket, replies)
                live[spawnerPID] = []
                zygotesOrdered = 0
                spawnerHasAnnounced = false
                if orch_spawner_order(socket, UInt32(zygoteTarget)) == 0 { zygotesOrdered = zygoteTarget }
            }
            guard let current = spawner else { break }
            let zygote: Zygote
            switch takeZygote(from: current, live: &live) {
            case .failed(let code):
                return code
            case .gone:
                // Gone (killed, crashed) or not answering: end it and try a new one. A zygote it forked and did
                // not announce is ended too, unused, rather than left waiting.
                stopSpawner(live: &live)
                Self.endUnregisteredChildren(owner: owner, live: live)
                spawnerFailures += 1
                continue
            case .ready(let ready):
                zygote = ready
            }
            let rc = orch_zygote_request(zygote.fds[0], search, path, argv, envp, cwd)
            if rc > 0 {
                // Nothing was sent (too large, out of memory): the zygote waits for the next worker.
                zygotes.insert(zygote, at: 0)
                return rc
            }
            // Its replacement is ordered when the round's starts are out (`sendZygoteOrders`).
            zygotesOwed += 1
            if rc == 0 {
                close(zygote.fds[0])
                pid = zygote.pid
                fds = zygote.fds
                return 0
            }
            orch_zygote_end(zygote.fds, zygote.pid)
            live[zygote.pid] = nil
            zygotesGone += 1
        }
        spawnerFailed = true
        return nil
    }

    /// A child forked ahead of need (spawn.c) and its fds: its socket, pidfd, and the read ends of its stdout and
    /// stderr pipes.
    private struct Zygote {
        let pid: pid_t
        let fds: [Int32]
    }

    private enum ZygoteTake {
        case ready(Zygote)
        /// The spawner could not make one (and none is ready): the worker cannot start now.
        case failed(Int32)
        case gone
    }

    /// The oldest ready zygote, after taking in those announced meanwhile (without waiting); if none is ready,
    /// waits for the next (the spawner's time limit: then `.gone`).
    private func takeZygote(
        from current: (pid: pid_t, socket: Int32, replies: Int32), live: inout [Int32: [UInt8]]
    ) -> ZygoteTake {
        while zygotesOrdered > 0 || zygotes.isEmpty {
            if zygotes.isEmpty, zygotesOrdered == 0 {
                // The round has used up the pool: what it owes is ordered now, or one if it owes none.
                guard orch_spawner_order(current.socket, UInt32(max(1, zygotesOwed))) == 0 else { return .gone }
                zygotesOrdered = max(1, zygotesOwed)
                zygotesOwed = 0
            }
            let waitForOne = zygotes.isEmpty
            if waitForOne, spawnerHasAnnounced, zygoteTarget < Self.zygotePoolMax,
                orch_spawner_order(current.socket, 1) == 0
            {
                zygoteTarget += 1
                zygotesOrdered += 1
            }
            let rc = takeAnnouncement(from: current, wait: waitForOne, live: &live)
            if rc == Self.noneYet, !waitForOne { break }
            if rc < 0 { return .gone }
            if rc > 0, zygotes.isEmpty { return .failed(rc) }
        }
        return .ready(zygotes.removeFirst())
    }

    /// Takes in the zygotes announced so far, without waiting, so that an orphan sweep sees them registered.
    func collectAnnouncedZygotes(live: inout [Int32: [UInt8]]) {
        guard let current = spawner else { return }
        // Stops at none yet, or at a gone spawner, which the next start notices.
        while zygotesOrdered > 0, takeAnnouncement(from: current, wait: false, live: &live) >= 0 {}
    }

    /// One announcement from the spawner: a zygote (registered, appended to `zygotes`) and 0, the errno of one it
    /// could not make, or negative: `noneYet`, or the spawner is gone.
    private func takeAnnouncement(
        from current: (pid: pid_t, socket: Int32, replies: Int32), wait: Bool, live: inout [Int32: [UInt8]]
    ) -> Int32 {
        var zygotePID: pid_t = 0
        var fds: [Int32] = [-1, -1, -1, -1]
        let rc = orch_spawner_take(current.replies, wait ? 1 : 0, &zygotePID, &fds)
        guard rc >= 0 else { return rc }
        zygotesOrdered -= 1
        if rc == 0 {
            live[zygotePID] = []
            zygotes.append(Zygote(pid: zygotePID, fds: fds))
            spawnerHasAnnounced = true
        }
        return rc
    }

    /// Orders the replacements of the zygotes this round's starts used, in one message. A spawner that cannot take
    /// the order is gone: ended now, with the zygotes it left, and the next start has a new one.
    public func sendZygoteOrders() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard zygotesOwed > 0 else { return }
        Self.liveWorkers.withLock { live in
            guard let current = spawner else {
                zygotesOwed = 0
                return
            }
            if orch_spawner_order(current.socket, UInt32(zygotesOwed)) == 0 {
                zygotesOrdered += zygotesOwed
                zygotesOwed = 0
            } else {
                stopSpawner(live: &live)
            }
        }
    }

    /// Ends the spawner and every zygote of it not yet used, and reaps them all.
    private func stopSpawner(live: inout [Int32: [UInt8]]) {
        guard let current = spawner else { return }
        spawner = nil
        zygotesOwed = 0
        // Once the spawner is reaped, everything it announced is in `replies`: taken there and ended too.
        orch_spawner_stop(current.socket, current.pid)
        live[current.pid] = nil
        while zygotesOrdered > 0, takeAnnouncement(from: current, wait: false, live: &live) >= 0 {}
        close(current.replies)
        zygotesOrdered = 0
        for zygote in zygotes {
            orch_zygote_end(zygote.fds, zygote.pid)
            live[zygote.pid] = nil
        }
        zygotes.removeAll()
    }

    /// Ends the long-lived spawner and its unused zygotes; the next worker starts another. The daemon calls this
    /// when its queue has run dry: the spawner then lives through bursts and backlogs, and an idle daemon's only
    /// children are its workers (what a service manager's tree kill, or a look at the process tree, expects).
    public func releaseSpawner() {
        dispatchPrecondition(condition: .onQueue(queue))
        Self.liveWorkers.withLock { stopSpawner(live: &$0) }
    }

    /// The thread every worker, spawner and helper is started from (its kernel thread id), started if needed; 0 if
    /// it cannot be. It lives as long as the process: a child's PR_SET_PDEATHSIG fires when the thread that is its
    /// parent exits, so a child of a Dispatch thread would be killed when that thread idles out (shims.c). For tests.
    public static var parentThreadID: pid_t { orch_parent_thread_id() }

    /// The long-lived spawner's pid, while there is one (for tests).
    public var spawnerPID: pid_t? {
        dispatchPrecondition(condition: .onQueue(queue))
        return spawner?.pid
    }

    /// Takes in the zygotes announced so far (for tests; starts and orphan sweeps do it themselves).
    public func takeInAnnouncedZygotes() {
        dispatchPrecondition(condition: .onQueue(queue))
        Self.liveWorkers.withLock { collectAnnouncedZygotes(live: &$0) }
    }

    /// The pids of the zygotes taken in and not yet used (for tests); each holds four fds of ours open.
    public var readyZygotePIDs: [pid_t] {
        dispatchPrecondition(condition: .onQueue(queue))
        return zygotes.map(\.pid)
    }

    /// The start time of a worker not yet reaped (then its pid is still its own: at worst a zombie), nil once
    /// it has been.
    public func startTime(ofLive worker: WorkerHandle) -> UInt64? {
        dispatchPrecondition(condition: .onQueue(queue))
        guard running[worker.pid]?.handle == worker else { return nil }
        return Self.startTime(of: worker.pid)
    }

    /// Sends a signal to the whole process group of a running worker (timeouts: SIGTERM, then SIGKILL after a grace).
    /// Does nothing once the worker's leader has been reaped.
    public func signal(_ worker: WorkerHandle, _ signal: Int32) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let live = running[worker.pid], live.handle == worker else { return }
        Self.signalGroup(worker.pid, signal)
    }

    // MARK: - Exit

    private func watch(
        _ slot: SupervisedWorker.Slot, _ fd: Int32, _ worker: SupervisedWorker, with loop: EventLoop,
        handler: @escaping () -> Void
    ) throws(SpawnError) {
        worker.registrations[slot] = try loop.add(fd, handler: handler)
    }

    /// Closes one of the worker's fds; once the last is closed of a reaped worker, reports its exit.
    func stopWatching(_ worker: SupervisedWorker, _ slot: SupervisedWorker.Slot) {
        guard let registration = worker.registrations.removeValue(forKey: slot) else { return }
        eventLoop?.remove(registration)
        close(registration.fd)
        worker.closed.insert(registration.fd)
        if worker.registrations.isEmpty, worker.result != nil { report(worker) }
    }

    private func leaderExited(_ worker: SupervisedWorker) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard worker.result == nil else { return }
        let pid = worker.handle.pid
        let state = orch_child_has_exited(pid)
        if state == 0 { return }  // Not yet (spurious wake-up); the pidfd stays readable once it has.

        var reaped = orch_reaped()
        if state == 1 {
            // The leader is a zombie, so -pid is still this worker's group: end the stragglers.
            kill(-pid, SIGKILL)
        }
        if state != 1 || orch_reap(pid, &reaped) != 0 {
            // Someone else reaped it (SIGCHLD ignored or a stray waitpid(-1)); the status is lost
            // and the pid may be reused already, so the group is left alone.
            reaped = orch_reaped(signaled: 0, code: -1, user_usec: 0, system_usec: 0, maxrss_kib: 0)
        }
        running[pid] = nil
        Self.liveWorkers.withLock { $0[pid] = nil }
        finishing += 1
        worker.result = reaped
        if isSubreaper { scheduleOrphanSweep() }  // Its escaped descendants are our children now.

        drainAndClose(worker, .stdout)
        drainAndClose(worker, .stderr)
        finishLog(worker)
        stopWatching(worker, .exit)  // The last of its fds: reports the exit.
    }

    private func report(_ worker: SupervisedWorker) {
        guard let reaped = worker.result, let onExit = worker.onExit else { return }
        worker.onExit = nil
        finishing -= 1
        let termination: Termination = reaped.signaled != 0 ? .signaled(reaped.code) : .exited(reaped.code)
        let exit = WorkerExit(
            termination: termination,
            userCPU: .microseconds(reaped.user_usec),
            systemCPU: .microseconds(reaped.system_usec),
            maxRSSKiB: Int(reaped.maxrss_kib),
            stderrTail: worker.stderrTail,
            outputBytes: worker.outputBytes,
            droppedBytes: worker.droppedBytes, logFailure: worker.logFailure,
            startFailure: termination == .exited(127) ? Self.describeStartFailure(of: worker) : nil)
        onExit(exit)
    }

    // MARK: - Previous daemons' workers

    /// Sends `signal` to the worker's process group, or to the worker alone while it has none yet: a zygote may
    /// be announced before it has called setsid, and until then it has started nothing else.
    public static func signalGroup(_ pid: Int32, _ signal: Int32) {
        if kill(-pid, signal) != 0, errno == ESRCH { kill(pid, signal) }
    }

    /// Process groups left by a previous daemon: true if a process with this pid and start time still exists
    /// (a zombie counts).
    public static func isAlive(_ worker: WorkerHandle) -> Bool {
        guard worker.pid > 0, let started = startTime(of: worker.pid) else { return false }
        return started == worker.startTime
    }

    /// SIGKILL to the worker's process group if its leader `isAlive`. A group whose leader has
    /// already gone cannot be recognised with certainty and is left alone.
    public static func killGroup(_ worker: WorkerHandle) {
        if isAlive(worker) { signalGroup(worker.pid, SIGKILL) }
    }

    /// Field 22 (starttime) of /proc/PID/stat. The command name (field 2) may hold spaces and
    /// ')' itself, so fields are counted from the last ')'.
    public static func startTime(of pid: Int32) -> UInt64? {
        guard pid > 0 else { return nil }
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                content += chunk[..<n]
            } else if n < 0, errno == EINTR {
                continue
            } else {
                break
            }
        }
        guard let paren = content.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After ") ": field 3 (state) is index 0, so field 22 is index 19.
        let fields = content[(paren + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
    }

    // MARK: - Helpers

    private static func checkNoNUL(_ request: SpawnRequest) throws(SpawnError) {
        func bad(_ what: String) -> SpawnError {
            SpawnError(errno: EINVAL, description: "cannot run \(show(request.arguments[0])): \(what) contains a NUL byte")
        }
        if request.arguments.contains(where: { $0.contains(0) }) { throw bad("an argument") }
        if request.environment.contains(where: { $0.contains(0) }) { throw bad("an environment entry") }
        if request.workingDirectory.contains(0) { throw bad("the working directory") }
        if request.logPath.contains(0) { throw bad("the log path") }
    }

    /// A start that failed in the spawner's child, after the spawner had answered; nil if it did not.
    static func describeStartFailure(of worker: SupervisedWorker) -> SpawnError? {
        guard let failure = worker.startFailure, let target = worker.startedBySpawner else { return nil }
        let text = failure.stage == UInt8(ascii: "c")
            ? "cannot enter working directory \(show(target.workingDirectory)): \(Self.text(failure.code))"
            : "cannot run \(show(target.program)): \(Self.text(failure.code))"
        return SpawnError(errno: failure.code, description: text)
    }

    private static func describeSpawnFailure(_ code: Int32, _ request: SpawnRequest) -> String {
        // A failed chdir and a failed exec are reported the same way (as posix_spawn does); tell them apart.
        if !request.workingDirectory.isEmpty {
            let problem = withCBytes(request.workingDirectory) { orch_check_enterable_dir($0) }
            if problem != 0 {
                return "cannot enter working directory \(show(request.workingDirectory)): \(text(problem))"
            }
        }
        if code == ECHILD {
            return "cannot run \(show(request.arguments[0])): orchestrator-spawn ended without starting it"
        }
        return "cannot run \(show(request.arguments[0])): \(text(code))"
    }

    static func show(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func text(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// One started worker; owned by `ProcessSupervisor` and touched only on its queue.
final class SupervisedWorker {
    enum Slot { case exit, stdout, stderr }

    let handle: WorkerHandle
    /// Opened at the first byte of output: a worker that prints nothing leaves no file behind, and
    /// creating thousands of empty files is the largest kernel cost of a burst of quiet workers.
    let logPath: [UInt8]
    var logFD: Int32 = -1
    let logCap: Int
    var onExit: ((WorkerExit) -> Void)?
    let stdoutFD: Int32
    let stderrFD: Int32
    /// Fds still open and watched.
    var registrations: [Slot: EventLoop.Registration] = [:]
    /// Fds already closed (only consulted when a spawn is undone).
    var closed: Set<Int32> = []
    /// Set once the leader is reaped.
    var result: orch_reaped?

    var loggedBytes = 0
    var outputBytes = 0
    var droppedBytes = 0
    var logBroken = false
    /// Why the log could not be written (opened or written to), if it could not.
    var logFailure: String?
    var lastLoggedByte: UInt8?
    var stderrTail: [UInt8] = []
    /// Ties its orphans to it (`ProcessSupervisor.owner(inEnvironment:)`); empty if it cannot.
    let owner: [UInt8]
    /// Started by a zygote of the long-lived spawner, whose exec is not waited for: what it was asked to run, to
    /// describe a start that failed (reported at the start of its stderr). nil otherwise.
    let startedBySpawner: (program: [UInt8], workingDirectory: [UInt8])?
    /// Whether its stderr has delivered anything yet: the failure report can only be its first bytes.
    var stderrStarted = false
    var startFailure: StartFailure?

    struct StartFailure {
        /// 'c': entering the working directory; 'x': the exec.
        let stage: UInt8
        let code: Int32
    }

    init(
        handle: WorkerHandle, logPath: [UInt8], logCap: Int, onExit: @escaping (WorkerExit) -> Void,
        stdoutFD: Int32, stderrFD: Int32, owner: [UInt8],
        startedBySpawner: (program: [UInt8], workingDirectory: [UInt8])? = nil
    ) {
        self.owner = owner
        self.startedBySpawner = startedBySpawner
        self.handle = handle
        self.logPath = logPath
        self.logCap = logCap
        self.onExit = onExit
        self.stdoutFD = stdoutFD
        self.stderrFD = stderrFD
    }
}

/// Calls `body` with `bytes` as a NUL-terminated C string.
func withCBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
    var c = bytes.map { CChar(bitPattern: $0) }
    c.append(0)
    return c.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Calls `body` with a NULL-terminated array of NUL-terminated C strings, freed afterwards.
private func withCStringArray<R>(
    _ items: [[UInt8]], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R
) -> R {
    let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: items.count + 1)
    for (i, item) in items.enumerated() {
        let s = UnsafeMutablePointer<CChar>.allocate(capacity: item.count + 1)
        item.withUnsafeBytes { UnsafeMutableRawBufferPointer(start: s, count: item.count).copyMemory(from: $0) }
        s[item.count] = 0
        array[i] = s
    }
    array[items.count] = nil
    defer {
        for i in 0..<items.count { array[i]?.deallocate() }
        array.deallocate()
    }
    return body(array)
}
