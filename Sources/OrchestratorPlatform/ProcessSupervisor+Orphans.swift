import CLinuxShims
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// Ending workers' escaped descendants (a `setsid`, a double fork): processes that left a worker's
/// process group, so the group kill at its exit misses them.
///
/// As the child subreaper this process inherits every orphan of its workers. Our children in
/// another session that are not live workers are therefore such orphans: a worker starts a new
/// session, and its descendants can never join ours again; children that other code in this process
/// starts (Foundation's `Process`, in the tests) stay in our session and are left alone. The kernel here may lack
/// /proc/PID/task/TID/children, so finding them means reading every /proc/PID/stat: a sweep costs
/// roughly a few microseconds per process on the machine, and runs at most every
/// `orphanSweepInterval` after worker exits, however many exit (a sweep per exit would cost more
/// than the workers at 1,500 exits a second), and never while idle.
///
/// An orphan whose worker still runs (its environment names the worker's job and attempt) is left
/// alone; the sweep after that worker's exit ends it. Everything else is SIGKILLed, with its
/// process group if it leads one, and reaped by pid (never `waitpid(-1)`, which would take the
/// workers' statuses from `wait4`). The killed orphans' own children then become ours in turn, so
/// sweeps follow each other quickly until one finds nothing.
extension ProcessSupervisor {
    /// Worker exits within this are handled by one sweep.
    static let orphanSweepInterval = DispatchTimeInterval.milliseconds(200)
    /// After a sweep that ended something: the next comes this soon, doubling (for a process stuck
    /// dying) up to `orphanSweepInterval`.
    static let orphanRetryFirst = DispatchTimeInterval.milliseconds(10)

    static let liveWorkers = WorkerRegistry()

    /// The entries of a worker's environment that name its attempt: an orphan whose environment
    /// carries the same ones belongs to that attempt.
    static let ownerVariables: [[UInt8]] = [Array("ORCH_JOB_ID=".utf8), Array("ORCH_ATTEMPT=".utf8)]

    static func owner<Entries: Sequence>(inEnvironment environment: Entries) -> [UInt8]
    where Entries.Element: Collection<UInt8> {
        var owner: [UInt8] = []
        for variable in ownerVariables {
            guard let entry = environment.first(where: { $0.starts(with: variable) }) else { continue }
            owner += entry
            owner.append(0)
        }
        return owner
    }

    /// Kills and reaps every child that is not a live worker, whosever it is: for the daemon's stop,
    /// once its workers have ended. Waits (at most `limit`) until none is left, the children those
    /// had included. Returns how many processes it ended. Only orphans of another supervisor's live
    /// workers are spared: the daemon has one, but a process with several (the tests) must not have
    /// one's stop end what another's running workers left.
    @discardableResult
    public func endEscapedDescendants(within limit: Duration = .seconds(2)) -> Int {
        dispatchPrecondition(condition: .onQueue(queue))
        guard isSubreaper else { return 0 }
        let deadline = ContinuousClock.now + limit
        var ended: Set<Int32> = []
        while true {
            let found = sweepOrphans(sparing: .otherSupervisorsLiveOwners)
            ended.formUnion(found.killed)
            if found.isEmpty || ContinuousClock.now >= deadline { break }
            if !found.killed.isEmpty { usleep(1_000) }  // Give SIGKILL a moment before looking again.
        }
        return ended.count
    }

    /// After a worker's exit: a sweep now, or at the end of the current interval.
    func scheduleOrphanSweep() {
        guard !orphanSweepScheduled else { return }
        orphanSweepScheduled = true
        let earliest = lastOrphanSweep + Self.orphanSweepInterval
        queue.asyncAfter(deadline: max(earliest, .now())) { [weak self] in self?.periodicSweep() }
    }

    private func periodicSweep() {
        orphanSweepScheduled = false
        lastOrphanSweep = .now()
        let found = sweepOrphans(sparing: .liveOwners)
        guard !found.isEmpty else {
            orphanRetryDelay = Self.orphanRetryFirst
            return
        }
        // Something was ended or reaped: its children are ours now. Look again soon.
        orphanSweepScheduled = true
        let delay = orphanRetryDelay
        orphanRetryDelay = Self.doubled(delay, cap: Self.orphanSweepInterval)
        queue.asyncAfter(deadline: .now() + delay) { [weak self] in self?.periodicSweep() }
    }

    struct SweepResult {
        var killed: [Int32] = []
        var reaped = 0
        var isEmpty: Bool { killed.isEmpty && reaped == 0 }
    }

    /// One look at our children: reaps the exited, kills the live ones not spared.
    /// Under the registry's lock throughout: zygotes (spawn.c) are forked ahead of their registration, so another
    /// supervisor of this process must not take in and start one between this sweep's look and its kill.
    func sweepOrphans(sparing: Sparing) -> SweepResult {
        Self.liveWorkers.withLock { live in
            // Those announced and not yet taken in are our children in other sessions too.
            collectAnnouncedZygotes(live: &live)
            return sweepOrphans(sparing: sparing, live: &live)
        }
    }

    enum Sparing {
        /// Orphans of any live worker, and unreadable ones that may be theirs: after a worker's exit.
        case liveOwners
        /// Orphans of live workers of the process's other supervisors only: at stop.
        case otherSupervisorsLiveOwners
    }

    private func sweepOrphans(sparing: Sparing, live: inout [Int32: [UInt8]]) -> SweepResult {
        var result = SweepResult()
        var children: [orch_child] = []
        var count = 0
        repeat {  // Workers are children too: make room for all.
            children = [orch_child](repeating: orch_child(), count: max(256, children.count * 2))
            count = Int(children.withUnsafeMutableBufferPointer { orch_list_children(getpid(), $0.baseAddress, Int32($0.count)) })
        } while count == children.count
        guard count > 0 else { return result }
        let ownSession = getsid(0)
        var liveOwners: Set<[UInt8]>?
        var oldestLiveStart: UInt64?
        var zygotesCollectedAgain = false
        for child in children[..<count] where child.session != ownSession && live[child.pid] == nil {
            if child.exited != 0 {
                if orch_reap_if_exited(child.pid) == 1 { result.reaped += 1 }
                continue
            }
            if !zygotesCollectedAgain {
                // A zygote forked since the first look may have been announced by now.
                zygotesCollectedAgain = true
                collectAnnouncedZygotes(live: &live)
                if live[child.pid] != nil { continue }
            }
            if sparing == .otherSupervisorsLiveOwners {
                let owners = liveOwners ?? Set(live.filter { running[$0.key] == nil && !$0.value.isEmpty }.values)
                liveOwners = owners
                if !owners.isEmpty, let owner = Self.owner(ofProcess: child.pid), owners.contains(owner) { continue }
            } else {
                let owners = liveOwners ?? Set(live.values.filter { !$0.isEmpty })
                liveOwners = owners
                if !owners.isEmpty {
                    if let owner = Self.owner(ofProcess: child.pid) {
                        if owners.contains(owner) { continue }
                    } else {
                        // Unreadable (not dumpable, like ssh-agent, or setuid): it may belong to a worker that
                        // still runs if it started after the oldest of them; one older than every live worker
                        // cannot be theirs.
                        let oldestLive = oldestLiveStart ?? live.filter { !$0.value.isEmpty }.keys.compactMap { Self.startTime(of: $0) }.min()
                        oldestLiveStart = oldestLive
                        if let oldestLive, let started = Self.startTime(of: child.pid), started >= oldestLive { continue }
                    }
                }
            }
            // Our child, unreaped: neither its pid nor (if it leads one) its group id can be reused yet.
            if child.group == child.pid { kill(-child.pid, SIGKILL) }
            kill(child.pid, SIGKILL)
            result.killed.append(child.pid)
        }
        return result
    }

    /// Ends this process's children in another session that carry `owner` and are not registered workers:
    /// a worker a spawner started without telling us.
    static func endUnregisteredChildren(owner: [UInt8], live: [Int32: [UInt8]]) {
        guard !owner.isEmpty else { return }
        var children = [orch_child](repeating: orch_child(), count: 1024)
        let count = Int(children.withUnsafeMutableBufferPointer { orch_list_children(getpid(), $0.baseAddress, Int32($0.count)) })
        let ownSession = getsid(0)
        for child in children[..<max(0, count)] where child.session != ownSession && live[child.pid] == nil && child.exited == 0 {
            // Before its exec the worker still has the spawner's empty environment: that is no one else's either.
            let found = Self.owner(ofProcess: child.pid)
            guard found == owner || found == [] else { continue }
            if child.group == child.pid { kill(-child.pid, SIGKILL) }
            kill(child.pid, SIGKILL)
        }
    }

    /// The owner entries of a process's environment; nil if it cannot be read (gone, or not dumpable).
    private static func owner(ofProcess pid: Int32) -> [UInt8]? {
        guard let environment = FileSystem.readFile(PathBytes("/proc/\(pid)/environ"), limit: 1 << 20) else { return nil }
        return owner(inEnvironment: environment.split(separator: 0, omittingEmptySubsequences: true))
    }

    private static func doubled(_ delay: DispatchTimeInterval, cap: DispatchTimeInterval) -> DispatchTimeInterval {
        guard case .milliseconds(let ms) = delay, case .milliseconds(let limit) = cap else { return cap }
        return .milliseconds(min(ms * 2, limit))
    }
}

/// Live workers of every supervisor in this process, pid to owner: one supervisor's sweep must not
/// take another's workers (in the daemon there is one; the tests have several) for orphans.
/// Spawns register under the lock, so a sweep never sees a new worker unregistered.
final class WorkerRegistry: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var workers: [Int32: [UInt8]] = [:]

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    func withLock<R>(_ body: (inout [Int32: [UInt8]]) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&workers)
    }
}
