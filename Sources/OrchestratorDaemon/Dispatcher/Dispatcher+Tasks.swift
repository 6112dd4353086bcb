#if canImport(Glibc)
import Glibc
#endif
import Logging
import OrchestratorConfig
import OrchestratorCore
import OrchestratorCron
import OrchestratorPlatform
import OrchestratorSchedule
import OrchestratorStore

/// A configured task as the dispatcher tracks it.
struct TaskRuntime {
    /// nil for an event task.
    let schedule: SlotSchedule?
    var enabled: Bool
    /// The slot its timer is armed for (Unix ms).
    var nextSlot: Int64?
    var timer: TimerHandle?
    /// Its queued, running and retry-waiting runs: one active, the others held behind it.
    var runs = TaskRunBook()
    /// A due run that waits for prerequisites; a newer due run replaces it.
    var pending: PendingRun?
    /// When its latest run started (Unix seconds): prerequisites must have succeeded since.
    var lastStart: Double?
    /// Whether the store says it waits for prerequisites (`tasks`, `status`): cleared when a run of it is queued, also
    /// when the wait was an earlier life's or a reload took its `after` away.
    var waitRecorded = false
}

struct PendingRun {
    let cause: TaskCause
    let slot: Int64?
    let eventID: Int64?
    let eventName: String?
    /// Set when it is kept outside its task's runtime (due while paused for a full disk).
    var task: String? = nil
}

/// Interval, cron and event tasks on the shared queue.
///
/// A due run is recorded under its unique (task, slot) or (task, event) key before it is queued; a
/// key that is already there means another process or an earlier life of this daemon ran it, so it
/// is not run again.
extension Dispatcher {
    static func wallMilliseconds() -> Int64 { Int64((wallClock() * 1000).rounded(.down)) }

    var wakeDirectory: PathBytes { layout.state.appending(RelativePath("wake")) }

    /// Loads what the store knows about the tasks, runs the missed slot of each `catch_up = "once"` task and
    /// the `@reboot` tasks, arms every schedule, and takes the events recorded while no daemon ran.
    func startTasks() throws {
        try prepareTaskRuntimes()
        let nowMs = daemonStartMs
        for task in config.tasks { try adoptRecoveredRuns(task.name) }
        // Slots fire on the daemons with the scheduler role (each slot once, whichever daemon queues it).
        for task in config.tasks where runs(.scheduler) {
            guard let schedule = taskRuntimes[task.name]?.schedule else { continue }
            if schedule.isReboot {
                due(task.name, cause: .reboot, slot: nowMs)
                continue
            }
            startSchedule(task, catchUp: task.catchUp == .once, now: nowMs)
        }
        startWakeWatch()
        takeRecordedEvents()
    }

    /// Arms a task's schedule after the last slot that ran; with `catchUp`, first runs the latest slot
    /// missed since then (or since the task was first seen).
    func startSchedule(_ task: TaskDefinition, catchUp: Bool, now nowMs: Int64) {
        guard let schedule = taskRuntimes[task.name]?.schedule, !schedule.isReboot else { return }
        // Out of space, it stays unarmed until the pause ends, when every unarmed schedule starts.
        guard let baseline = commit("record when task \(task.name) was first seen", { try $0.ensureTaskBaseline(task: task.name, now: nowMs) })
        else { return }
        do {
            let lastSlot = try store.read { try $0.lastScheduledSlot(task: task.name) }
            if catchUp, let missed = schedule.latestSlot(after: lastSlot ?? baseline, atOrBefore: nowMs) {
                logger.info("running a slot missed while no daemon ran", metadata: ["task": "\(task.name)", "slot": "\(missed)"])
                due(task.name, cause: .catchUp, slot: missed)
            }
            armSlot(task.name, after: max(nowMs, lastSlot ?? nowMs))
        } catch {
            // Without its last slot the task could run one twice: it stays unarmed, and `status` says so.
            logger.critical("task \(task.name): cannot read its schedule state; it will not run until a restart: \(error)")
        }
    }

    /// What the store knows about each task: enabled overrides, latest runs, last starts.
    func prepareTaskRuntimes() throws {
        daemonStartMs = Self.wallMilliseconds()
        guard !config.tasks.isEmpty else { return }
        // The store is the ledger: a task disabled there must not run because a read failed.
        let overrides = try store.read { try $0.taskEnabledOverrides() }
        let latest = try store.read { try $0.latestTaskRuns() }
        let waits = try store.read { try $0.taskWaits() }
        for (name, run) in latest { latestTaskRuns[name] = Self.summary(run) }
        for task in config.tasks {
            taskRuntimes[task.name] = try makeRuntime(task, enabledOverride: overrides[task.name])
            taskRuntimes[task.name]?.waitRecorded = waits[task.name] != nil
        }
        // A task removed from the config while the daemon was away waits for nothing any more.
        for name in waits.keys where task(named: name) == nil { setWaiting(name, nil) }
    }

    static func summary(_ run: TaskRunRecord) -> RunSummary {
        RunSummary(
            startedAt: run.startedAt, finishedAt: run.finishedAt,
            result: run.state == .done ? .succeeded : run.couldNotStart ? .commandMissing : .failed)
    }

    /// On a shared store the runs of a task's prerequisites (and its own last start) may be other daemons': the
    /// dependency gate reads them from the store as well as from this daemon's memory, the newer winning. A failed
    /// read keeps what is known.
    private func refreshTaskRunsFromStore(_ names: [String]) {
        guard claimsJobs else { return }
        do {
            let (latest, starts) = try store.read { reader in
                (try reader.latestTaskRuns(), try names.map { try reader.lastTaskStart(task: $0) })
            }
            var stored: [String: RunSummary] = [:], storedStarts: [String: Double] = [:]
            for (name, start) in zip(names, starts) {
                stored[name] = latest[name].map(Self.summary)
                storedStarts[name] = start
            }
            let knownStarts = taskRuntimes.compactMapValues(\.lastStart)
            let merged = TaskDueReview.merged(latestTaskRuns, starts: knownStarts, stored: stored, storedStarts: storedStarts)
            latestTaskRuns = merged.latest
            for (name, start) in merged.starts where taskRuntimes[name] != nil { taskRuntimes[name]?.lastStart = start }
        } catch {
            logger.warning("cannot read the tasks' latest runs; deciding on what this daemon knows", metadata: ["error": "\(error)"])
        }
    }

    func makeRuntime(_ task: TaskDefinition, enabledOverride: Bool?) throws -> TaskRuntime {
        var schedule: SlotSchedule?
        do {
            schedule = try SlotSchedule(trigger: task.trigger, hostZone: hostZone())
        } catch {
            logger.critical("task \(task.name): \(error); it will not run")
        }
        let lastStart = try store.read { try $0.lastTaskStart(task: task.name) }
        return TaskRuntime(schedule: schedule, enabled: enabledOverride ?? task.enabled, lastStart: lastStart)
    }

    /// Task runs the store holds as live (queued, waiting to retry, or cut short by a stop) run again.
    private func adoptRecoveredRuns(_ name: String) throws {
        for record in recoveredTaskJobs where record.name.bytes == Array(name.utf8) {
            // The first recovered run is the active one; the others wait behind it, a pending retry starting
            // over when its turn comes.
            let first = taskRuntimes[name]?.runs.add(record.id) ?? false
            restore(record, owner: .task(name), priority: record.priority, enqueue: first)
            // A run started by a task.* event stays quiet after a restart too.
            if let eventID = record.eventID, try store.read({ try $0.eventName(id: eventID) })?.hasPrefix("task.") == true {
                quietTaskRuns.insert(record.id)
            }
        }
    }

    func armSlot(_ name: String, after instant: Int64) {
        guard let slots = taskRuntimes[name]?.schedule, let next = slots.nextSlot(after: instant) else {
            taskRuntimes[name]?.nextSlot = nil
            return
        }
        let delay = max(0, next - Self.wallMilliseconds())
        taskRuntimes[name]?.nextSlot = next
        taskRuntimes[name]?.timer = schedule(.taskSlot(task: name), after: UInt64(delay))
    }

    func taskSlotDue(_ name: String) {
        taskRuntimes[name]?.timer = nil
        guard let slot = taskRuntimes[name]?.nextSlot else { return }
        let nowMs = Self.wallMilliseconds()
        if nowMs < slot {
            // The wall clock was set back, or the monotonic timer ran ahead of it: wait for the slot itself.
            taskRuntimes[name]?.timer = schedule(.taskSlot(task: name), after: UInt64(slot - nowMs))
            return
        }
        due(name, cause: .schedule, slot: slot)
        // Slots passed while the machine slept are not run one by one: the next is after now.
        armSlot(name, after: max(slot, nowMs))
    }

    /// A run of the task is due: checks enabled, overlap and prerequisites (`TaskDueReview`), then records and queues it.
    func due(_ name: String, cause: TaskCause, slot: Int64? = nil, eventID: Int64? = nil, eventName: String? = nil) {
        guard !phase.isStopping, let task = task(named: name), let runtime = taskRuntimes[name] else { return }
        var facts = TaskDueReview.Facts(
            cause: cause, enabled: runtime.enabled, overlap: task.overlap, runs: runtime.runs, after: task.after,
            ownLastStart: runtime.lastStart, latest: latestTaskRuns, hasPending: runtime.pending != nil)
        if TaskDueReview.asksPrerequisites(facts) {
            refreshTaskRunsFromStore(task.after + [name])
            (facts.ownLastStart, facts.latest) = (taskRuntimes[name]?.lastStart, latestTaskRuns)
        }
        let review = TaskDueReview(facts)
        switch review.verdict {
        case .drop(let drop):
            var metadata: Logger.Metadata = ["task": "\(task.name)"]
            if drop == .overlapping { metadata["overlap"] = "\(task.overlap.rawValue)" }
            logger.log(level: drop.level, "not run: \(drop.reason)", metadata: metadata)
            clearPending(name)
        case .wait(let names, let level):
            if let level { logger.log(level: level, "waiting for \(names.joined(separator: ", "))", metadata: ["task": "\(task.name)"]) }
            replacePending(name, with: PendingRun(cause: cause, slot: slot, eventID: eventID, eventName: eventName))
            setWaiting(name, names)
        case .run(let endsWaiting):
            if endsWaiting { replacePending(name, with: nil) }
            // A `task run` while a due run waits leaves that wait as it is.
            if endsWaiting || (runtime.waitRecorded && runtime.pending == nil) { setWaiting(name, nil) }
            queueTaskRun(name, cause: cause, slot: slot, eventID: eventID, eventName: eventName)
        }
    }

    private func clearPending(_ name: String) {
        guard taskRuntimes[name]?.pending != nil else { return }
        replacePending(name, with: nil)
        setWaiting(name, nil)
    }

    /// A waiting run replaced or dropped: the event it came from may now be done with.
    private func replacePending(_ name: String, with new: PendingRun?) {
        let old = taskRuntimes[name]?.pending
        taskRuntimes[name]?.pending = new
        if let event = old?.eventID, event != new?.eventID { settleEvent(event) }
    }

    /// Marks an event handled once no listener's run waits for a prerequisite on its behalf: until then a
    /// restart takes the event again (and the unique (task, event) keys keep that from running anything twice).
    func settleEvent(_ id: Int64) {
        guard !taskRuntimes.values.contains(where: { $0.pending?.eventID == id }), !dueWhilePaused.contains(where: { $0.eventID == id })
        else { return }
        let wallNow = Self.wallClock()
        record { try $0.markEventHandled(id: id, at: wallNow) }
    }

    func setWaiting(_ task: String, _ names: [String]?) {
        taskRuntimes[task]?.waitRecorded = names != nil
        record { try $0.setTaskWaiting(task: task, for: names) }
    }

    /// After a reload: a run that waited for prerequisites is decided again, under the task's `after` in force (taken
    /// away, it runs now).
    func reviewWaitingRuns() {
        for task in config.tasks {
            guard let pending = taskRuntimes[task.name]?.pending else { continue }
            due(task.name, cause: pending.cause, slot: pending.slot, eventID: pending.eventID, eventName: pending.eventName)
        }
    }

    private func queueTaskRun(_ name: String, cause: TaskCause, slot: Int64?, eventID: Int64?, eventName: String?) {
        guard let task = task(named: name) else { return }
        let wallNow = Self.wallClock()
        // On a shared store a run of the task live on any daemon counts for `overlap`, checked in the transaction that
        // records the firing.
        let plan = TaskDueReview.plan(
            cause: cause, priority: task.priority, overlap: task.overlap, sharedStore: claimsJobs, topPriority: ReadyQueue<Int64>.levels - 1)
        let (priority, detail, liveLimit) = (plan.priority, plan.detail, plan.liveLimit)
        // Its own commit: the key must be taken before the run can start, and due runs are rare.
        let recorded = commit("record a run of task \(task.name)") { transaction -> TaskFiring in
            if let liveLimit, let slot {
                return try transaction.fireTaskSlot(
                    task: task.name, priority: priority, maxAttempts: task.maxAttempts, cause: cause, slot: slot,
                    liveLimit: liveLimit, detail: detail, at: wallNow)
            }
            return try transaction.insertTaskRun(
                task: task.name, priority: priority, maxAttempts: task.maxAttempts, cause: cause, slot: slot,
                eventID: eventID, detail: detail, at: wallNow
            ).map(TaskFiring.queued) ?? .slotTaken
        }
        guard let recorded else {
            if phase.isPausedForDisk {
                // Recorded, and run, when space returns: a slot due during a pause is not lost.
                dueWhilePaused.append(PendingRun(cause: cause, slot: slot, eventID: eventID, eventName: eventName, task: name))
                logger.warning("due while paused (\(pauseReason.text)); it runs when \(pauseReason.endsWhen)", metadata: ["task": "\(task.name)"])
                return
            }
            logger.error("not run: its run could not be recorded", metadata: ["task": "\(task.name)"])
            return
        }
        if let eventID { settleEvent(eventID) }
        let id: Int64
        switch recorded {
        case .queued(let queued): id = queued
        case .slotTaken:
            // On a shared store every daemon's scheduler fires each slot, and one of them queues it: not news.
            logger.log(
                level: claimsJobs ? .debug : .info, "not run: this slot already ran",
                metadata: ["task": "\(task.name)", "slot": "\(slot.map(String.init) ?? "-")"])
            return
        case .overlapping(let live):
            logger.info(
                "not run: the previous run has not finished", metadata: [
                    "task": "\(task.name)", "overlap": "\(task.overlap.rawValue)", "live": "\(live)", "slot": "\(slot.map(String.init) ?? "-")",
                ])
            return
        }
        let job = LiveJob(
            id: id, name: RelativePath(Array(task.name.utf8)), owner: .task(name), state: .queued, priority: priority,
            attempts: 0, maxAttempts: task.maxAttempts, eventID: eventID)
        jobs[id] = job
        // A run started by task.completed or task.failed fires neither: two tasks listening to each other's
        // ends (or one to its own) would otherwise never stop.
        if eventName?.hasPrefix("task.") == true { quietTaskRuns.insert(id) }
        // `task run` goes ahead of the other waiting runs (after earlier `task run`s).
        let manual = cause == .manual
        if taskRuntimes[name]?.runs.add(id, ahead: manual, isAhead: { [jobs] in (jobs[$0]?.priority ?? 0) >= priority }) == true {
            enqueue(job)
        }
        logger.debug("queued", metadata: ["task": "\(task.name)", "job": "\(id)", "cause": "\(cause.rawValue)"])
    }

    /// Whether this daemon claims task runs other daemons queued: a scheduler's work, since a run's end fires
    /// `task.completed`/`task.failed` and lets the runs waiting for it (`after`) go, both of which a scheduler does.
    var runsTaskRuns: Bool { runs(.scheduler) && !config.tasks.isEmpty }

    /// A run claimed from the store (queued by another daemon, or by one that died): it runs here as one of this
    /// daemon's. The store let no other run of its task start; in the book it is the active run unless one of this
    /// daemon's own runs is there first (which the store then holds back until this one ends).
    func adoptTaskRun(_ job: LiveJob) {
        guard case .task(let name) = job.owner else { return }
        if taskRuntimes[name]?.runs.isEmpty == true { _ = taskRuntimes[name]?.runs.add(job.id) }
        // A run started by a task.* event stays quiet wherever it runs.
        guard let eventID = job.eventID else { return }
        do {
            if try store.read({ try $0.eventName(id: eventID) })?.hasPrefix("task.") == true { quietTaskRuns.insert(job.id) }
        } catch {
            // Quiet rather than not: a run of a task.* event that fires task.* events again could start a chain.
            quietTaskRuns.insert(job.id)
            logger.warning(
                "cannot read the event of a claimed task run; it runs without firing task events", metadata: ["job": "\(job.id)", "error": "\(error)"])
        }
    }

    func taskStarted(_ job: LiveJob, at wallNow: Double) {
        guard case .task(let name) = job.owner, job.attempts == 0 else { return }
        taskRuntimes[name]?.lastStart = wallNow
    }

    func taskFinished(_ job: LiveJob, succeeded: Bool, couldNotStart: Bool, reason: String?) {
        guard case .task(let name) = job.owner, var runtime = taskRuntimes[name] else { return }
        let wallNow = Self.wallClock()
        // The next held run gets its turn.
        if let next = runtime.runs.finished(job.id, stillLive: { jobs[$0] != nil }), let held = jobs[next] {
            enqueue(held)
        }
        taskRuntimes[name] = runtime
        latestTaskRuns[name] = RunSummary(
            startedAt: runtime.lastStart ?? wallNow, finishedAt: wallNow,
            result: succeeded ? .succeeded : couldNotStart ? .commandMissing : .failed)
        if quietTaskRuns.remove(job.id) == nil {
            emit(succeeded ? "task.completed" : "task.failed")
        }
        // Dependents waiting for this task look again.
        for definition in config.tasks where definition.after.contains(name) {
            guard let pending = taskRuntimes[definition.name]?.pending else { continue }
            due(definition.name, cause: pending.cause, slot: pending.slot, eventID: pending.eventID, eventName: pending.eventName)
        }
    }

    // MARK: Events

    /// A built-in event: recorded and acted on only if some task listens to it, so a burst of files costs
    /// nothing when no task does.
    /// False if the event could not be recorded (the disk is full).
    @discardableResult
    func emit(_ name: String) -> Bool {
        guard let listeners = eventListeners[name], !listeners.isEmpty, !phase.isStopping, runs(.scheduler) else { return true }
        let wallNow = Self.wallClock()
        let source = batch == nil ? "daemon" : "sweep"
        guard let id = commit("record event \(name)", { try $0.insertEvent(name: name, source: source, at: wallNow) }) else {
            return false
        }
        // A one-shot run leaves the event for the daemon, which runs the listening tasks when it starts or wakes.
        if batch == nil {
            dispatchEvent(id: id, name: name, source: "daemon")
        } else {
            TaskCommands.wakeDaemon(config, reason: "event-\(id)")
        }
        return true
    }

    private func dispatchEvent(id: Int64, name: String, source: String) {
        let listeners = eventListeners[name] ?? []
        // Marked once its runs are recorded and none waits for a prerequisite: until then a restart replays
        // the event, and the unique (task, event) keys keep a replay from running any listener twice.
        for task in listeners { due(task, cause: .event, eventID: id, eventName: name) }
        settleEvent(id)
        if source != "daemon" {
            logger.info("event", metadata: ["event": "\(name)", "tasks": "\(listeners.count)", "from": "\(source)"])
        }
    }

    /// Events recorded by `orchestrator trigger` and requests of `task run` and `sweep` (while this daemon
    /// ran, or before it started).
    func takeRecordedEvents() {
        // While paused for a full disk their marks and runs could not be recorded: they wait in the store.
        guard phase != .stopped, !phase.isPausedForDisk else { return }
        do {
            let requests = try store.read { try $0.pendingRequests() }
            requestsLeftToHolders.removeAll()
            for request in requests {
                // A stopping daemon still answers a cancel or priority of the jobs it has (a running one's group gets
                // SIGTERM now rather than at the end of the grace); what would start work waits for the next daemon.
                let intervention = request.kind == Self.cancelRequest || request.kind == Self.priorityRequest
                if phase.isStopping, !intervention { continue }
                // Marked first: the mark commits with the run it queues, so a crash cannot run it twice. On a shared
                // store every daemon reads the request: the one whose mark goes through handles it; a cancel or a
                // priority is the job's holder's (`takesRequest`).
                let wallNow = Self.wallClock()
                if claimsJobs {
                    guard takesRequest(kind: request.kind, target: request.target) else {
                        if let (jobID, _) = InterventionRequest.parse(request.target) { requestsLeftToHolders.insert(jobID) }
                        continue
                    }
                    let requestID = request.id
                    guard commit("take a request", { try $0.markRequestHandled(id: requestID, at: wallNow) }) == true else { continue }
                } else {
                    record { try $0.markRequestHandled(id: request.id, at: wallNow) }
                }
                if !handleIntervention(requestID: request.id, kind: request.kind, target: request.target) {
                    handle(requestID: request.id, kind: request.kind, target: request.target)
                }
            }
            // Events queue task runs: the scheduler's work.
            var dispatched = false
            for event in try store.read({ try $0.pendingEvents() }) where runs(.scheduler) && !phase.isStopping {
                dispatchEvent(id: event.id, name: event.name, source: event.source)
                dispatched = true
            }
            // Committed now, not with the next cycle: a second wake-up (one per inotify read) would otherwise
            // read the same requests and events again before their marks are written (an event was dispatched twice,
            // its second run refused as "this slot already ran").
            if !requests.isEmpty || dispatched { flushWrites() }
        } catch where StoreFailure.classify(error) == .unreachable {
            // A session the server ended (an outage just over, a terminated backend): the next use connects again, and
            // what was not read waits in the store for the next wake-up.
            logger.warning("cannot read recorded events now; reading them at the next wake-up", metadata: ["error": "\(error)"])
        } catch {
            logger.error("cannot read recorded events: \(error)")
        }
        refreshEnabledOverrides()
        refreshPausedHandlers()
    }

    /// On a shared store a cancel or priority is taken by the daemon that holds the job (`Intervention.takesRequest`).
    private func takesRequest(kind: String, target: String) -> Bool {
        guard kind == Self.cancelRequest || kind == Self.priorityRequest, let (jobID, _) = InterventionRequest.parse(target)
        else { return true }
        // Running here: this daemon's, whatever the store says (no read needed).
        if running[jobID] != nil || undecided[jobID] != nil { return true }
        let record: JobRecord?
        let nodes: [NodeRecord]
        do {
            (record, nodes) = try store.read { (try $0.job(id: jobID), try $0.nodes()) }
        } catch {
            logger.warning("cannot read job \(jobID) to see whose request it is; it waits", metadata: ["error": "\(error)"])
            return false
        }
        // The registrar is read only when it decides: a job waiting on no daemon's queue, unclaimed.
        let needsRegistrar = record.map { !$0.state.isTerminal && $0.state != .running && $0.owner == nil && jobs[jobID] == nil } ?? false
        let alive = nodes.filter { NodeLiveness.condition(of: $0, shared: true, stateDirDaemonRuns: false) == .running }
        return Intervention.takesRequest(Intervention.RequestFacts(
            me: config.node.name, runsHere: false, queuedHere: jobs[jobID] != nil, state: record?.state, owner: record?.owner,
            registrar: needsRegistrar ? registeringDaemon(of: jobID) : nil, aliveDaemons: Set(alive.map(\.name))))
    }

    private func handle(requestID: Int64, kind: String, target: String) {
        switch kind {
        case "task_run":
            // `task run` waits for this answer: the daemon's config decides, not the file the command read.
            let wallNow = Self.wallClock()
            guard task(named: target) != nil else {
                logger.warning("task run: no task named \(target) in this daemon's config")
                record { try $0.answerRequest(id: requestID, result: Batch.unknownTaskAnswer, at: wallNow) }
                return
            }
            logger.info("task run requested", metadata: ["task": "\(target)"])
            due(target, cause: .manual)
            record { try $0.answerRequest(id: requestID, result: Batch.queuedAnswer, at: wallNow) }
        case "sweep":
            logger.info("sweep requested", metadata: ["mode": "\(target)"])
            if target == "ingest" || target == "all" { startScan(reason: "sweep requested") }
            // Uploads wait to retry like any job: the retry sweep covers them.
            if target == "retry" || target == "upload" || target == "all" { retrySweep() }
        default:
            logger.warning("unknown request \(kind) \(target)")
        }
    }

    /// Retries whose backoff is due run now, also those this daemon has no timer for (left by a one-shot
    /// sweep that stopped, for instance). Claimed through the store: only a job still in retry_wait there
    /// moves on, so a one-shot sweep and the daemon never both run it.
    func retrySweep(uploadsOnly: Bool = false) {
        let wallNow = Self.wallClock()
        var requeued = 0
        for (jobID, job) in jobs where job.state == .retryWait {
            if uploadsOnly, job.owner.isUpload == false { continue }
            let record: JobRecord?
            do {
                record = try store.read { try $0.job(id: jobID) }
            } catch {
                logger.error("retry sweep: cannot read job \(jobID): \(error)")
                continue
            }
            guard let notBefore = record?.notBefore, notBefore <= wallNow else { continue }
            if let timer = job.retryTimer { wheel.cancel(timer) }
            retryDue(jobID)
            requeued += 1
        }
        noteSweep(uploadsOnly ? "upload" : "retry", "\(requeued) due \(uploadsOnly ? "uploads" : "retries") re-queued", items: requeued)
    }

    /// The last result of a sweep under `watch`, for `status`.
    /// `result` and `items` are for metrics: a fixed word, and what it found or re-queued.
    func noteSweep(_ mode: String, _ summary: String, result: String = "ok", items: Int? = nil) {
        guard batch == nil else { return }
        metrics?.sweepFinished(mode, result: result, items: items)
        let (wallNow, node) = (Self.wallClock(), config.node.name)
        recordForStatus { try $0.setNodeNote(node: node, "sweep.\(mode)", summary, at: wallNow) }
    }

    /// `task enable|disable` as the store holds them; nil (and logged) if it cannot be read, in which case
    /// what is in force stays in force.
    func readEnabledOverrides() -> [String: Bool]? {
        do {
            return try store.read { try $0.taskEnabledOverrides() }
        } catch {
            logger.error("cannot read task enable/disable overrides: \(error)")
            return nil
        }
    }

    private func refreshEnabledOverrides() {
        guard let overrides = readEnabledOverrides() else { return }
        for task in config.tasks {
            let enabled = overrides[task.name] ?? task.enabled
            if enabled != taskRuntimes[task.name]?.enabled {
                logger.info(enabled ? "enabled" : "disabled", metadata: ["task": "\(task.name)"])
            }
            taskRuntimes[task.name]?.enabled = enabled
        }
    }

    /// `trigger` and `task` commands drop a file into `state/wake/` after committing; its inotify event wakes
    /// the daemon, which reads the store. No polling.
    func startWakeWatch() {
        do {
            try FileSystem.createDirectories(wakeDirectory)
            wakeWatcher = try InotifyWatcher(root: wakeDirectory, queue: queue, loop: eventLoop) { [unowned self] events in
                if events.contains(.rootGone) { wakeFolderGone = true }
                // A command's wake file arriving is what counts; its open and close alone are the same wake-up again.
                guard events.contains(where: Self.wakes) else { return }
                post(.wake)
            }
            watchedWake = FileSystem.status(wakeDirectory)
        } catch {
            logger.warning("cannot watch \(wakeDirectory) (\(error)); triggered events are taken at the next ingest sweep")
        }
        clearWakeFiles()
    }

    static func wakes(_ event: WatchEvent) -> Bool {
        switch event {
        case .opened, .closedWithoutWrite, .modified: false
        default: true
        }
    }

    /// A wake folder removed (its watch says so) or replaced (the watchdog sweep sees another folder) is watched again,
    /// and what the commands recorded meanwhile is taken now. Before, no request reached the daemon until its restart.
    func checkWakeWatch() {
        guard wakeWatcher != nil, wakeFolderGone || !FileSystem.status(wakeDirectory).isSame(as: watchedWake) else { return }
        wakeFolderGone = false
        logger.warning("the wake folder \(wakeDirectory) was removed or replaced; watching it again")
        wakeWatcher?.cancel()
        wakeWatcher = nil
        startWakeWatch()
        takeRecordedEvents()
    }

    func wakeRequested() {
        // Its watch ended with the folder (removed): watched again at once, which takes what was recorded.
        if wakeFolderGone { return checkWakeWatch() }
        clearWakeFiles()
        takeRecordedEvents()
    }

    private func clearWakeFiles() {
        for name in DirectoryListing.files(of: wakeDirectory) {
            _ = wakeDirectory.appending(RelativePath(name)).withCString { unlink($0) }
        }
    }
}
