#if canImport(Glibc)
import Glibc
#endif
@preconcurrency import Dispatch
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// Start-up recovery and shutdown.
extension Dispatcher {
    /// Brings memory, the store and the folders back into agreement after any kind of stop, then starts
    /// watching. Runs on `queue` before the first event.
    func start() throws {
        dispatchPrecondition(condition: .onQueue(queue))
        // Commits do not wait for the disk on this thread; the mover makes them durable before any file leaves
        // the processing area (see sendToMover), and `stop` before the daemon exits.
        try store.syncOnlyWhenAsked()
        try installEventLoop()
        watchStoreHold(store.holdDescriptor)
        installSignalHandlers()
        if let batch {
            try startBatch(batch)
            if phase == .starting { phase = .running }
            return
        }
        try endOrphanedWorkers()
        statusBoard = StatusBoard(path: Self.statusBoardPath(layout.state))
        postBoard(headline: "")
        if !sharesStore {
            openedDatabase = FileSystem.status(Self.databasePath(layout.state))
            openedLog = FileSystem.status(Self.databaseLogPath(layout.state))
        }
        // Circuits start closed; what `status` shows must say so. On a shared store other daemons' stay: each
        // daemon counts its own failures. SQLite's one daemon also drops those of a name it had before.
        let breakersNode = sharesStore ? config.node.name : nil
        record { try $0.clearBreakers(node: breakersNode) }
        try recoverJobs()
        // On a shared store another daemon's claim of a file may be between its rename and its commit.
        if !claimsJobs { adoptUnrecordedClaims() }
        adoptRecoveredUploads()
        try startTasks()
        // A daemon without the lister role leaves Inbox to those that have it.
        if runs(.lister) {
            startWatching()
            startScan(reason: "start")
        }
        startWakeups()
        for sweep in [TimerPurpose.ingestSweep, .retrySweep, .uploadSweep] where sweep != .ingestSweep || runs(.lister) { armSweep(sweep) }
        noteConfigLoaded()
        // A reason an earlier run left in the store (written late, or the daemon stopped while waiting) is not this run's.
        admissionNoted.text = ""
        writeAdmissionNote()
        if !supervisor.measuresWorkersOwnUsage {
            logger.warning("orchestrator-spawn is not beside the orchestrator binary; workers start directly and their max RSS includes the daemon's")
        }
        // Recovery may already have paused for a full disk: that stands.
        if phase == .starting { phase = .running }
        watchdogSweep()
        pruneSweepDue()
        startWatchdogPings()
        notifier.notify("READY=1\nSTATUS=watching \(layout.inbox)")
        logger.info(
            "watching", metadata: [
                "inbox": "\(layout.inbox)", "handlers": "\(config.handlers.count)",
                "max_concurrent": "\(config.limits.maxConcurrent)",
            ])
        scheduleCycle()
    }

    /// Worker groups a killed daemon left behind are ended before their files run again, so a file never
    /// has two workers at once. Workers carry ORCH_STATE_DIR, which finds them even if the daemon died
    /// before it could record their pids.
    private func endOrphanedWorkers() throws {
        var victims: [WorkerHandle] = []
        // On a shared store the running attempts of other daemons are theirs, alive on their hosts (or this one).
        let node = config.node.name
        let ownRunning: Set<Int64>? = claimsJobs
            ? Set(try store.read { try $0.jobs(inStates: [.running]) }.filter { $0.owner == node }.map(\.id)) : nil
        for attempt in try store.read({ try $0.runningAttempts() }) where ownRunning?.contains(attempt.jobID) ?? true {
            guard let pid = attempt.pid, let startTime = attempt.startTime else { continue }
            victims.append(WorkerHandle(pid: pid, startTime: startTime))
        }
        let found = OrphanFinder.processes(stateDirectory: config.paths.state)
        victims += found.workers
        var seen: Set<Int32> = []
        var endedGroups: Set<Int32> = []
        for victim in victims where seen.insert(victim.pid).inserted && ProcessSupervisor.isAlive(victim) {
            logger.warning("ending a worker group left by a previous daemon", metadata: ["pid": "\(victim.pid)"])
            ProcessSupervisor.killGroup(victim)
            endedGroups.insert(victim.pid)
        }
        // Grandchildren whose worker already exited cannot be found through a leader; they still carry
        // the marker, so they are ours. Only a group ended just now took them with it: one whose leader the
        // store names but which had already exited (the daemon's death ended it) left them running.
        for pid in found.strays where !endedGroups.contains(getpgid(pid)) {
            logger.warning("ending a leftover process of a previous daemon's worker", metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
        }
    }

    /// `filesToo: false` (an upload-only sweep) recovers the store's state but queues no file jobs.
    private func recoverJobs(filesToo: Bool = true) throws {
        let wallNow = Self.wallClock()
        // Read first, write through the one commit path: recovery on a full disk pauses instead of failing
        // the start (its writes wait with everything else until space returns).
        let (attempts, found, unmoved) = try store.read { reader in
            (try reader.runningAttempts(), try reader.jobs(inStates: [.running, .queued, .retryWait, .breakerWait, .paused]),
             try reader.unmovedFinishedJobs())
        }
        if claimsJobs {
            let shared = recoverOwnClaims(live: found, unmoved: unmoved)
            recoveredTaskJobs = shared.tasks
            recoveredUploads = []
            finishRecoveredMoves(unmoved: shared.unmoved, live: [])
            flushWrites()
            return
        }
        for attempt in attempts {
            let attemptID = attempt.id
            record {
                try $0.finishAttempt(
                    attemptID: attemptID, AttemptResult(outcome: .interrupted, reason: "the daemon stopped while it ran"),
                    at: wallNow)
            }
        }
        let all = found.map { job -> JobRecord in
            guard job.state == .running else { return job }
            let jobID = job.id
            record { try $0.setState(jobID: jobID, from: .running, to: .queued, detail: "recovered after the daemon stopped", at: wallNow) }
            var queued = job
            queued.state = .queued
            return queued
        }
        recoveredTaskJobs = all.filter { $0.kind == .task }
        recoveredUploads = all.filter { $0.kind == .upload }
        let live = all.filter { $0.kind == .file }
        finishRecoveredMoves(unmoved: unmoved, live: filesToo ? live : [])
        if !live.isEmpty || !unmoved.isEmpty {
            logger.info("recovered jobs from the store", metadata: ["live": "\(live.count)", "moved": "\(unmoved.count)"])
        }
        flushWrites()
    }

    /// What the store and the folders say of the files of live and of finished-but-unmoved jobs, acted on.
    private func finishRecoveredMoves(unmoved: [JobRecord], live: [JobRecord]) {
        let plan = RecoveryPlan(
            unmoved: unmoved, live: live,
            handler: { [config] job in
                (config.handlers.first { $0.name == job.handler } ?? config.handler(for: job.name))?.name
            },
            processing: { [layout] in FileSystem.status(layout.processing.appending($0)) },
            inbox: { [layout] in FileSystem.status(layout.inbox.appending($0)) },
            movedFile: { job in self.locateMovedFile(of: job, in: job.state == .done ? self.layout.done : self.layout.failed) })
        var recoveredMoves: [MovedFile] = []
        for action in plan.actions {
            switch action {
            case .finishMove(let job):
                if let moved = finishRecoveredMove(job) { recoveredMoves.append(moved) }
            case .alreadyMoved(let job, let finalName):
                logger.info(
                    "its file had reached \(job.state == .done ? "Done" : "Failed") before the stop; recorded where it is",
                    metadata: ["file": "\(job.name)", "job": "\(job.id)", "final": "\(finalName)"])
                recoveredMoves.append(recordRecoveredMove(job, finalName: finalName))
            case .newerFileUnderName(let job, let finalName):
                logger.warning(
                    "a newer file of the same name is in the processing area; it is a new job",
                    metadata: ["file": "\(job.name)", "job": "\(job.id)"])
                recoveredMoves.append(recordRecoveredMove(job, finalName: finalName))
            case .restore(let job, let handler):
                names.assign(job.name, to: job.id)
                restore(job, owner: .handler(handler), priority: recoveredPriority(job, handler: handler))
            case .reclaim(let job, let handler):
                let moved = try? FileSystem.renameNoReplace(layout.inbox.appending(job.name), layout.processing.appending(job.name))
                guard moved == .moved else {
                    failRecovered(job, reason: "its file disappeared while the daemon was down")
                    continue
                }
                logger.info("re-claimed a file found back in Inbox", metadata: ["file": "\(job.name)"])
                names.assign(job.name, to: job.id)
                restore(job, owner: .handler(handler), priority: recoveredPriority(job, handler: handler))
            case .fail(let job, let reason):
                failRecovered(job, reason: reason)
            }
        }
        // Their uploads, as for any file that reaches Done (committed with the final paths).
        queueUploads(recoveredMoves)
    }

    /// A finished job's file still in the processing area goes to Done/ or Failed/ (never run again); a move
    /// that fails leaves it stuck for the watchdog sweep.
    private func finishRecoveredMove(_ job: JobRecord) -> MovedFile? {
        let root = job.state == .done ? layout.done : layout.failed
        switch moveOut(job.name, jobID: job.id, into: root) {
        case .stuck(let reason, let outOfSpace):
            names.assign(job.name, to: job.id)
            keepStuck(
                FinishedJob(jobID: job.id, name: job.name, succeeded: job.state == .done, handler: job.handler), reason: reason,
                outOfSpace: outOfSpace)
            return nil
        case .moved(let finalName):
            return recordRecoveredMove(job, finalName: finalName)
        case .inputGone:
            return recordRecoveredMove(job, finalName: nil)
        }
    }

    private func recordRecoveredMove(_ job: JobRecord, finalName: RelativePath?) -> MovedFile {
        let jobID = job.id
        record { try $0.setFinalPath(jobID: jobID, finalName ?? RelativePath([])) }
        return MovedFile(
            job: FinishedJob(jobID: jobID, name: job.name, succeeded: job.state == .done, handler: job.handler),
            finalName: finalName, error: nil)
    }

    /// Where a finished job's file went, when its final path was not committed: the place in `root` the mover
    /// would have chosen (collision names of the file and of its folders) holding the inode it was claimed as.
    private func locateMovedFile(of job: JobRecord, in root: PathBytes) -> RelativePath? {
        FileMover.possiblePlaces(of: job.name, in: root, tag: "\(job.id)").first { candidate in
            FileSystem.status(root.appending(candidate)).map { RecoveryPlan.isClaimedFile($0, of: job) } ?? false
        }
    }

    private func failRecovered(_ record: JobRecord, reason: String) {
        let wallNow = Self.wallClock()
        let jobID = record.id
        let from = record.state
        logger.error("failing a recovered job", metadata: ["file": "\(record.name)", "job": "\(jobID)", "reason": "\(reason)"])
        if batch != nil { batchReport.filesFailed += 1 }
        self.record { try $0.setState(jobID: jobID, from: from, to: .failed, reason: reason, at: wallNow) }
        if FileSystem.exists(layout.processing.appending(record.name)) {
            // Its file goes to Failed/ under this job; it is not adopted as a claim of its own.
            names.assign(record.name, to: jobID)
            finishedJobs.append(FinishedJob(jobID: jobID, name: record.name, succeeded: false))
        } else {
            self.record { try $0.setFinalPath(jobID: jobID, RelativePath([])) }
        }
    }

    /// Uploads the store holds as live go back on the queue; due retries at once, the others at their time.
    func adoptRecoveredUploads() {
        let wallNow = Self.wallClock()
        for record in recoveredUploads {
            guard let handler = config.handlers.first(where: { $0.name == record.handler && $0.upload != nil }) else {
                let jobID = record.id
                let from = record.state
                self.record { try $0.setState(jobID: jobID, from: from, to: .failed, reason: "its handler no longer has an upload command", at: wallNow) }
                continue
            }
            restore(record, owner: .upload(handler.name), priority: record.priority)
        }
        recoveredUploads = []
    }

    /// A job the store holds as live, back in memory: a retry not yet due waits for its time, anything else
    /// is queued (and recorded as queued). `enqueue: false` leaves a queued job off the ready queue (a
    /// task's run that waits for its turn).
    @discardableResult
    func restore(_ record: JobRecord, owner: JobOwner, priority: Int, enqueue shouldQueue: Bool = true) -> LiveJob {
        let wallNow = Self.wallClock()
        var job = LiveJob(
            id: record.id, name: record.name, owner: owner, state: record.state, priority: priority,
            attempts: record.attempts, maxAttempts: record.maxAttempts)
        job.eventID = record.eventID
        if shouldQueue, record.state == .retryWait, let notBefore = record.notBefore, notBefore > wallNow {
            job.retryTimer = schedule(.retry(jobID: record.id), after: UInt64((notBefore - wallNow) * 1000))
            jobs[record.id] = job
            return job
        }
        if record.state != .queued {
            let jobID = record.id
            let from = record.state
            self.record { try $0.setState(jobID: jobID, from: from, to: .queued, detail: "recovered", at: wallNow) }
        }
        job.state = .queued
        jobs[record.id] = job
        if shouldQueue { enqueue(job) }
        return job
    }

    /// Files in the processing area with no live job (the daemon died between rename and commit) become
    /// jobs again: claimed, never run, so nothing runs twice.
    private func adoptUnrecordedClaims() {
        let cursor = DirectoryCursor(root: layout.processing, recursive: true) { _ in false }
        while true {
            let slice = cursor.next(limit: 512)
            if slice.isEmpty { break }
            // Hidden names are never claimed (they are never input), so a hidden entry is the owner's lock.
            for file in slice where !names.isTaken(file.path) && !file.path.hasHiddenComponent {
                newClaims.append(Claim(name: file.path, status: file.status))
                names.claimed(file.path)
            }
            commitClaims()
        }
    }

    // MARK: Signals and shutdown

    private func installSignalHandlers() {
        // A signal that came while it was blocked (a start from a process that blocks them, as test runners do)
        // waits as pending, and ignoring it below would discard it: a stop sent during the start would be lost.
        var pending = sigset_t()
        sigemptyset(&pending)
        sigpending(&pending)
        let early = [SIGTERM, SIGINT, SIGHUP].filter { sigismember(&pending, $0) == 1 }
        defer { for number in early { post(.signal(number)) } }
        // A one-shot run has no config to reload: SIGHUP (a closed terminal) stops it like SIGTERM.
        for number in [SIGTERM, SIGINT, SIGHUP] {
            // Ignored until libdispatch installs its handler, which it does once per signal: one installed
            // already (`watch` listened while it waited for space) must stay, or every signal would be lost.
            var current = sigaction()
            if sigaction(number, nil, &current) == 0, current.__sigaction_handler.sa_handler == nil { signal(number, SIG_IGN) }
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [unowned self] in post(.signal(number)) }
            source.resume()
            signalSources.append(source)
            guard number != SIGHUP || batch != nil else { continue }
            let flag = DispatchSource.makeSignalSource(signal: number, queue: .global())
            flag.setEventHandler { [stopSignalled] in stopSignalled.set() }
            flag.resume()
            signalSources.append(flag)
        }
        signal(SIGPIPE, SIG_IGN)
    }

    /// SIGTERM/SIGINT: start nothing new, give running workers `shutdown_grace`, then end their groups.
    /// A second signal ends them at once.
    /// `cause`: why, when no signal came (a service beside the dispatcher failed); the log says it instead of a signal.
    func beginShutdown(signal number: Int32, cause: String? = nil) {
        if phase.isStopping {
            logger.warning("second stop signal; ending running workers now")
            endRunningWorkers(because: "a second stop signal came")
            return
        }
        let deadline = running.isEmpty ? nil : now + ticks(config.limits.shutdownGrace)
        writeAdmissionNote()  // a change still held back by the once-a-second rule
        phase = .draining(since: now, deadline: deadline)
        scan = nil
        arrivals.removeAll()
        for timer in settling.removeAll() { wheel.cancel(timer) }
        watcher?.cancel()
        watcher = nil
        // The wake folder stays watched until the daemon stops: a cancel or priority of a job it still has is answered
        // while it drains (`takeRecordedEvents` takes only those then).
        for runtime in taskRuntimes.values { if let timer = runtime.timer { wheel.cancel(timer) } }
        notifier.notify("STOPPING=1\nSTATUS=draining \(running.count) workers")
        // `status` reads it: the daemon is still there, but stopping.
        // With the moment the grace ends, so that a `status` later in the drain tells how long is left.
        let graceEnds = LineLogHandler.timestamp(at: Self.wallClock() + Double(config.limits.shutdownGrace.wholeMilliseconds) / 1000)
        postBoard(headline:
            running.isEmpty ? "stopping"
                : "stopping: \(running.count == 1 ? "1 running worker has" : "\(running.count) running workers have") "
                    + "until \(config.limits.shutdownGrace.configText) after the stop signal, \(graceEnds)")
        logger.info(
            "stopping", metadata: [
                cause == nil ? "signal" : "cause": "\(cause ?? Self.signalName(number))", "running": "\(running.count)",
                "grace": "\(config.limits.shutdownGrace.configText)",
            ])
        if let deadline {
            _ = wheel.schedule(at: deadline, .shutdownDeadline)
        }
        // Workers killed from outside just before this signal were part of the stop (pm2's treekill).
        for jobID in Array(undecided.keys) { verdictDue(jobID) }
    }

    func shutdownDeadlineReached() { endRunningWorkers(because: "grace period over") }

    /// Ends the running workers' groups at once (SIGKILL); their attempts are interrupted, not failed.
    func endRunningWorkers(because reason: String) {
        for (jobID, var attempt) in running where !attempt.interrupted {
            attempt.interrupted = true
            running[jobID] = attempt
            logger.warning("\(reason); ending worker group", metadata: ["job": "\(jobID)", "pid": "\(attempt.worker.pid)"])
            supervisor.signal(attempt.worker, SIGKILL)
        }
    }

    /// A one-shot run: no watch, no schedules; recovers and runs what its work names, then stops.
    private func startBatch(_ work: BatchWork) throws {
        try endOrphanedWorkers()
        if work.ingest || work.retry {
            try recoverJobs()
            adoptUnrecordedClaims()
        }
        if work.ingest { startScan(reason: "sweep") }
        if work.upload {
            if !(work.ingest || work.retry) { try recoverJobs(filesToo: false) }
            adoptRecoveredUploads()
        }
        if let name = work.taskRun {
            try prepareTaskRuntimes()
            if task(named: name) != nil {
                due(name, cause: .manual)
                batchReport.taskJob = taskRuntimes[name]?.runs.active
            }
        }
        scheduleCycle()
    }

    /// Done when nothing runs, nothing is queued or being read, and the foreground task run (if any) has
    /// ended. Retries not yet due are left for the next sweep or daemon.
    func finishBatchIfDone() {
        guard batch != nil, !phase.isStopping else { return }
        guard scan == nil, running.isEmpty, undecided.isEmpty, movesInFlight == 0, finishedJobs.isEmpty, settling.isEmpty, newClaims.isEmpty,
              arrivals.isEmpty
        else { return }
        if jobs.values.contains(where: { $0.state == .queued }) { return }
        if let taskJob = batchReport.taskJob, jobs[taskJob] != nil { return }
        flushWrites()
        // Uploads a sweep ran count whichever mode queued them (an ingest sweep uploads what it moved to Done).
        let uploadFailures = batchReport.uploadsFailed + batchReport.uploadsRetryingLater
        let failed = batchReport.filesFailed + batchReport.retryingLater + uploadFailures > 0 || batchReport.taskSucceeded == false
        stop(exitCode: failed ? 1 : 0)
    }

    func finishShutdownIfDrained() {
        guard case .draining = phase, running.isEmpty, undecided.isEmpty, movesInFlight == 0 else { return }
        if !finishedJobs.isEmpty {
            // Their end states could not be committed (the disk is full): they stay claimed, and the next start
            // runs them again rather than move a file whose result is not recorded.
            guard !writes.isEmpty else { return }
            logger.error("stopping with \(finishedJobs.count) finished files whose results could not be recorded; they run again at the next start")
        }
        if batch == nil { markNodeStopped() }
        flushWrites()
        logger.info("stopped", metadata: ["processed": "\(processedCount)"])
        stop(exitCode: stopExitCode)
    }
}

