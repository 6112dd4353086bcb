import OrchestratorCore

/// The durable ledger, whatever engine keeps it: one row per job, per attempt and per state transition, and
/// the small tables beside them (events, requests, task state, breakers, daemon notes).
///
/// The dispatcher and the commands see only this protocol and the two below; each engine keeps all of its
/// SQL to itself. `SQLiteStore` is the engine of a single daemon. The daemon commits the transitions of a
/// whole dispatch cycle in one `write`, which is what makes durable bookkeeping affordable at thousands of
/// files per second, so an engine must make one `write` one transaction.
///
/// Errors an engine throws are classified by `StoreFailure.classify` (full disk, busy, or fatal); an engine
/// whose errors are not SQLite's or the system's makes them `StoreFailureClassifying`.
public protocol Store: AnyObject, Sendable {
    /// Where the ledger is, for messages: the SQLite file, or the server and database.
    var location: String { get }
    /// Runs `body` in one transaction and commits it; a throw rolls all of it back.
    func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T
    /// Runs `body` on a consistent view of the ledger.
    func read<T>(_ body: (any StoreReader) throws -> T) throws -> T
    /// From now on a commit may return before it is on disk; `syncToDisk` makes every commit so far durable.
    /// The daemon calls that before the effects that must follow a durable record (a file leaving the
    /// processing area, its own stop).
    func syncOnlyWhenAsked() throws
    /// Makes every commit so far durable; throws the errno (ENOSPC and EIO included: then nothing may rely on
    /// the latest commits being on disk).
    func syncToDisk() throws(StoreSyncError)
    /// A write failed for lack of space: gives back what the engine's own log holds on disk, so that what the operator
    /// frees is not taken by it again. Best effort (it may need a little space itself).
    func reclaimLogSpace()
    /// Hands the space freed by deletes back to the filesystem, `pagesPerStep` pages per transaction.
    func reclaimFreePages(pagesPerStep: Int) throws -> ReclaimResult
    /// What the ledger takes on disk, in bytes.
    var bytesOnDisk: Int64 { get }
    /// See the extension below; PostgreSQL's engine has one, SQLite's takes the default.
    var holdDescriptor: Int32? { get }
    func checkHold() throws -> StoreHold?
    /// Starts listening for other processes' commits that make a job claimable (see `StoreWakeups`, which says how
    /// to use it); nil when the engine has nothing to hear (SQLite's: one daemon, which knows its own commits).
    /// Each call opens a listener of its own (on PostgreSQL, a connection of its own).
    func openWakeups() throws -> (any StoreWakeups)?
    /// Tells every daemon listening on the store (`openWakeups`) that requests, events or settings (paused handlers,
    /// disabled tasks) changed, so that they read them now (`WakeupBatch.requests`): a command given the config of a
    /// daemon that is not running is still heard by the others. Nothing on SQLite (one daemon, woken through its
    /// state folder).
    func announceRequests() throws
    /// How a write that waits long (on PostgreSQL: a COMMIT whose answer a crash or a cut network lost, whose outcome
    /// the write waits to learn) says so and learns when to stop waiting; SQLite's never waits so.
    func handLongWaits(_ hooks: LongWaitHooks)
}

/// What a long wait inside a write does besides waiting. Without them a write waits `boundedWait`.
public struct LongWaitHooks: Sendable {
    /// How long a write waits without hooks, and a one-shot command's with them: well inside a unit's `WatchdogSec`
    /// (60 s), since the thread that pets the watchdog is the one waiting.
    public static let boundedWait: Duration = .seconds(20)

    /// Said once, when the wait has lasted a moment: why nothing else happens meanwhile.
    public var notice: @Sendable (String) -> Void
    /// Every few seconds while it lasts: the waiting thread is alive (a service manager's watchdog).
    public var stillWaiting: @Sendable () -> Void
    /// Given how long it has waited: true once the wait should end without an answer (a stop signal came).
    public var givesUp: @Sendable (Duration) -> Bool
    /// How often `stillWaiting` is called.
    public var aliveEvery: Duration

    public init(
        notice: @escaping @Sendable (String) -> Void, stillWaiting: @escaping @Sendable () -> Void,
        givesUp: @escaping @Sendable (Duration) -> Bool, aliveEvery: Duration = .seconds(10)
    ) {
        self.notice = notice
        self.stillWaiting = stillWaiting
        self.givesUp = givesUp
        self.aliveEvery = aliveEvery
    }
}

/// What `Store.checkHold` found: the descriptor to watch from now on, and whether the hold had to be taken again.
public struct StoreHold: Sendable {
    public let descriptor: Int32
    public let renewed: Bool

    public init(descriptor: Int32, renewed: Bool) {
        self.descriptor = descriptor
        self.renewed = renewed
    }
}

extension Store {
    public func reclaimFreePages() throws -> ReclaimResult { try reclaimFreePages(pagesPerStep: 2048) }

    public func handLongWaits(_ hooks: LongWaitHooks) {}

    /// A descriptor that turns readable when this process may have lost the store it holds for itself (a server's
    /// session ending); nil: nothing to watch (SQLite's file is held through the state folder's lock).
    public var holdDescriptor: Int32? { nil }

    /// After `holdDescriptor` turned readable: takes the hold again if it was lost, and throws if it cannot (the
    /// server away: `StoreFailure.unreachable`; another process holds it now: anything else). The descriptor to
    /// watch from now on.
    public func checkHold() throws -> StoreHold? { nil }

    public func openWakeups() throws -> (any StoreWakeups)? { nil }

    public func announceRequests() throws {}
}

/// How a daemon sharing a store learns, without polling, that a job may have become claimable: a descriptor that
/// turns readable when a transaction that made one claimable commits (a job inserted or set `queued`, even with a
/// `not_before` still ahead, or a lease rescued). A wake-up says "look again", not what to take; several commits
/// may fold into one, and the store's own commits wake it too.
///
/// What the caller does:
/// 1. Open it before the first claim, then claim once anyway: only commits after the listener started are heard.
/// 2. Watch `descriptor` for readability; when readable, `drain` (it never waits) and act on the batch:
///    `mustLook` → claim until nothing is due, then sleep until `StoreReader.nextClaimable` at the latest.
/// 3. `renewed`: the listening session had ended and a new one listens now. What was committed in between was not
///    heard, which is why `mustLook` is then true; and the descriptor was closed and replaced (its number may be
///    the same), so take the old one out of the event loop and add `descriptor` again.
/// 4. A throw that `StoreFailure.classify` calls `.unreachable`: the server is away and nothing listens; there is
///    no descriptor to watch (-1). Call `drain` again later (a timer); once the server is back it renews and says so.
///    Any other throw means the listener cannot be used (a refused login): treat it as unreachable or stop.
///
/// Wake-ups only save the wait: a daemon that never hears one must still claim every job in time, at the times
/// `nextClaimable` gives. The object may be used from any thread, one call at a time.
public protocol StoreWakeups: AnyObject, Sendable {
    /// The descriptor to watch for readability; -1 while nothing listens (the server away). It changes when `drain`
    /// reports `renewed`.
    var descriptor: Int32 { get }
    /// Takes in everything that arrived, without waiting; renews a lost session (see the protocol's comment).
    func drain() throws -> WakeupBatch
}

/// What `StoreWakeups.drain` took in.
public struct WakeupBatch: Sendable, Equatable {
    /// At least one commit announced claimable work since the last drain.
    public let notified: Bool
    /// The listening session was lost and a new one listens now: announcements in between are lost.
    public let renewed: Bool
    /// The descriptor to watch from now on (`StoreWakeups.descriptor`).
    public let descriptor: Int32
    /// A command announced requests, events or settings to read (`Store.announceRequests`).
    public let requests: Bool

    public init(notified: Bool, renewed: Bool, descriptor: Int32, requests: Bool = false) {
        self.notified = notified
        self.renewed = renewed
        self.descriptor = descriptor
        self.requests = requests
    }

    /// Whether to read the store's requests, events and settings now: announced, or announcements may have been
    /// missed.
    public var mustReadRequests: Bool { requests || renewed }

    /// Whether to claim now: something was announced, or announcements may have been missed.
    public var mustLook: Bool { notified || renewed }
}

/// When the next job becomes claimable or rescuable (`StoreReader.nextClaimable`). Both times are the store's clock
/// (the server's, for PostgreSQL), read in one statement, so `delay` holds whatever the caller's own clock says.
public struct ClaimableTime: Sendable, Equatable {
    /// The earliest time a queued job is due (`not_before`, or now when it has none) or a running job's lease runs
    /// out; at or before `now` when something is claimable or rescuable already.
    public let at: UnixTime
    /// The store's clock when it was read.
    public let now: UnixTime

    public init(at: UnixTime, now: UnixTime) {
        self.at = at
        self.now = now
    }

    /// Seconds from the read until `at`; 0 when it has passed.
    public var delay: Double { max(0, at - now) }
}

/// Reads, usable inside or outside a write transaction.
public protocol StoreReader {
    // Jobs, attempts, transitions.
    func job(id: Int64) throws -> JobRecord?
    /// The newest job for a name (any state).
    func latestJob(kind: JobKind, name: RelativePath) throws -> JobRecord?
    /// The newest job whose file ended under this path in Done/ or Failed/.
    func latestJob(finalPath: RelativePath) throws -> JobRecord?
    /// In id order.
    func jobs(inStates states: [JobState]) throws -> [JobRecord]
    /// Newest first (by id, the order of creation), at most `limit`.
    func jobs(_ filter: JobFilter, limit: Int) throws -> [JobRecord]
    /// Finished jobs whose file has not been moved out of the processing area yet.
    func unmovedFinishedJobs() throws -> [JobRecord]
    /// In attempt order.
    func attempts(jobID: Int64) throws -> [AttemptRecord]
    func runningAttempts() throws -> [AttemptRecord]
    /// The job's running attempt, if one is recorded.
    func runningAttempt(jobID: Int64) throws -> AttemptRecord?
    func transitions(jobID: Int64) throws -> [(at: UnixTime, from: String?, to: String, detail: String?)]
    /// Attempts, newest first; `failedOnly` keeps attempts that failed or were cancelled.
    func history(limit: Int, failedOnly: Bool) throws -> [HistoryRow]
    /// Failed jobs that no failed or cancelled attempt explains, newest first: those that never started (no handler,
    /// not a regular file, cancelled while waiting) and those failed after an interrupted attempt (their handler
    /// removed, their file gone while the daemon was down). `history --failed` lists them beside the failed attempts.
    func failedWithoutFailedAttempt(limit: Int) throws -> [JobRecord]
    func counts() throws -> QueueCounts
    /// When a daemon that claims `kinds` must look next, if no wake-up comes first: the earliest `not_before` of a
    /// queued job of those kinds (now, for one without; a paused handler's waits for its resume, which announces
    /// itself), or the earliest lease of a running job of any kind to run
    /// out (`rescueExpiredLeases` then takes it back); a queued task run whose task has a run running is not due
    /// until that run ends (which announces itself). nil: nothing is queued or running, only a wake-up can bring
    /// work. Times are the store's clock (see `ClaimableTime`). A lease taken after the read is not in it, and claims
    /// wake nobody (each would wake every daemon), so a daemon that rescues reads this again at least once a lease.
    func nextClaimable(kinds: [JobKind]) throws -> ClaimableTime?
    /// Per minute from `since` on, the jobs that ended (done or failed), oldest minute first; minutes with
    /// none are left out. Its cost follows the jobs in the window, not the table.
    func activityPerMinute(since: UnixTime) throws -> [MinuteActivity]
    /// How long each job's last ended attempt ran, by job (jobs without one are left out).
    func lastRunDurations(jobIDs: [Int64]) throws -> [Int64: Double]

    // Tasks, events, requests.
    /// The highest slot recorded for a task's schedule (its scheduled and caught-up runs).
    func lastScheduledSlot(task: String) throws -> Int64?
    /// The newest finished run of each task that has one.
    func latestTaskRuns() throws -> [String: TaskRunRecord]
    /// When a task's latest run (finished or not) started, if it ever ran.
    func lastTaskStart(task: String) throws -> UnixTime?
    /// Finished attempts of a task (kind `.task`) or of a handler's file jobs (kind `.file`).
    func statistics(kind: JobKind, owner: String) throws -> RunStatistics
    /// Overrides set by `task enable|disable`, by task name.
    func taskEnabledOverrides() throws -> [String: Bool]
    /// What each task's due run waits for, as the daemon last recorded it.
    func taskWaits() throws -> [String: [String]]
    func eventName(id: Int64) throws -> String?
    /// The file holding the body an event was fired with (`POST /api/v1/events/NAME`), if it had one.
    func eventBodyPath(id: Int64) throws -> [UInt8]?
    func pendingEvents() throws -> [EventRecord]
    func pendingRequests() throws -> [(id: Int64, kind: String, target: String)]
    func requestAnswer(id: Int64) throws -> RequestAnswer?

    // Uploads, handlers, breakers, notes.
    /// Uploads by state: pending (queued, running, waiting to retry), ok, failed.
    func uploadCounts() throws -> (pending: Int, ok: Int, failed: Int)
    /// The newest upload job of a Done file.
    func latestUpload(path: RelativePath) throws -> JobRecord?
    /// Handlers paused by `orchestrator handler pause`.
    func pausedHandlers() throws -> Set<String>
    /// Every daemon's breakers, by daemon, then owner.
    func breakers() throws -> [BreakerRecord]
    /// Store-wide notes (`setDaemonNote`) whose key starts with `prefix`, with when they were written.
    func daemonNotes(prefix: String) throws -> [(key: String, value: String, at: UnixTime)]
    func daemonNote(_ key: String) throws -> String?
    /// Every daemon's own notes (`setNodeNote`) whose key starts with `prefix`, by daemon, then key.
    func nodeNotes(prefix: String) throws -> [NodeNote]
    func nodeNote(node: String, _ key: String) throws -> String?

    // Daemons (see StoreNodes.swift).
    /// Every daemon that ever registered, by name.
    func nodes() throws -> [NodeRecord]
    func node(named name: String) throws -> NodeRecord?

    // Retention.
    /// Per task, the runs the scheduler still reads: its latest finished run (`latestTaskRuns`, for
    /// dependency gates and `tasks`), the run with its highest recorded slot (`lastScheduledSlot`: catch-up
    /// runs only slots after it, so with that row gone a slot that ran could run again), and the run that
    /// started last (`lastTaskStart`).
    func taskRunsToKeep() throws -> Set<Int64>
    /// Up to `limit` finished jobs that finished before `cutoff` and may go, oldest first.
    func prunableJobs(finishedBefore cutoff: UnixTime, keeping: Set<Int64>, limit: Int) throws -> [Int64]
    /// What a prune with this cutoff would delete, counted without deleting (`sweep --dry-run`).
    func pruneCounts(finishedBefore cutoff: UnixTime) throws -> PruneCounts
    /// How many daemons `forgetDaemons` would forget.
    func daemonsToForget(lastHeardBefore cutoff: UnixTime, silentFor: Double, keeping node: String) throws -> Int
}

/// Writes, inside one transaction opened by `Store.write`.
///
/// Requirements take every argument; the extension below gives the optional ones their defaults. An engine
/// must implement each requirement itself: one left to the extension would call itself.
public protocol StoreTransaction {
    /// Reads that see this transaction's writes.
    var reader: any StoreReader { get }

    // Jobs and attempts.
    /// Inserts a job and its first transition; returns its id.
    func insertJob(
        kind: JobKind, name: RelativePath, handler: String?, state: JobState, priority: Int, maxAttempts: Int,
        reason: String?, detail: String?, claim: (device: UInt64, inode: UInt64)?, at now: UnixTime
    ) throws -> Int64
    /// Moves a job to `state`, recording the transition; `attempts` and `reason` are updated when given.
    func setState(
        jobID: Int64, from: JobState?, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime
    ) throws
    /// Records a transition without writing the job's state: for a state that a later statement of the same
    /// transaction replaces (a worker that ended before its start was committed), so the row is not updated twice.
    func addTransition(jobID: Int64, from: JobState?, to: JobState, detail: String?, at now: UnixTime) throws
    /// Records something that happened to a job without changing its state (shown by `show`).
    func addNote(jobID: Int64, state: JobState, detail: String, at now: UnixTime) throws
    /// Sets a waiting job's base priority, noted in its transitions (`show`).
    func setPriority(jobID: Int64, state: JobState, priority: Int, at now: UnixTime) throws
    func setFinalPath(jobID: Int64, _ path: RelativePath) throws
    /// What a reload changed for a job that had not started: the handler that now takes it and the attempt budget in
    /// force, for `show` and `tasks` (the daemon runs it under these).
    func setRunSettings(jobID: Int64, handler: String?, maxAttempts: Int) throws
    func startAttempt(jobID: Int64, number: Int, logPath: [UInt8], at now: UnixTime) throws -> Int64
    func setAttemptProcess(attemptID: Int64, pid: Int32, startTime: UInt64?) throws
    /// `startAttempt` and `setAttemptProcess` for a caller that needs no attempt id, as one row (which an engine may
    /// send with the transaction's next statement); with `ended`, `finishAttempt` too: a worker that ended before
    /// its start was committed is recorded with one row instead of an insert and an update.
    func recordStartedAttempt(
        jobID: Int64, number: Int, logPath: [UInt8], pid: Int32, startTime: UInt64?, at now: UnixTime,
        ended: (result: AttemptResult, at: UnixTime)?) throws
    func finishAttempt(attemptID: Int64, _ result: AttemptResult, at now: UnixTime) throws
    /// Ends the attempt of a job that is still marked running.
    func finishRunningAttempt(jobID: Int64, _ result: AttemptResult, at now: UnixTime) throws

    // Tasks, uploads, events, requests.
    /// Records a task run as queued, unless one with the same slot or event exists already (then nil):
    /// the unique key is what keeps a restart, a second process or a one-shot sweep from running a slot twice.
    func insertTaskRun(
        task: String, priority: Int, maxAttempts: Int, cause: TaskCause, slot: Int64?, eventID: Int64?,
        detail: String, at now: UnixTime
    ) throws -> Int64?
    /// Records a scheduled run (its slot, a missed slot, `@reboot`) as queued, unless its slot's key is taken or the
    /// task has `liveLimit` or more runs live in the store (not done or failed, whoever queued or runs them). Both are
    /// decided in this transaction under a lock of the task, so that two daemons firing at once cannot both find
    /// nothing live: `overlap` holds across daemons.
    func fireTaskSlot(
        task: String, priority: Int, maxAttempts: Int, cause: TaskCause, slot: Int64, liveLimit: Int, detail: String,
        at now: UnixTime
    ) throws -> TaskFiring
    /// Queues the upload of a Done file, unless one is already live for it (then nil).
    func insertUpload(path: RelativePath, handler: String, maxAttempts: Int, at now: UnixTime) throws -> Int64?
    func insertEvent(name: String, source: String, at now: UnixTime) throws -> Int64
    func setEventBodyPath(id: Int64, _ path: [UInt8]) throws
    func markEventHandled(id: Int64, at now: UnixTime) throws
    func insertRequest(kind: String, target: String, at now: UnixTime) throws -> Int64
    /// True when this call marked it (it was not handled yet): on a shared store, the daemon that handles it.
    @discardableResult
    func markRequestHandled(id: Int64, at now: UnixTime) throws -> Bool
    /// The daemon's answer to a request, with its handled mark.
    func answerRequest(id: Int64, result: String, at now: UnixTime) throws
    /// Records when a task was first seen, if not yet; returns the baseline in force.
    func ensureTaskBaseline(task: String, now milliseconds: Int64) throws -> Int64
    /// Records what a task's due run waits for; nil or empty clears it.
    func setTaskWaiting(task: String, for prerequisites: [String]?) throws
    func setTaskEnabled(task: String, _ enabled: Bool) throws

    // Handlers, breakers, notes.
    func setHandlerPaused(_ name: String, _ paused: Bool, at now: UnixTime) throws
    /// A breaker belongs to the daemon whose failures moved it: each daemon counts its own.
    func setBreaker(
        node: String, owner: String, state: String, consecutiveFailures: Int, openUntil: UnixTime?, at now: UnixTime) throws
    /// Clears one daemon's breakers; nil clears every daemon's (SQLite's one daemon, which also drops those of a
    /// name it had before).
    func clearBreakers(node: String?) throws
    /// Sets or (nil) clears a note about the store as a whole (the folders its daemons share).
    func setDaemonNote(_ key: String, _ value: String?, at now: UnixTime) throws
    /// Until the transaction ends, no other transaction that asks the same passes this point: a note read after it and
    /// set in the same transaction is decided by one daemon at a time (SQLite's writes are one at a time anyway).
    func lockDaemonNote(_ key: String) throws
    /// Sets or (nil) clears a note about one daemon (its health, its sweeps' results, its config's load, why its
    /// queue waits): daemons of one store each keep their own.
    func setNodeNote(node: String, _ key: String, _ value: String?, at now: UnixTime) throws

    // Retention.
    /// Deletes these jobs with their attempts and transitions.
    func deleteJobs(_ ids: [Int64]) throws -> PruneCounts
    /// Deletes up to `limit` handled events and handled requests older than `cutoff`.
    func deleteHandledEventsAndRequests(before cutoff: UnixTime, limit: Int) throws -> PruneCounts
    /// Deletes the rows of daemons last heard of before `cutoff` (stopped then, or silent since), with their notes
    /// and breakers, except `node`'s (the daemon that prunes: on SQLite a running daemon does not beat). Returns
    /// how many daemons. Daemon names come and go (a host renamed, a container's name), and each left its rows.
    /// Whatever the cutoff (a retention shorter than a heartbeat's period), a daemon heard of in the last `silentFor`
    /// seconds by the store's clock, or holding a running job, is alive as far as anyone can tell and stays.
    func forgetDaemons(lastHeardBefore cutoff: UnixTime, silentFor: Double, keeping node: String) throws -> Int
    /// Records that the log file of an attempt of this job was deleted, so `show` says so.
    func markLogPruned(jobID: Int64, logPath: [UInt8], at now: UnixTime) throws

    // Daemons.
    /// Takes `node`'s name for a starting daemon in one statement, so that of two daemons starting under one name at
    /// once exactly one wins: it wins when no daemon has the name, or its holder stopped cleanly, has been silent for
    /// more than `silentAfter` seconds by the store's clock, or is the same instance (restarting after a crash). A win
    /// records the daemon as `registerNode` does; false (nothing written) when a live daemon holds the name.
    func claimNodeName(_ node: NodeRegistration, silentAfter: Double) throws -> Bool
    /// Records a starting daemon under its name (replacing what a former daemon of that name left), as running.
    func registerNode(_ node: NodeRegistration) throws
    /// Says the daemon is alive, by the store's clock; false when its row is no longer its own (another instance
    /// registered the name, or it was marked stopped).
    func heartbeat(node name: String, instance: String) throws -> Bool
    /// A clean stop: `status` then says stopped rather than silent.
    func markNodeStopped(node name: String, instance: String) throws

    // Claims under a lease: how several daemons share one store's queue. Times in leases are the store's own
    // clock, so that daemons whose clocks differ agree on when a lease ran out.
    /// Takes the queued job of `kinds` that is due (no `not_before` in the future) with the highest aged priority
    /// (base priority + 1 per `agingStep` seconds waited, at most 10), oldest first among equals, skipping any row
    /// another transaction holds: it becomes `running`, owned by `node` for `lease` seconds, with one more
    /// attempt and one more claim (`JobRecord.claims` names this claim). A job of a handler paused in the store is
    /// not taken: claimed, it could only be given back, again and again while the pause lasts. nil when nothing is
    /// due.
    func claimNext(node: String, lease: Double, kinds: [JobKind], agingStep: Double) throws -> JobRecord?
    /// Extends the lease of every job `node` holds running; how many it holds.
    func renewLeases(node: String, lease: Double) throws -> Int
    /// Takes back every running job whose lease ran out: its attempt was cut short (interrupted, which spends no
    /// attempt), and it is queued again. The lease check is part of the update, so a job completed meanwhile is
    /// never taken back. The jobs taken back.
    ///
    /// `graceAfterRestart`: a lease that ran out while the store's server was down (its daemon could not renew it)
    /// is taken back only once the server has been up this long, time for live daemons to renew: an outage longer
    /// than the lease then reruns nothing. A lease that ran out while the server was up is taken back at once.
    func rescueExpiredLeases(at now: UnixTime, graceAfterRestart: Double) throws -> [Int64]
    /// Moves a job `node` claimed from `running` to `state`, only while that claim still holds (same owner, same
    /// claim number, still running); false when it does not (the lease ran out and another daemon rescued the job):
    /// then nothing is written, and the caller must act as if the run never counted.
    /// `attempts`: the job's count of attempts afterwards (nil keeps the claim's, which counted this one: an
    /// interrupted attempt gives it back). `detail`: the transition's, else `reason`.
    func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime
    ) throws -> Bool
    /// Takes this queued job, as `claimNext` takes the best one: nil when it is not queued and due any more (another
    /// daemon took it, it was cancelled).
    func claimJob(id: Int64, node: String, lease: Double) throws -> JobRecord?
    /// `claimJob` for a caller that reads the claim only once the write has returned: an engine may send it with
    /// the COMMIT, in one round trip.
    func claimJobAnswered(id: Int64, node: String, lease: Double) throws -> StoreAnswer<JobRecord?>
    /// `finishClaimed` for a caller that learns whether the claim held when the engine does (with the COMMIT at the
    /// latest): `refused` runs then, within the write, when it did not. Not for a task run, whose end the engine
    /// announces to other daemons only once it knows it was one.
    func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime, whenRefused refused: @escaping () -> Void
    ) throws
    /// The `whenRefused` form of `finishClaimed` that also ends the job's running attempt, as `endClaimedAttempt` would
    /// have just before it: an engine may make the two one statement (the extension below writes them in turn).
    func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime, endingAttempt: (result: AttemptResult, at: UnixTime),
        whenRefused refused: @escaping () -> Void
    ) throws
    /// Takes this queued task run as `claimJob` does, unless another run of its task is running (under any daemon):
    /// then nil, as when it is not queued and due. Serialised per task, so two daemons never run one task at once.
    func claimTaskRun(id: Int64, node: String, lease: Double) throws -> JobRecord?
    /// Takes the best due queued task run (as `claimNext` orders them) of a task with no run running, as
    /// `claimTaskRun` does; nil when there is none.
    func claimNextTaskRun(node: String, lease: Double, agingStep: Double) throws -> JobRecord?
    /// Ends the running attempt of a job `node` holds under `claim`; false (and nothing written) when the claim
    /// is gone: the running attempt, if any, is then another daemon's.
    func finishClaimedAttempt(jobID: Int64, node: String, claim: Int, _ result: AttemptResult, at now: UnixTime) throws -> Bool
    /// `finishClaimedAttempt` for a caller that does not wait to learn whether the claim held (the job's own end,
    /// in the same transaction, says so): an engine may send it with the transaction's next statement.
    func endClaimedAttempt(jobID: Int64, node: String, claim: Int, _ result: AttemptResult, at now: UnixTime) throws
    /// Queues a file found in the processing area with no live job (its daemon died between its rename and its
    /// commit), unless a live job of that name exists by now (another daemon adopted it, or its own commit came):
    /// then nil. Several daemons may adopt the same file at once; one wins.
    func adoptFile(
        name: RelativePath, handler: String, priority: Int, maxAttempts: Int, claim: (device: UInt64, inode: UInt64)?,
        at now: UnixTime
    ) throws -> Int64?
    /// Ends a job nobody runs (a cancelled or ownerless queued job) in `state`; false, with nothing written, when
    /// it is running or already finished: then a daemon's claim or end came first.
    func finishUnclaimed(
        jobID: Int64, to state: JobState, attempts: Int?, reason: String?, detail: String?, at now: UnixTime
    ) throws -> Bool
}

extension StoreTransaction {
    public func rescueExpiredLeases(at now: UnixTime) throws -> [Int64] {
        try rescueExpiredLeases(at: now, graceAfterRestart: 0)
    }

    public func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int? = nil, notBefore: UnixTime?,
        reason: String?, detail: String? = nil, at now: UnixTime
    ) throws -> Bool {
        try finishClaimed(
            jobID: jobID, node: node, claim: claim, to: state, attempts: attempts, notBefore: notBefore, reason: reason,
            detail: detail, at: now)
    }

    public func claimJobAnswered(id: Int64, node: String, lease: Double) throws -> StoreAnswer<JobRecord?> {
        StoreAnswer(try claimJob(id: id, node: node, lease: lease))
    }

    public func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime, whenRefused refused: @escaping () -> Void
    ) throws {
        let held = try finishClaimed(
            jobID: jobID, node: node, claim: claim, to: state, attempts: attempts, notBefore: notBefore, reason: reason,
            detail: detail, at: now)
        if !held { refused() }
    }

    public func endClaimedAttempt(jobID: Int64, node: String, claim: Int, _ result: AttemptResult, at now: UnixTime) throws {
        _ = try finishClaimedAttempt(jobID: jobID, node: node, claim: claim, result, at: now)
    }

    public func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime, endingAttempt: (result: AttemptResult, at: UnixTime),
        whenRefused refused: @escaping () -> Void
    ) throws {
        try endClaimedAttempt(jobID: jobID, node: node, claim: claim, endingAttempt.result, at: endingAttempt.at)
        try finishClaimed(
            jobID: jobID, node: node, claim: claim, to: state, attempts: attempts, notBefore: notBefore, reason: reason,
            detail: detail, at: now, whenRefused: refused)
    }

    public func insertJob(
        kind: JobKind, name: RelativePath, handler: String?, state: JobState, priority: Int, maxAttempts: Int,
        reason: String? = nil, detail: String? = nil, claim: (device: UInt64, inode: UInt64)? = nil, at now: UnixTime
    ) throws -> Int64 {
        try insertJob(
            kind: kind, name: name, handler: handler, state: state, priority: priority, maxAttempts: maxAttempts,
            reason: reason, detail: detail, claim: claim, at: now)
    }

    public func setState(
        jobID: Int64, from: JobState?, to state: JobState, attempts: Int? = nil, notBefore: UnixTime? = nil,
        reason: String? = nil, detail: String? = nil, at now: UnixTime
    ) throws {
        try setState(
            jobID: jobID, from: from, to: state, attempts: attempts, notBefore: notBefore, reason: reason,
            detail: detail, at: now)
    }

    public func insertTaskRun(
        task: String, priority: Int, maxAttempts: Int, cause: TaskCause, slot: Int64? = nil, eventID: Int64? = nil,
        detail: String, at now: UnixTime
    ) throws -> Int64? {
        try insertTaskRun(
            task: task, priority: priority, maxAttempts: maxAttempts, cause: cause, slot: slot, eventID: eventID,
            detail: detail, at: now)
    }
}

/// What a write produces that an engine may learn only when the transaction's statements reach the server (with its
/// COMMIT, in one round trip): read it after `write` has returned. Set and read on the writing thread only.
public final class StoreAnswer<Value> {
    /// nil until answered. An engine that lost the answer with its connection and then found the COMMIT applied
    /// fails the write rather than return without it.
    public private(set) var value: Value?

    public init(_ value: Value? = nil) { self.value = value }

    public func give(_ value: Value) { self.value = value }
}
