#if canImport(Glibc)
import Glibc
#endif
@preconcurrency import Dispatch
import DequeModule
import Logging
import OrchestratorConfig
import OrchestratorCore
import OrchestratorMetrics
import OrchestratorPlatform
import OrchestratorSchedule
import OrchestratorStore
import Synchronization

/// Everything that can happen to the daemon, as one event type on one queue.
enum DispatcherEvent {
    case watch([WatchEvent])
    case workerExited(jobID: Int64, WorkerExit)
    case filesMoved([Dispatcher.MovedFile])
    case timerFired
    /// SIGTERM/SIGINT stop the daemon; SIGHUP reloads its config.
    case signal(Int32)
    /// A command recorded something for the daemon (an event, a task toggled) and touched the wake folder.
    case wake
    /// A reload asked for by a service beside the dispatcher (`POST /api/v1/reload`), which wants its outcome.
    case reload(reply: @Sendable (ReloadOutcome) -> Void)
    /// A service beside the dispatcher failed (the HTTP API could not listen): the daemon stops as at SIGTERM, and says why.
    case serviceFailed(String)
}

/// What a timer on the wheel is for.
enum TimerPurpose: Hashable, Sendable {
    case settle(RelativePath)
    case retry(jobID: Int64)
    case timeout(jobID: Int64)
    case killAfterGrace(jobID: Int64)
    case ingestSweep
    case shutdownDeadline
    case watchdogPing
    case flushWrites
    /// The next batch of finished files may go to the mover (see `moveFinishedFiles`).
    case moveBatchDue
    case taskSlot(task: String)
    /// A worker killed from outside: its verdict waits for a stop signal that may be on its way.
    case verdictDue(jobID: Int64)
    case breakerCooldown(JobOwner)
    case admissionRecheck
    /// The store's note of why the queue waits is written again (see noteAdmission).
    case admissionNote
    case watchdogSweep
    case retrySweep
    case uploadSweep
    case hostSample
    /// Paused for a full disk: the failed writes are tried again.
    case diskRetry
    /// Nothing has run for a moment: the long-lived spawner can go.
    case spawnerIdle
    case pruneSweep
    /// The store's server was away when the session holding the store ended: try to take it again.
    case storeHoldRetry
    /// A shared store's daemon says it is alive (see Dispatcher+Node).
    case nodeHeartbeat
    /// A shared store's daemon renews the leases of the jobs it runs (see Dispatcher+Claims).
    case leaseRenewal
    /// Listening for other daemons' work failed (the server is away): try again.
    case wakeupRetry
    /// The next job of the shared store is due, or a lease runs out (see Dispatcher+Wakeups).
    case claimableDue
}

/// Whose command a job runs: a file's handler or a task, by name, so that a job keeps its owner across a
/// reload that reorders, adds or removes handlers and tasks.
enum JobOwner: Hashable, Sendable {
    case handler(String)
    case task(String)
    /// The handler's `upload` command, for a file in Done.
    case upload(String)

    var isUpload: Bool {
        if case .upload = self { return true }
        return false
    }
}

/// What a one-shot run does before it exits: `sweep` without a daemon, `task run` without a daemon.
struct BatchWork: Sendable {
    /// Process what waits in Inbox (and claimed files left in the processing area).
    var ingest = false
    /// Run the retries that are due.
    var retry = false
    /// Run the pending uploads that are due.
    var upload = false
    /// Run this task once, in the foreground.
    var taskRun: String?
}

/// What a one-shot run did, for its summary.
struct BatchReport: Sendable {
    var filesDone = 0
    var filesFailed = 0
    var retryingLater = 0
    var uploadsDone = 0
    var uploadsFailed = 0
    var uploadsRetryingLater = 0
    var taskJob: Int64?
    var taskSucceeded: Bool?
    var taskReason: String?
}

/// A job that is not finished, as the dispatcher tracks it in memory.
struct LiveJob {
    let id: Int64
    /// The file's path relative to Inbox, or the task's name.
    let name: RelativePath
    var owner: JobOwner
    var state: JobState
    /// Its base priority, 1...10; 11 for a run queued by `task run`.
    var priority: Int
    var attempts: Int
    /// The budget it was recorded with; a reload's new one is recorded when its next attempt starts.
    var maxAttempts: Int
    var retryTimer: TimerHandle?
    /// A task run's event: its body, if it came with one, is the run's ORCH_EVENT_FILE.
    var eventID: Int64? = nil

    /// The log metadata key that names it.
    var logKey: String { owner.kind.logKey }
}

struct RunningAttempt {
    let jobID: Int64
    let number: Int
    /// What it runs under: a reload does not change a running attempt.
    let spec: Dispatcher.RunSpec
    let worker: WorkerHandle
    let estimate: LoadEstimate
    var timeoutTimer: TimerHandle?
    var killTimer: TimerHandle?
    var timedOut = false
    var interrupted = false
    let startedAt: UInt64
    /// Its owner's metrics, looked up once at the start.
    var meter: OwnerMeter? = nil
}

/// Inbox entries no path-based call can reach (longer than PATH_MAX, here or once in the processing area): counted per
/// walk of Inbox, a few named.
struct UnreachableEntries: Equatable {
    private(set) var count = 0
    private(set) var examples: [RelativePath] = []
    private var claimsRefused: Set<RelativePath> = []

    /// A claim refused with ENAMETOOLONG (the path is longer under the processing area).
    mutating func claimRefused(_ name: RelativePath) {
        guard claimsRefused.insert(name).inserted else { return }
        count += 1
        if examples.count < 3 { examples.append(name) }
    }

    /// A walk began: what it finds (and the claims it tries) count anew.
    mutating func walkStarted() { self = UnreachableEntries() }

    /// What the walk found beyond the claims.
    mutating func walkFound(count found: Int, examples more: [RelativePath]) {
        count += found
        examples = Array((examples + more).prefix(3))
    }

    var problem: String? {
        guard count > 0 else { return nil }
        let named = examples.map { "\($0)" }.joined(separator: ", ")
        return "\(count) entr\(count == 1 ? "y" : "ies") in Inbox with a path too long to reach or claim (over 4096 bytes, here or under the processing area), e.g. \(named): never processed; move them higher up"
    }
}

/// A file renamed into the processing area this cycle, with what kind of entry it is there.
struct Claim {
    let name: RelativePath
    /// As it is in the processing area; nil if it vanished right after the rename.
    let status: FileStatus?

    var identity: (device: UInt64, inode: UInt64)? { status.map { ($0.device, $0.inode) } }

    enum Verdict {
        case queue(Handler)
        /// Recorded as failed at once, and moved to Failed/ with `reason`.
        case fail(reason: String, detail: String)
    }

    /// How the claimed file is recorded: queued for `handler` (the one the config gives its name), or failed at once
    /// when it is no regular file (guarantee 10: it never reaches a worker) or no handler takes it.
    func verdict(handler: Handler?) -> Verdict {
        if let kind = status?.kind, kind != .regular {
            let reason = Dispatcher.notRegular(kind)
            return .fail(reason: reason, detail: reason)
        }
        guard let handler else { return .fail(reason: "no handler", detail: "no handler matches") }
        return .queue(handler)
    }
}

/// A finished file that could not leave the processing area (guarantee 16).
struct StuckMove {
    let job: Dispatcher.FinishedJob
    var reason: String
    /// It failed for lack of space (which pauses the daemon until a move goes through).
    var outOfSpace = false
    /// A retry is on the mover queue.
    var retrying = false
}

/// A worker's exit whose verdict waits (see `AttemptVerdict.undecided`).
struct UndecidedExit {
    let exit: WorkerExit
    let attempt: RunningAttempt
    let ending: AttemptEnding
    let timer: TimerHandle
}

/// The single state machine of the daemon.
///
/// Every source (inotify, worker exits, the timer wheel, signals) posts an event onto one serial
/// queue. Events are handled in cycles: all events that arrived are applied to memory, then the
/// store is written once for the whole cycle (group commit), then files are moved and workers
/// started. One transaction per cycle instead of per transition is what keeps durable bookkeeping
/// cheap under bursts, while an idle daemon has no cycles at all.
final class Dispatcher: @unchecked Sendable {  // confined to `queue`
    /// The config in force; SIGHUP replaces it (see Dispatcher+Reload).
    var config: Config
    /// When the config in force was loaded (Unix seconds), for `status`.
    var configLoadedAt: UnixTime
    let store: any Store
    let logger: Logger
    /// nil: nothing is measured (one-shot commands, tests). See Dispatcher+Metrics.
    let metrics: DaemonMetrics?
    let queue = DispatchQueue(label: "orchestrator.dispatcher")
    /// Renames into Done/Failed and their directory fsyncs run here, so that the dispatcher keeps
    /// reaping and starting workers meanwhile. Its results come back as `.filesMoved`.
    let moverQueue = DispatchQueue(label: "orchestrator.mover")
    var movesInFlight = 0
    let supervisor: ProcessSupervisor
    let notifier: SystemdNotifier
    let layout: Layout
    let workerEnvironment: [[UInt8]]

    var watcher: InotifyWatcher?
    var wheel: TimerWheel<TimerPurpose>
    /// Created by `start`: worker fds, the timer and the mover's results wake its thread.
    var eventLoop: EventLoop?
    var armedWakeup: UInt64?
    var signalSources: [any DispatchSourceSignal] = []
    /// Set by a stop signal off the dispatcher's queue: a write waiting inside the store (see `LongWaitHooks`) holds
    /// that queue, so the signal's event could not reach it.
    let stopSignalled = StopSignal()
    /// The event loop's watch on the store's hold (`Store.holdDescriptor`), see Dispatcher+StoreHold.
    var storeHoldWatch: EventLoop.Registration?
    /// The hold's server is away and that was said: the retries every second say nothing more until it is back.
    var storeHoldAway = false

    var jobs: [Int64: LiveJob] = [:]
    var names = NameLedger()
    var ready: ReadyQueue<Int64>
    var readyCount: Int { ready.count }
    var running: [Int64: RunningAttempt] = [:]
    /// Files in Inbox being written, until they count as arrived.
    var settling: SettleBook<TimerHandle>
    /// Workers killed from outside whose verdict waits for a stop signal that may be on its way.
    var undecided: [Int64: UndecidedExit] = [:]
    var scan: DirectoryCursor?

    // Tasks (see Dispatcher+Tasks).
    /// By task name; every configured task has one.
    var taskRuntimes: [String: TaskRuntime] = [:]
    var latestTaskRuns: [String: RunSummary] = [:]
    /// Event name to the names of the tasks listening to it.
    var eventListeners: [String: [String]] = [:]
    var recoveredTaskJobs: [JobRecord] = []
    var recoveredUploads: [JobRecord] = []
    var quietTaskRuns: Set<Int64> = []
    /// Finished files whose move out of the processing area failed; the watchdog sweep tries again.
    var stuckMoves: [Int64: StuckMove] = [:]
    var daemonStartMs: Int64 = 0
    var wakeWatcher: InotifyWatcher?

    /// Cancels, priorities and handler pauses (see Dispatcher+Intervention).
    var intervention = InterventionState()

    // Circuit breakers (see Dispatcher+Breakers).
    var breakers: [JobOwner: CircuitBreaker]
    var breakerParked: [JobOwner: Deque<Int64>] = [:]
    var breakerTimers: [JobOwner: TimerHandle] = [:]

    // Admission (see Dispatcher+Workers).
    var admission: AdmissionPolicy
    var hostMonitor = HostMonitor()
    var spawnThrottle = SpawnThrottle()
    /// While paused for a full disk: the next retry's delay, and whether `error.critical` still has to fire.
    var diskRetryDelay = Dispatcher.firstDiskRetry
    var criticalPending = false
    /// What the current pause is for (see `PauseReason`).
    var pauseReason = PauseReason(text: "", forSpace: true)
    /// The pause began with a move that ran out of space: it ends when a move goes through.
    var pausedByMoves = false
    var diskRetryTimer: TimerHandle?
    var spawnerIdleTimer: TimerHandle?
    var nodeHeartbeatTimer: TimerHandle?
    /// What the log last said of the store's daemons' configs disagreeing (nil: they agree).
    var configDisagreementLogged: String?
    /// On a shared store: the claims this daemon holds on running jobs, and the jobs whose claim it found lost
    /// (see Dispatcher+Claims).
    var claimLedger = ClaimLedger()
    var leaseTimer: TimerHandle?
    /// Other daemons may have queued work this one has not seen: free slots claim from the store.
    var foreignWorkPending = false
    /// Jobs with a cancel or priority request left for the daemon that holds them: one this daemon claims from the
    /// store takes its request before it starts (see `claimForeignWork`).
    var requestsLeftToHolders: Set<Int64> = []
    /// Files in the shared processing area with no job at the last watchdog sweep (see `adoptOrphanedFiles`).
    var orphanCandidates: [RelativePath: FileStatus] = [:]
    /// Announcements of other daemons' work (see Dispatcher+Wakeups).
    var wakeups: (any StoreWakeups)?
    var wakeupWatch: EventLoop.Registration?
    var claimableTimer: TimerHandle?
    /// When the last batch of finished files went to the mover, and the timer for the next one.
    var lastMoveBatch: UInt64?
    var moveBatchTimer: TimerHandle?
    /// Files that reached Done while the disk was full; their uploads are recorded when space returns.
    var uploadsToRecord: [MovedFile] = []
    /// Task runs that came due while the disk was full; recorded and queued when space returns.
    var dueWhilePaused: [PendingRun] = []
    /// Tells `status` what the store cannot while the disk is full (see StatusBoard).
    var statusBoard: StatusBoard?
    /// The board's first line: the pause or the stop ("" when neither), see `postBoard`.
    var boardHeadline = ""
    /// The board's line about the store's files (its database removed under the daemon), see `postStoreTrouble`.
    var boardStoreTrouble: String?
    var runningEstimate = LoadEstimate.none
    var admissionWait: String?
    /// The limit behind `admissionWait`, counted in metrics when it changes.
    var admissionLimit: AdmissionLimit?
    /// When the store's note of `admissionWait` was last written, and what it says (see noteAdmission).
    var admissionNoted: (text: String?, at: UInt64) = (nil, 0)
    var admissionNoteTimer: TimerHandle?
    var admissionRecheck: TimerHandle?
    var hostSampling: TimerHandle?
    var lastHealthy = true
    var watchedInbox: FileStatus?
    /// On a shared store, why this daemon's folders are no longer the store's (a symlink on the way was re-pointed
    /// while it ran); nil while they are. Meanwhile Inbox is neither watched nor walked.
    var foldersAstray: String?
    /// A claim is being tried again after the processing area was made again: a second failure is only logged.
    var recreatingProcessing = false
    /// The wake folder the daemon watches, to see it replaced.
    var watchedWake: FileStatus?
    /// The wake folder's watch reported the folder gone.
    var wakeFolderGone = false
    /// The SQLite database file the store opened, to see it removed or replaced under the daemon.
    var openedDatabase: FileStatus?
    /// Its write-ahead log, where every commit goes first: removed, the commits go on into the unlinked file and the next
    /// reader (or start) sees none of them.
    var openedLog: FileStatus?
    /// The daemon's lock files (state dir, Inbox, processing area), which the watchdog sweep keeps in place.
    var heldLocks: [InstanceLock] = []
    var rescanRequested = false
    /// Entries in Inbox whose path is too long to reach or to claim (over PATH_MAX here or under the processing area),
    /// as the last complete walk found them, for the health snapshot: they are never processed.
    var unreachableInInbox = UnreachableEntries()
    /// Files the current Inbox walk claimed (events announce the others).
    var scanClaimed = 0

    // The current cycle.
    var pendingEvents: [DispatcherEvent] = []
    var cycleScheduled = false
    var inLoopRound = false
    /// Workers that exited 0 this cycle, recorded after the cycle's first starts (`finishSucceededExits`).
    var succeededExits: [(jobID: Int64, exit: WorkerExit, attempt: RunningAttempt)] = []
    var newClaims: [Claim] = []
    /// Files arrived whole and not yet claimed: claimed a queue's worth at a time (see `ArrivalQueue`).
    var arrivals = ArrivalQueue<RelativePath>()
    var finishedJobs: [FinishedJob] = []
    /// The writes waiting for the next commit, and the names of moved files that commit frees.
    var writes = WriteBatch<(any StoreTransaction) throws -> Void, (name: RelativePath, job: Int64)>()
    var flushTimer: TimerHandle?
    var flushDue: UInt64 = 0
    /// An attempt's end is among the pending writes (see deferWrites).
    var attemptEndsUncommitted = false
    /// Starts among the pending writes, which a short worker's end and its job's next state join (single store).
    var attemptDrafts = AttemptRowDrafts<(result: AttemptResult, at: UnixTime)>()
    /// Attempt ends among the pending writes, which their job's end takes into its statement (shared store).
    var attemptEnds = AttemptEndHandOff<ClaimedRun, (result: AttemptResult, at: UnixTime)>()
    /// Every pending write is one `recordForStatus` made: no commit of its own.
    var writesWaitForNothing = false
    /// The last commit failed (the disk under SQLite is full, the server is away): a pause for a full Done or Failed
    /// leaves a shared store writable, and this daemon must go on renewing its leases there.
    var storeUnavailable = false

    var phase = DaemonPhase.starting
    /// The exit code once drained: 1 when a one-shot run gave up (no space).
    var stopExitCode: Int32 = 0
    /// Timers of the sweeps under `watch`, so that a reload can re-arm them at new intervals.
    var sweepTimers: [TimerPurpose: TimerHandle] = [:]
    var processedCount = 0
    var lastStatusNotice: UInt64 = 0
    let onStop: @Sendable (Int32) -> Void
    /// Told of every config a reload applies (the services beside the dispatcher work with the config in force).
    var onConfigApplied: (@Sendable (Config) -> Void)?
    /// nil: the daemon. Otherwise a one-shot run that stops once its work is done.
    let batch: BatchWork?
    var batchReport = BatchReport()

    struct FinishedJob: Sendable {
        let jobID: Int64
        let name: RelativePath
        let succeeded: Bool
        /// The handler that ran it (nil: no handler matched).
        var handler: String? = nil
        /// Its "done" line, said once its end is known to hold (see `sayDone`).
        var doneLine: DoneLine? = nil
    }

    /// What a success's log line says besides the file: which attempt, and how long it ran.
    struct DoneLine: Sendable {
        let attempt: Int
        let milliseconds: UInt64
    }

    /// A job and the claim it runs under.
    struct ClaimedRun: Hashable {
        let job: Int64
        let claim: Int
    }

    struct MovedFile: Sendable {
        let job: FinishedJob
        /// Where it went under Done/ or Failed/; nil if it was gone (its worker removed it) or could not move.
        let finalName: RelativePath?
        let error: String?
        /// The errno of a failed move: out of space pauses the daemon.
        var errorCode: Int32? = nil
    }

    struct Layout: Sendable {
        let inbox: PathBytes
        let processing: PathBytes
        let done: PathBytes
        let failed: PathBytes
        let state: PathBytes
        let logs: PathBytes
    }

    init(
        config: Config, store: any Store, logger: Logger, notifier: SystemdNotifier, batch: BatchWork? = nil,
        metrics: DaemonMetrics? = nil, onStop: @escaping @Sendable (Int32) -> Void
    ) {
        self.config = config
        self.metrics = metrics
        configLoadedAt = Self.wallClock()
        self.batch = batch
        self.store = store
        self.logger = logger
        self.notifier = notifier
        // Said while the dispatcher's thread waits in a write (a lost COMMIT's outcome), so not through its events. The
        // daemon waits as long as the server is away (nothing could be recorded meanwhile anyway), petting the service
        // manager's watchdog, until a stop signal; a one-shot run gives up after a while, as without hooks.
        let oneShot = batch != nil
        store.handLongWaits(LongWaitHooks(
            notice: { [logger, notifier] text in
                logger.critical("\(text)")
                notifier.notify("STATUS=\(text)")
            },
            stillWaiting: { [notifier] in
                if notifier.watchdogInterval != nil { notifier.notify("WATCHDOG=1") }
            },
            givesUp: { [stopSignalled] waited in stopSignalled.isSet || (oneShot && waited >= LongWaitHooks.boundedWait) }))
        self.onStop = onStop
        supervisor = ProcessSupervisor(queue: queue, subreaper: true)
        let inbox = PathBytes(config.paths.inbox)
        layout = Layout(
            inbox: inbox, processing: PathBytes(config.paths.processing),
            done: PathBytes(config.paths.done), failed: PathBytes(config.paths.failed),
            state: PathBytes(config.paths.state), logs: PathBytes(config.paths.state + "/logs"))
        workerEnvironment = WorkerEnvironment.inherited(stateDirectory: config.paths.state)
        wheel = TimerWheel(now: Self.monotonicMilliseconds())
        breakers = Self.makeBreakers(config)
        eventListeners = Self.eventListeners(config)
        admission = Self.admission(config)
        ready = ReadyQueue(agingStep: Self.agingStep(config))
        settling = SettleBook(settle: UInt64(max(0, config.inbox.settle.wholeMilliseconds)))
        if let metrics { serveGauges(to: metrics) }
    }

    static func eventListeners(_ config: Config) -> [String: [String]] {
        var listeners: [String: [String]] = [:]
        for task in config.tasks {
            if case .event(let name) = task.trigger { listeners[name, default: []].append(task.name) }
        }
        return listeners
    }

    static func admission(_ config: Config) -> AdmissionPolicy {
        AdmissionPolicy(
            maxConcurrent: config.limits.maxConcurrent, maxCPU: config.limits.maxCPUPercent,
            maxMemory: config.limits.maxMemoryPercent)
    }

    static func agingStep(_ config: Config) -> UInt64 { UInt64(max(0, config.limits.starvationAfter.wholeMilliseconds)) }

    // MARK: Clocks

    static func monotonicMilliseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

    var now: UInt64 { Self.monotonicMilliseconds() }

    /// Milliseconds from now until `instant`, 0 once it has passed. `now` reads the clock at each use, so a check
    /// `instant > now` followed by `instant - now` can see the clock tick in between and underflow (a trap).
    func millisecondsUntil(_ instant: UInt64) -> UInt64 {
        let current = now
        return instant > current ? instant - current : 0
    }

    static func wallClock() -> UnixTime {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    func ticks(_ duration: Duration) -> UInt64 { UInt64(max(0, duration.wholeMilliseconds)) }

    // MARK: Event intake

    /// Called on `queue` by every source. Events arriving together are handled in one cycle.
    func post(_ event: DispatcherEvent) {
        dispatchPrecondition(condition: .onQueue(queue))
        pendingEvents.append(event)
        scheduleCycle()
    }

    func scheduleCycle() {
        guard !cycleScheduled, phase != .stopped else { return }
        cycleScheduled = true
        // Inside a round of the event loop the cycle runs when the round ends, on the thread already awake.
        guard !inLoopRound else { return }
        queue.async { [self] in if cycleScheduled { runCycle() } }
    }

    /// A round of the event loop (worker exits and output, the timer, the mover's results): one cycle after
    /// all of it.
    func loopRound(_ handlers: () -> Void) {
        inLoopRound = true
        handlers()
        inLoopRound = false
        if cycleScheduled { runCycle() }
    }

    func runCycle() {
        cycleScheduled = false
        guard phase != .stopped else { return }
        let events = pendingEvents
        pendingEvents.removeAll(keepingCapacity: true)
        for event in events {
            // Whatever else happens sees the successes recorded: only exits may go ahead of them.
            if case .workerExited = event {} else { finishSucceededExits() }
            handle(event)
        }
        // Slots freed by exits are refilled first from jobs already committed: the claim commit and the
        // moves below wait on fsyncs, and a free slot should not wait with them.
        startWorkers()
        finishSucceededExits()
        claimArrivals()
        continueScan()
        commitClaims()
        startWorkers()
        claimForeignWork()
        // More arrived than the queue had room for, and room is left (workers took some, or the claims went to
        // other daemons): another cycle, after whatever events came meanwhile (worker exits first of all).
        if arrivalsCanProceed { scheduleCycle() }
        // Idle for a moment (nothing queued or running): the spawner goes, and comes back with the next worker
        // (see releaseSpawner). Not at every empty queue, or a trickle of files would start one per file.
        if readyCount == 0, running.isEmpty, spawnerIdleTimer == nil, supervisor.spawnerPID != nil {
            spawnerIdleTimer = schedule(.spawnerIdle, after: Self.spawnerIdleDelay)
        }
        moveFinishedFiles()
        deferWrites()
        // Last, so that the zygotes told to exec this cycle are running before the spawner wakes to fork more.
        supervisor.sendZygoteOrders()
        armTimer()
        reportStatus()
        finishShutdownIfDrained()
        finishBatchIfDone()
    }

    private func handle(_ event: DispatcherEvent) {
        switch event {
        case .watch(let events): handleWatchEvents(events)
        case .workerExited(let jobID, let exit): handleExit(jobID: jobID, exit)
        case .filesMoved(let moved): filesMoved(moved)
        case .timerFired: fireTimers()
        case .signal(let number):
            if number == SIGHUP, batch == nil {
                reload()
            } else {
                // A foreground `task run` is the operator's own: stopping it (Ctrl-C) cancels the run, ending its group
                // now, rather than waiting out the grace and leaving it for the next start to run again.
                if batch?.taskRun != nil, !phase.isStopping, let jobID = batchReport.taskJob, jobs[jobID] != nil {
                    _ = cancel(jobID: jobID, reason: "stopped by \(Self.signalName(number)) while it ran in the foreground")
                }
                beginShutdown(signal: number)
            }
        case .wake: wakeRequested()
        case .reload(let reply): reply(batch == nil ? reload(cause: "POST /api/v1/reload") : .stopping)
        case .serviceFailed(let why): if !phase.isStopping { beginShutdown(signal: SIGTERM, cause: why) }
        }
    }

    // MARK: Timers

    func schedule(_ purpose: TimerPurpose, after delay: UInt64) -> TimerHandle {
        wheel.schedule(at: now + delay, purpose)
    }

    /// (Re-)arms a sweep's timer at its configured interval.
    func armSweep(_ purpose: TimerPurpose) {
        if let old = sweepTimers.removeValue(forKey: purpose) { wheel.cancel(old) }
        let interval: Duration
        switch purpose {
        case .ingestSweep: interval = config.sweeps.ingest
        case .retrySweep: interval = config.sweeps.retry
        case .uploadSweep:
            guard config.handlers.contains(where: { $0.upload != nil }) else { return }
            interval = config.sweeps.upload
        case .watchdogSweep: interval = config.sweeps.watchdog
        case .pruneSweep: interval = config.sweeps.prune
        default: return
        }
        sweepTimers[purpose] = schedule(purpose, after: ticks(interval))
    }

    private func fireTimers() {
        for (_, purpose) in wheel.advance(to: now) {
            switch purpose {
            case .settle(let name): settleTimerFired(name)
            case .retry(let jobID): retryDue(jobID)
            case .timeout(let jobID): timeoutReached(jobID)
            case .killAfterGrace(let jobID): killAfterGrace(jobID)
            case .ingestSweep:
                sweepTimers[purpose] = nil
                ingestSweepDue()
            case .shutdownDeadline: shutdownDeadlineReached()
            case .watchdogPing: watchdogPing()
            case .taskSlot(let task): taskSlotDue(task)
            case .verdictDue(let jobID): verdictDue(jobID)
            case .breakerCooldown(let owner): breakerCooldownOver(owner)
            case .admissionRecheck: admissionRecheck = nil  // The cycle that follows calls startWorkers.
            case .watchdogSweep:
                sweepTimers[purpose] = nil
                watchdogSweep()
            case .retrySweep:
                sweepTimers[purpose] = nil
                retrySweep()
                armSweep(.retrySweep)
            case .hostSample: hostSampleDue()
            case .admissionNote:
                admissionNoteTimer = nil
                writeAdmissionNote()
            case .diskRetry: diskRetryDue()
            case .spawnerIdle:
                spawnerIdleTimer = nil
                if readyCount == 0, running.isEmpty { supervisor.releaseSpawner() }
            case .pruneSweep:
                sweepTimers[purpose] = nil
                pruneSweepDue()
            case .uploadSweep:
                sweepTimers[purpose] = nil
                retrySweep(uploadsOnly: true)
                armSweep(.uploadSweep)
            case .flushWrites:
                flushTimer = nil
                flushWrites()
            case .moveBatchDue:
                moveBatchTimer = nil  // The cycle that follows sends the batch.
            case .storeHoldRetry: storeHoldChanged()
            case .nodeHeartbeat: nodeHeartbeatDue()
            case .leaseRenewal: leaseRenewalDue()
            case .wakeupRetry: wakeupsReadable()
            case .claimableDue: claimableDue()
            }
        }
    }

    /// One OS timer, armed for the wheel's next wake-up; none at all when the wheel is empty.
    func armTimer() {
        let next = wheel.nextWakeup()
        guard next != armedWakeup else { return }
        armedWakeup = next
        guard let eventLoop else { return }
        eventLoop.setTimer(after: next.map(millisecondsUntil))
    }

    /// The loop that wakes the dispatcher: worker fds (through the supervisor), the wheel's timer, the mover.
    func installEventLoop() throws {
        let loop = try EventLoop(queue: queue)
        loop.round = { [weak self] handlers in
            if let self { loopRound(handlers) } else { handlers() }
        }
        loop.onTimer = { [weak self] in
            guard let self else { return }
            armedWakeup = nil
            post(.timerFired)
        }
        supervisor.eventLoop = loop
        eventLoop = loop
    }

    // MARK: Store writes

    /// Queues a write for this cycle's transaction.
    func record(_ write: @escaping (any StoreTransaction) throws -> Void) {
        writes.record(write)
        writesWaitForNothing = false
    }

    /// A write only `status` reads (a sweep's note, the health snapshot): on a shared store it waits for the next
    /// commit there is anyway, at the latest the heartbeat's, so that an idle daemon commits twice a minute.
    func recordForStatus(_ write: @escaping (any StoreTransaction) throws -> Void) {
        guard claimsJobs else { return record(write) }
        if writes.isEmpty { writesWaitForNothing = true }
        writes.record(write)
    }

    /// Writes that need not precede any effect (rows of workers just started, retry bookkeeping) wait
    /// for the next cycle's commit, or at most `deferredWriteDelay`: under load one commit then serves
    /// several cycles, and the store is never more than a moment behind.
    func deferWrites() {
        guard !writes.isEmpty, !phase.isPausedForDisk, !writesWaitForNothing || phase.isStopping else { return }
        if phase.isStopping {
            flushWrites()
            return
        }
        // An attempt's end is what keeps finished work from running again after a crash of the daemon: it waits
        // for a commit a few milliseconds at most (under load the move batches came 20-40 ms apart, and a kill in
        // between ran completed files again).
        let due = now + (attemptEndsUncommitted ? Self.attemptEndWriteDelay : Self.deferredWriteDelay)
        if let timer = flushTimer {
            guard due < flushDue else { return }
            wheel.cancel(timer)
        }
        flushDue = due
        flushTimer = wheel.schedule(at: due, .flushWrites)
    }

    static let deferredWriteDelay: UInt64 = 20
    static let longCommitSeconds: Double = 5
    static let attemptEndWriteDelay: UInt64 = 3
    static let spawnerIdleDelay: UInt64 = 1000

    /// Commits the pending writes; false if they could not be (they stay pending).
    @discardableResult
    func flushWrites() -> Bool {
        if let timer = flushTimer {
            wheel.cancel(timer)
            flushTimer = nil
        }
        guard !writes.isEmpty else { return true }
        return commit("write the state database") { _ in } != nil
    }

    /// One write batch: the pending writes and `body` in one transaction (one fsync). On success the pending
    /// writes are done. Out of space, they stay pending, the daemon pauses and nil is returned; any other
    /// failure stops the daemon, since the store is the ledger every guarantee rests on.
    func commit<T>(_ what: String, _ body: (any StoreTransaction) throws -> T) -> T? {
        let batch = writes.snapshot()
        let started = Self.wallClock()
        do {
            let result = try store.write { transaction in
                for write in batch.writes { try write(transaction) }
                return try body(transaction)
            }
            attemptDrafts.committed()
            attemptEnds.committed()
            for (name, job) in writes.committed(batch) {
                for waiting in names.release(name, job: job) { noteActivity(waiting) }
            }
            if writes.isEmpty {
                writesWaitForNothing = false
                attemptEndsUncommitted = false
            }
            storeUnavailable = false
            // A commit that waited long (its server gone while it was on its way) left this daemon silent meanwhile:
            // it beats now rather than at its next heartbeat, so that `status` does not call it silent or dead.
            if sharesStore, Self.wallClock() - started > Self.longCommitSeconds, !phase.isStopping {
                armHeartbeat(after: 0)
            }
            return result
        } catch {
            storeUnavailable = true
            switch StoreFailure.classify(error) {
            case .outOfSpace:
                pauseForDisk(path: layout.state, reason: "cannot \(what): \(error)")
            case .unreachable:
                pauseForDisk(path: layout.state, reason: "cannot \(what): \(error)", why: "the store's server cannot be reached")
            case .busy:
                // Another process holds the store (a one-shot prune's VACUUM): the same pause as for a full
                // disk, so that everything waiting on this commit is retried, not dropped.
                pauseForDisk(path: layout.state, reason: "cannot \(what): \(error)", why: "the state database is busy")
            case .fatal:
                logger.critical("cannot \(what); stopping", metadata: ["error": "\(error)"])
                stop(exitCode: 1)
            }
            return nil
        }
    }

    // MARK: sd_notify

    private func reportStatus() {
        guard notifier.isActive, now - lastStatusNotice >= 1000 else { return }
        lastStatusNotice = now
        notifier.notify("STATUS=\(processedCount) files processed, \(readyCount) queued, \(running.count) running")
    }

    private func watchdogPing() {
        notifier.notify("WATCHDOG=1")
        if let interval = notifier.watchdogInterval {
            _ = schedule(.watchdogPing, after: ticks(interval))
        }
    }

    func startWatchdogPings() {
        if notifier.watchdogInterval != nil { watchdogPing() }
    }

    // MARK: Stopping

    func stop(exitCode: Int32) {
        guard phase != .stopped else { return }
        phase = .stopped
        do {
            try store.syncToDisk()
        } catch {
            logger.error("\(error); the latest records may be lost if the machine loses power now")
        }
        watcher?.cancel()
        wakeWatcher?.cancel()
        eventLoop?.stop()
        for source in signalSources { source.cancel() }
        supervisor.endEscapedDescendants()
        notifier.notify("STOPPING=1")
        onStop(exitCode)
    }
}

/// A stop signal's arrival, readable from any thread.
final class StopSignal: Sendable {
    private let arrived = Atomic<Bool>(false)

    var isSet: Bool { arrived.load(ordering: .acquiring) }

    func set() { arrived.store(true, ordering: .releasing) }
}
