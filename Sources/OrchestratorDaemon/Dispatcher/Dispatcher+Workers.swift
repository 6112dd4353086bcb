#if canImport(Glibc)
import Glibc
#endif
import Logging
import OrchestratorConfig
import OrchestratorCore
import OrchestratorMetrics
import OrchestratorPlatform
import OrchestratorStore

/// Starting workers, reaping them, timeouts and retries.
extension Dispatcher {
    /// After SIGTERM at a timeout or a cancel, how long the group has before SIGKILL: the grace of the config,
    /// `shutdown_grace` (SPEC: "SIGKILL after grace"), as at a stop.
    var killGrace: UInt64 { ticks(config.limits.shutdownGrace) }
    /// Per-attempt log size cap; output beyond it is counted and dropped.
    static let logCap = 10 << 20

    func startWorkers() {
        guard phase.admitsNewWork, runs(.worker) else { return }
        defer {
            if !running.isEmpty, hostSampling == nil {
                hostSampling = schedule(.hostSample, after: Self.hostSampleInterval)
            }
        }
        while running.count < spawnThrottle.allowed(configured: config.limits.maxConcurrent), phase.admitsNewWork {
            // One reading of the clock for both peek and pop: aging must not change the choice in between.
            let time = now
            guard let entry = ready.peek(at: time, isStale: { jobs[$0]?.state != .queued }), let job = jobs[entry.id] else { break }
            let candidate = estimate(of: job.owner)
            // Strict order: when the best job does not fit, nothing passes it (it would starve otherwise).
            let host = running.isEmpty ? nil : hostMonitor.sample(at: time, workers: running.values.map(\.worker.pid))
            let decision = admission.decide(
                candidate: candidate, running: runningEstimate, runningCount: running.count, host: host)
            if case .wait(let reason, let retryLater, let limit) = decision {
                noteAdmission(waiting: reason, limit: limit)
                if retryLater, admissionRecheck == nil {
                    admissionRecheck = schedule(.admissionRecheck, after: Self.admissionRecheckDelay)
                }
                return
            }
            _ = ready.pop(at: time, isStale: { jobs[$0]?.state != .queued })
            guard !parkIfPaused(job), breakerAdmits(job) else { continue }
            switch claimForStart(job) {
            case .claimed: break
            case .takenElsewhere:
                forgetTakenElsewhere(job)
                continue
            case .notNow:
                enqueue(job)
                return
            }
            noteAdmission(waiting: nil)
            start(job, queuedAt: entry.queuedAt)
        }
    }

    /// While workers run, /proc is sampled this often, so that admission always has a recent average of
    /// the host's CPU use. Nothing runs: no sampling, no wake-ups.
    static let hostSampleInterval: UInt64 = 1000

    func hostSampleDue() {
        hostSampling = nil
        guard !running.isEmpty else { return }
        _ = hostMonitor.sample(at: now, workers: running.values.map(\.worker.pid))
        hostSampling = schedule(.hostSample, after: Self.hostSampleInterval)
    }

    /// Counts for a one-shot run's summary.
    private func noteBatchOutcome(_ job: LiveJob, succeeded: Bool, finished: Bool, reason: String?) {
        guard batch != nil else { return }
        if job.id == batchReport.taskJob {
            if finished {
                batchReport.taskSucceeded = succeeded
                batchReport.taskReason = reason
            }
        } else if case .upload = job.owner {
            if succeeded {
                batchReport.uploadsDone += 1
            } else if finished {
                batchReport.uploadsFailed += 1
            } else {
                batchReport.uploadsRetryingLater += 1
            }
        } else if case .handler = job.owner {
            if succeeded {
                batchReport.filesDone += 1
            } else if finished {
                batchReport.filesFailed += 1
            } else {
                batchReport.retryingLater += 1
            }
        }
    }

    /// How soon work held back by the host's load is looked at again.
    static let admissionRecheckDelay: UInt64 = 300

    func estimate(of owner: JobOwner) -> LoadEstimate {
        switch owner {
        case .handler(let name):
            guard let handler = handler(named: name) else { return .none }
            return LoadEstimate(cpu: handler.cpuPercent ?? 0, memory: handler.memoryPercent ?? 0)
        case .task(let name):
            guard let task = task(named: name) else { return .none }
            return LoadEstimate(cpu: task.cpuPercent ?? 0, memory: task.memoryPercent ?? 0)
        case .upload:
            return .none
        }
    }

    func handler(named name: String) -> Handler? { config.handlers.first { $0.name == name } }

    func task(named name: String) -> TaskDefinition? { config.tasks.first { $0.name == name } }

    /// Records why the queue waits (for `status`) when that changes.
    func noteAdmission(waiting reason: String?, limit: AdmissionLimit? = nil) {
        if limit != admissionLimit {
            admissionLimit = limit
            if let limit { metrics?.admissionRefused(limit) }
        }
        guard reason != admissionWait else { return }
        admissionWait = reason
        if let reason { logger.debug("queue waits", metadata: ["reason": "\(reason)"]) }
        // Written at most once a second, the latest at the end: daemons sharing a host each saw the others'
        // workers move the host's CPU across max_cpu_percent at nearly every start, and wrote 1.5 notes per file.
        let due = admissionNoted.at + Self.admissionNoteInterval
        if now >= due {
            writeAdmissionNote()
        } else if admissionNoteTimer == nil {
            admissionNoteTimer = wheel.schedule(at: due, .admissionNote)
        }
    }

    func writeAdmissionNote() {
        if let timer = admissionNoteTimer { wheel.cancel(timer) }
        admissionNoteTimer = nil
        guard admissionWait != admissionNoted.text else { return }
        admissionNoted = (admissionWait, now)
        let (reason, wallNow, node) = (admissionWait, Self.wallClock(), config.node.name)
        record { try $0.setNodeNote(node: node, Self.admissionNote, reason, at: wallNow) }
    }

    static let admissionNoteInterval: UInt64 = 1000

    /// What a job runs, from its handler or task.
    struct RunSpec {
        let command: CommandTemplate
        let timeout: Duration
        let backoff: Duration
    }

    /// What the owner runs under the config in force; nil when a reload removed it.
    func spec(of owner: JobOwner) -> RunSpec? {
        switch owner {
        case .handler(let name):
            guard let handler = handler(named: name) else { return nil }
            return RunSpec(command: handler.command, timeout: handler.timeout, backoff: handler.backoff)
        case .task(let name):
            guard let task = task(named: name) else { return nil }
            return RunSpec(command: task.command, timeout: task.timeout, backoff: task.backoff)
        case .upload(let name):
            guard let handler = handler(named: name), let upload = handler.upload else { return nil }
            return RunSpec(command: upload, timeout: handler.timeout, backoff: handler.backoff)
        }
    }

    func start(_ job: LiveJob, queuedAt: UInt64) {
        let spec = spec(of: job.owner)
        let fileInPlace: Bool? = if case .handler = job.owner { FileSystem.exists(layout.processing.appending(job.name)) } else { nil }
        let jobID = job.id
        let number: Int
        switch StartReview.decide(.init(
            ownerExists: spec != nil, fileInPlace: fileInPlace, attempts: job.attempts, recordedBudget: job.maxAttempts,
            budget: maxAttempts(of: job)))
        {
        case .ownerRemoved:
            ownerRemoved(job)
            return
        case .fail(let reason, let couldNotStart, let recordBudget):
            if let budget = recordBudget { recordRunBudget(budget, of: jobID) }
            failForGood(
                job, from: claimsJobs ? .running : .queued, attempts: job.attempts, reason: reason,
                couldNotStart: couldNotStart, at: Self.wallClock())
            return
        case .run(let next, let recordBudget):
            if let budget = recordBudget { recordRunBudget(budget, of: jobID) }
            number = next
        }
        guard let spec else { return }
        let meter = metrics?.meter(for: job.owner.metered)
        meter?.started(afterWaiting: Self.seconds(since: queuedAt, now: now))
        let logPath = nextLogPath(jobID: job.id, attempt: number)
        let eventBody = job.eventID.map { EventBodies.path(state: layout.state, event: $0) }.flatMap { FileSystem.exists($0) ? $0 : nil }
        let (values, environment) = WorkerEnvironment.forAttempt(
            workerEnvironment, owner: job.owner, name: job.name, jobID: job.id, attempt: number, processing: layout.processing,
            done: layout.done, eventBody: eventBody)
        let request = SpawnRequest(
            arguments: spec.command.expand(values), environment: environment,
            workingDirectory: Array(config.baseDirectory.utf8), logPath: logPath.bytes, logCap: Self.logCap)
        let wallNow = Self.wallClock()
        jobs[jobID]?.state = .running
        do {
            let worker = try supervisor.spawn(request) { [unowned self] exit in
                post(.workerExited(jobID: jobID, exit))
            }
            spawnThrottle.started()
            var attempt = RunningAttempt(
                jobID: jobID, number: number, spec: spec, worker: worker, estimate: estimate(of: job.owner),
                startedAt: now, meter: meter)
            runningEstimate = runningEstimate + attempt.estimate
            attempt.timeoutTimer = schedule(.timeout(jobID: jobID), after: ticks(spec.timeout))
            taskStarted(job, at: wallNow)
            running[jobID] = attempt
            logger.debug(
                "started", metadata: ["file": "\(job.name)", "job": "\(jobID)", "attempt": "\(number)", "pid": "\(worker.pid)"])
            if claimsJobs {
                // The claim recorded queued -> running already; the end goes under the claim's guard.
                record { [supervisor] transaction in
                    try transaction.recordStartedAttempt(
                        jobID: jobID, number: number, logPath: logPath.bytes, pid: worker.pid,
                        startTime: supervisor.startTime(ofLive: worker), at: wallNow, ended: nil)
                }
            } else {
                let draft = attemptDrafts.begin(job: jobID)
                record { [supervisor, unowned self] transaction in
                    let drafted = attemptDrafts.draft(draft)
                    // Read when the row is written: a worker already reaped by then needs no identity for recovery
                    // (its end is in this row or this batch), and reading /proc for each worker of a burst costs
                    // more than the rest of its bookkeeping.
                    try transaction.recordStartedAttempt(
                        jobID: jobID, number: number, logPath: logPath.bytes, pid: worker.pid,
                        startTime: drafted.end == nil ? supervisor.startTime(ofLive: worker) : nil, at: wallNow,
                        ended: drafted.end)
                    if drafted.stateReplaced {
                        try transaction.addTransition(jobID: jobID, from: .queued, to: .running, detail: "attempt \(number)", at: wallNow)
                    } else {
                        try transaction.setState(jobID: jobID, from: .queued, to: .running, detail: "attempt \(number)", at: wallNow)
                    }
                }
            }
        } catch where SpawnThrottle.isShortage(errno: error.errno) {
            startDeferred(job, reason: error.description, errno: error.errno)
        } catch {
            // The command could not start at all (missing, not executable): a failed attempt like any other.
            logger.error("cannot start worker", metadata: [job.logKey: "\(job.name)", "job": "\(jobID)", "error": "\(error)"])
            taskStarted(job, at: wallNow)
            meter?.attemptEnded(.startFailed, seconds: nil)
            let reason = error.description
            record { transaction in
                let attemptID = try transaction.startAttempt(jobID: jobID, number: number, logPath: logPath.bytes, at: wallNow)
                try transaction.finishAttempt(
                    attemptID: attemptID, AttemptResult(outcome: .failed, exitCode: 127, reason: reason), at: wallNow)
            }
            attemptFailed(jobID: jobID, reason: reason, previous: claimsJobs ? .running : .queued, couldNotStart: true)
        }
    }

    /// A reload changed the job's attempt budget since it was recorded: `show` says the one it runs (or ended) under.
    func recordRunBudget(_ budget: Int, of jobID: Int64) {
        jobs[jobID]?.maxAttempts = budget
        record { try $0.setRunSettings(jobID: jobID, handler: nil, maxAttempts: budget) }
    }

    /// The spawner answered before the exec, which then failed (or entering the working directory did): the
    /// same outcome as a start that failed at once, for an attempt already recorded as running.
    private func startFailed(jobID: Int64, attempt: RunningAttempt, _ failure: SpawnError) {
        guard let job = jobs[jobID] else { return }
        let wallNow = Self.wallClock()
        let reason = failure.description
        recordAttemptEnd(jobID: jobID, AttemptResult(outcome: .failed, exitCode: 127, reason: reason), at: wallNow)
        if SpawnThrottle.isShortage(errno: failure.errno) {
            recordTransition(jobID: jobID, from: .running, to: .queued, attempts: job.attempts, detail: "cannot start: \(reason)", at: wallNow)
            var queued = job
            queued.state = .queued
            jobs[jobID] = queued
            startDeferred(queued, reason: reason, errno: failure.errno)
            return
        }
        logger.error("cannot start worker", metadata: [job.logKey: "\(job.name)", "job": "\(jobID)", "error": "\(reason)"])
        attempt.meter?.attemptEnded(.startFailed, seconds: nil)
        attemptFailed(jobID: jobID, reason: reason, previous: .running, couldNotStart: true)
    }

    private func nextLogPath(jobID: Int64, attempt: Int) -> PathBytes {
        let base = "job-\(jobID)-attempt-\(attempt)"
        var candidate = layout.logs.appending(RelativePath(base + ".log"))
        var rerun = 2
        while FileSystem.exists(candidate) {
            candidate = layout.logs.appending(RelativePath("\(base)-run-\(rerun).log"))
            rerun += 1
        }
        return candidate
    }

    func handleExit(jobID: Int64, _ exit: WorkerExit) {
        guard let attempt = running.removeValue(forKey: jobID), let job = jobs[jobID] else { return }
        if let failure = exit.logFailure {
            logger.warning(
                "the worker's output could not be kept in its log; show has its stderr's tail",
                metadata: [job.logKey: "\(job.name)", "job": "\(jobID)", "error": "\(failure)"])
        }
        runningEstimate = running.isEmpty ? .none : runningEstimate - attempt.estimate
        spawnThrottle.workerExited(configured: config.limits.maxConcurrent)
        if let timer = attempt.timeoutTimer { wheel.cancel(timer) }
        if let timer = attempt.killTimer { wheel.cancel(timer) }
        // A cancel that came first wins: its verdict (no retry) is decided below like any other exit.
        if let failure = exit.startFailure, intervention.cancelling[jobID] == nil {
            startFailed(jobID: jobID, attempt: attempt, failure)
            return
        }
        let termination: AttemptEnding.Termination = switch exit.termination {
        case .exited(let code): .exited(code)
        case .signaled(let number): .signaled(number)
        }
        let ending = AttemptEnding(
            termination: termination, timedOut: attempt.timedOut, endedByShutdown: attempt.interrupted,
            cancelled: intervention.cancelling[jobID] != nil, at: now)
        let verdict = AttemptVerdictPolicy.decide(ending, stoppingSince: phase.stoppingSince, now: now)
        if case .undecided(let until) = verdict {
            // The job stays running (in memory and in the store) until its verdict is known; its slot is free.
            let timer = wheel.schedule(at: until, .verdictDue(jobID: jobID))
            undecided[jobID] = UndecidedExit(exit: exit, attempt: attempt, ending: ending, timer: timer)
            logger.debug("killed by a signal; waiting a moment for a stop signal", metadata: ["job": "\(jobID)"])
            return
        }
        if verdict == .succeeded {
            // Its slot is free now; the bookkeeping of a success waits until the cycle has refilled the free
            // slots, so that the next worker starts sooner. A failure is decided at once: its breaker and retry
            // may hold back what starts next.
            succeededExits.append((jobID, exit, attempt))
            return
        }
        finishAttempt(jobID: jobID, exit, attempt: attempt, verdict: verdict)
    }

    /// The successes `handleExit` left for after the cycle's first starts.
    func finishSucceededExits() {
        guard !succeededExits.isEmpty else { return }
        let exits = succeededExits
        succeededExits.removeAll(keepingCapacity: true)
        for (jobID, exit, attempt) in exits { finishAttempt(jobID: jobID, exit, attempt: attempt, verdict: .succeeded) }
    }

    /// The window for a stop signal has passed, or the stop began: decide the waiting exits.
    func verdictDue(_ jobID: Int64) {
        guard let waiting = undecided.removeValue(forKey: jobID) else { return }
        wheel.cancel(waiting.timer)
        var verdict = AttemptVerdictPolicy.decide(waiting.ending, stoppingSince: phase.stoppingSince, now: now)
        if case .undecided = verdict { verdict = .failed }  // The timer fired early by a tick: the window is over.
        finishAttempt(jobID: jobID, waiting.exit, attempt: waiting.attempt, verdict: verdict)
    }

    func finishAttempt(jobID: Int64, _ exit: WorkerExit, attempt: RunningAttempt, verdict: AttemptVerdict) {
        guard let job = jobs[jobID], !endOfLostClaim(jobID) else { return }
        let wallNow = Self.wallClock()
        let result = Self.describe(exit, attempt: attempt, verdict: verdict)
        let number = attempt.number
        attempt.meter?.attemptEnded(
            RunResult(result.outcome, timedOut: attempt.timedOut), seconds: Self.seconds(since: attempt.startedAt, now: now))
        // A job has one running attempt at a time, so its row is found by the job: the row's insert may
        // still be pending in this same batch.
        recordAttemptEnd(jobID: jobID, result, at: wallNow)
        switch result.outcome {
        case .interrupted:
            // Cut short by shutdown: the attempt does not count and the file stays claimed for the next start.
            jobs[jobID]?.state = .queued
            breakerNoVerdict(job.owner)
            recordTransition(jobID: jobID, from: .running, to: .queued, attempts: job.attempts, detail: "interrupted by shutdown", at: wallNow)
            // On a shared store it is queued there again, for any daemon: it need not wait for this one's start.
            logger.info(
                claimsJobs ? "interrupted; runs again on whichever daemon of the store claims it" : "interrupted; will run again at next start",
                metadata: [job.logKey: "\(job.name)", "job": "\(jobID)"])
        case .succeeded:
            jobs[jobID] = nil  // Its name stays taken in `names` until its file has moved out.
            recordTransition(jobID: jobID, from: .running, to: .done, attempts: number, at: wallNow)
            metrics?.jobFinished(job.owner.kind, succeeded: true)
            breakerSucceeded(job.owner)
            noteBatchOutcome(job, succeeded: true, finished: true, reason: nil)
            let line = DoneLine(attempt: number, milliseconds: now - attempt.startedAt)
            // On a shared store a file's end may yet be refused (this daemon stalled past its lease and another took
            // the job back): its line waits until that end has committed and held (`endsThatHeld`).
            var lineWaits = false
            switch job.owner {
            case .task: taskFinished(job, succeeded: true, couldNotStart: false, reason: nil)
            case .upload: break
            case .handler(let name):
                processedCount += 1
                lineWaits = claimsJobs
                finishedJobs.append(
                    FinishedJob(jobID: jobID, name: job.name, succeeded: true, handler: name, doneLine: lineWaits ? line : nil))
            }
            if !lineWaits { sayDone(job.logKey, job.name, jobID: jobID, line) }
        case .cancelled:
            cancelledAttemptEnded(job, attempts: number)
        case .failed, .running:
            attemptFailed(jobID: jobID, reason: result.reason ?? "failed", previous: .running, backoff: attempt.spec.backoff)
        }
    }

    /// One line per success at info level: a burst of thousands stays readable and cheap.
    func sayDone(_ key: String, _ name: RelativePath, jobID: Int64, _ line: DoneLine) {
        logger.info(
            "done", metadata: [key: "\(name)", "job": "\(jobID)", "attempt": "\(line.attempt)", "ms": "\(line.milliseconds)"])
    }

    /// Finished files whose end has committed: the lost ones left out (`withoutLostClaims`), the others' "done"
    /// lines said now, once (a file that cannot move and is tried again does not say it twice).
    func endsThatHeld(_ finished: [FinishedJob]) -> [FinishedJob] {
        withoutLostClaims(finished).map { job in
            guard let line = job.doneLine else { return job }
            sayDone("file", job.name, jobID: job.jobID, line)
            var said = job
            said.doneLine = nil
            return said
        }
    }

    /// A start that failed for lack of resources spends no attempt: the job waits and tries again, and
    /// fewer workers run at once until starts succeed.
    private func startDeferred(_ job: LiveJob, reason: String, errno code: Int32) {
        // If it was its breaker's probe, the probe did not happen: the next job may probe.
        breakerNoVerdict(job.owner)
        let delay = spawnThrottle.shortage(running: running.count, reason: reason, errno: code)
        let jobID = job.id
        let wallNow = Self.wallClock()
        var waiting = job
        waiting.state = .retryWait
        waiting.retryTimer = schedule(.retry(jobID: jobID), after: delay)
        jobs[jobID] = waiting
        let limit = spawnThrottle.allowed(configured: config.limits.maxConcurrent)
        let why = "cannot start workers (\(reason)); running at most \(limit) at once"
        noteAdmission(waiting: why, limit: .cannotStart)
        logger.warning(
            "cannot start worker for lack of resources; will try again", metadata: [
                job.logKey: "\(job.name)", "job": "\(jobID)", "error": "\(reason)", "retry_in": "\(delay)ms",
                "max_running": "\(limit)",
            ])
        let notBefore = wallNow + Double(delay) / 1000
        // Claimed on a shared store: the claim is given back, for whichever daemon can start it first.
        recordTransition(
            jobID: jobID, from: claimsJobs ? .running : .queued, to: .retryWait, attempts: job.attempts, notBefore: notBefore,
            detail: "cannot start: \(reason)", at: wallNow)
    }

    /// A reload removed the handler or task of a job that had not started yet: a file is matched again
    /// against the handlers in force; what no handler takes, and runs of removed tasks, end here.
    func ownerRemoved(_ job: LiveJob) {
        let wallNow = Self.wallClock()
        if case .handler = job.owner, let handler = config.handler(for: job.name) {
            enqueue(rematch(job, to: handler))
            return
        }
        let reason: String = switch job.owner {
        case .handler(let name): "no handler (handler \(name) was removed by a reload)"
        case .task(let name): "task \(name) was removed by a reload"
        case .upload(let name): "handler \(name) no longer has an upload command"
        }
        failForGood(job, from: job.state, attempts: job.attempts, reason: reason, couldNotStart: true, at: wallNow)
    }

    /// A reload removed the handler of a job that has not started, and `handler` takes it now: it runs under that one
    /// and its budget, which the store records too, for `show` and `tasks`.
    @discardableResult
    func rematch(_ job: LiveJob, to handler: Handler) -> LiveJob {
        // From the live entry: what happened to the job since the caller's copy was taken stays.
        guard var moved = jobs[job.id] else { return job }
        moved.owner = .handler(handler.name)
        moved.maxAttempts = handler.maxAttempts
        jobs[job.id] = moved
        let (jobID, name, budget) = (job.id, handler.name, handler.maxAttempts)
        record { try $0.setRunSettings(jobID: jobID, handler: name, maxAttempts: budget) }
        logger.info("its handler was removed by a reload; handler \(name) takes it", metadata: ["file": "\(job.name)", "job": "\(jobID)"])
        return moved
    }

    /// The job ends in `failed`: recorded, counted, a file sent on its way to Failed/, a task's next run let through.
    /// `cancelledByHand`: ended by `cancel`, which is what the user asked for, not an error.
    func failForGood(
        _ job: LiveJob, from previous: JobState, attempts: Int, reason: String, couldNotStart: Bool, at wallNow: Double,
        cancelledByHand: Bool = false
    ) {
        let jobID = job.id
        jobs[jobID] = nil  // A file's name stays taken in `names` until it has moved out.
        noteBatchOutcome(job, succeeded: false, finished: true, reason: reason)
        metrics?.jobFinished(job.owner.kind, succeeded: false)
        recordTransition(jobID: jobID, from: previous, to: .failed, attempts: attempts, reason: reason, at: wallNow)
        switch job.owner {
        case .task: taskFinished(job, succeeded: false, couldNotStart: couldNotStart, reason: reason)
        case .upload: break
        case .handler:
            processedCount += 1
            finishedJobs.append(FinishedJob(jobID: jobID, name: job.name, succeeded: false))
        }
        let metadata: Logger.Metadata = [job.logKey: "\(job.name)", "job": "\(jobID)", "attempts": "\(attempts)", "reason": "\(reason)"]
        if cancelledByHand {
            logger.info("cancelled", metadata: metadata)
        } else {
            logger.error("failed for good", metadata: metadata)
        }
    }

    /// Retries after backoff while attempts remain, else the file goes to Failed/.
    func attemptFailed(
        jobID: Int64, reason: String, previous: JobState, couldNotStart: Bool = false, backoff: Duration? = nil
    ) {
        guard var job = jobs[jobID] else { return }
        job.attempts += 1
        breakerFailed(job.owner)
        let wallNow = Self.wallClock()
        let attempts = job.attempts
        if job.attempts < maxAttempts(of: job) {
            var generator = SystemRandomNumberGenerator()
            let base = backoff ?? spec(of: job.owner)?.backoff ?? .seconds(30)
            let delay = BackoffPolicy(base: base).delay(afterFailedAttempt: job.attempts, using: &generator)
            job.state = .retryWait
            job.retryTimer = schedule(.retry(jobID: jobID), after: ticks(delay))
            jobs[jobID] = job
            noteBatchOutcome(job, succeeded: false, finished: false, reason: reason)
            let notBefore = wallNow + Double(delay.wholeMilliseconds) / 1000
            recordTransition(
                jobID: jobID, from: previous, to: .retryWait, attempts: attempts, notBefore: notBefore, reason: reason, at: wallNow)
            logger.warning(
                "attempt failed; retrying", metadata: [
                    job.logKey: "\(job.name)", "job": "\(jobID)", "attempt": "\(attempts)", "reason": "\(reason)",
                    "retry_in": "\(delay.configText)",
                ])
        } else {
            failForGood(job, from: previous, attempts: attempts, reason: reason, couldNotStart: couldNotStart, at: wallNow)
        }
    }

    /// The budget of the config in force: a reload applies to the attempts that start after it, and a job matched
    /// again to another handler by a reload gets that handler's. The job's own (from its start) if its owner is gone.
    func maxAttempts(of job: LiveJob) -> Int {
        switch job.owner {
        case .handler(let name), .upload(let name): handler(named: name)?.maxAttempts ?? job.maxAttempts
        case .task(let name): task(named: name)?.maxAttempts ?? job.maxAttempts
        }
    }

    func retryDue(_ jobID: Int64) {
        guard var job = jobs[jobID], job.state == .retryWait else { return }
        job.state = .queued
        job.retryTimer = nil
        jobs[jobID] = job
        enqueue(job)
        let wallNow = Self.wallClock()
        recordTransition(jobID: jobID, from: .retryWait, to: .queued, detail: "backoff elapsed", at: wallNow)
    }

    func timeoutReached(_ jobID: Int64) {
        guard var attempt = running[jobID] else { return }
        attempt.timeoutTimer = nil
        attempt.timedOut = true
        attempt.killTimer = schedule(.killAfterGrace(jobID: jobID), after: killGrace)
        running[jobID] = attempt
        logger.warning("timed out; sending SIGTERM to its process group", metadata: ["job": "\(jobID)", "pid": "\(attempt.worker.pid)"])
        supervisor.signal(attempt.worker, SIGTERM)
    }

    func killAfterGrace(_ jobID: Int64) {
        guard var attempt = running[jobID] else { return }
        attempt.killTimer = nil
        running[jobID] = attempt
        logger.warning("still running after SIGTERM; sending SIGKILL", metadata: ["job": "\(jobID)", "pid": "\(attempt.worker.pid)"])
        supervisor.signal(attempt.worker, SIGKILL)
    }

    static func describe(_ exit: WorkerExit, attempt: RunningAttempt, verdict: AttemptVerdict) -> AttemptResult {
        let userCPU = Double(exit.userCPU.wholeMilliseconds) / 1000
        let systemCPU = Double(exit.systemCPU.wholeMilliseconds) / 1000
        var result = AttemptResult(
            outcome: .failed, timedOut: attempt.timedOut, userCPU: userCPU, systemCPU: systemCPU,
            maxRSSKiB: exit.maxRSSKiB, stderrTail: exit.stderrTail)
        switch exit.termination {
        case .exited(let code):
            result.exitCode = code
            result.reason = "exit status \(code)"
        case .signaled(let number):
            result.signal = number
            result.reason = "killed by signal \(number) (\(signalName(number)))"
        }
        switch verdict {
        case .succeeded:
            result.outcome = .succeeded
        case .interrupted:
            result.outcome = .interrupted
            result.reason = "interrupted by shutdown (\(result.reason ?? ""))"
        case .cancelled:
            result.outcome = .cancelled
            result.reason = "cancelled (\(result.reason ?? ""))"
        case .failed, .undecided:
            result.outcome = .failed
            if attempt.timedOut { result.reason = "timed out after \(attempt.spec.timeout); " + (result.reason ?? "") }
        }
        return result
    }

    static func signalName(_ number: Int32) -> String {
        switch number {
        case SIGHUP: "SIGHUP"
        case SIGINT: "SIGINT"
        case SIGQUIT: "SIGQUIT"
        case SIGILL: "SIGILL"
        case SIGABRT: "SIGABRT"
        case SIGBUS: "SIGBUS"
        case SIGFPE: "SIGFPE"
        case SIGKILL: "SIGKILL"
        case SIGSEGV: "SIGSEGV"
        case SIGPIPE: "SIGPIPE"
        case SIGALRM: "SIGALRM"
        case SIGTERM: "SIGTERM"
        case SIGXCPU: "SIGXCPU"
        case SIGXFSZ: "SIGXFSZ"
        default: "signal \(number)"
        }
    }
}
