#if canImport(Glibc)
import Glibc
#endif
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// Several daemons on one shared store (PostgreSQL): a job runs only under a claim in the store, held under a
/// lease this daemon renews while it runs, and every later step of the job is guarded by that claim. A daemon that
/// stalls past its lease loses the job to another daemon's rescue; its late end is refused and moves nothing.
///
/// On SQLite the daemon is alone: none of this runs, and the state changes are written as they always were.
extension Dispatcher {
    /// Jobs run under claims: a daemon (not a one-shot run, which holds the store alone) on a shared store.
    var claimsJobs: Bool { sharesStore && batch == nil }

    enum StartClaim {
        case claimed
        /// Another daemon took it first, or it is no longer queued (cancelled from another daemon).
        case takenElsewhere
        /// The store cannot be written now (paused); the job waits.
        case notNow
    }

    /// Before a worker starts: the job becomes this daemon's in the store, in one transaction with the writes
    /// pending (among them the job's own insert, when it was queued this cycle).
    func claimForStart(_ job: LiveJob) -> StartClaim {
        guard claimsJobs, !claimLedger.holds(job.id) else { return .claimed }
        let (node, lease, jobID) = (config.node.name, config.store.leaseSeconds, job.id)
        let isTask = if case .task = job.owner { true } else { false }
        // A task run also waits while another run of its task runs on any daemon: then it is left queued in the store,
        // for whichever daemon claims it once that run ends. Other jobs' claims are answered with the COMMIT: one round
        // trip for the pending writes, the claim and the COMMIT.
        guard let answer = commit("claim a job", { transaction -> StoreAnswer<JobRecord?> in
            isTask
                ? StoreAnswer(try transaction.claimTaskRun(id: jobID, node: node, lease: lease))
                : try transaction.claimJobAnswered(id: jobID, node: node, lease: lease)
        }) else {
            return .notNow
        }
        guard let claimed = answer.value ?? nil else { return .takenElsewhere }
        claimLedger.took(jobID, claim: claimed.claims, isTaskRun: isTask)
        armLeaseRenewal()
        return .claimed
    }

    /// A job of this daemon's memory that another daemon runs (or ended): forgotten here.
    func forgetTakenElsewhere(_ job: LiveJob) {
        jobs[job.id] = nil
        switch job.owner {
        case .handler:
            for waiting in names.release(job.name, job: job.id) { noteActivity(waiting) }
        case .task(let name):
            if var runtime = taskRuntimes[name] {
                if let next = runtime.runs.finished(job.id, stillLive: { jobs[$0] != nil }), let held = jobs[next] { enqueue(held) }
                taskRuntimes[name] = runtime
            }
        case .upload: break
        }
        logger.debug("another daemon took it first", metadata: [job.logKey: "\(job.name)", "job": "\(job.id)"])
    }

    /// A job's state change. A running job's end goes through its claim; other changes of a job every daemon can
    /// see stay in memory unless they end it (a breaker's or a pause's wait is this daemon's own: in the store the
    /// job stays queued, for any daemon to claim).
    func recordTransition(
        jobID: Int64, from previous: JobState?, to state: JobState, attempts: Int? = nil, notBefore: UnixTime? = nil,
        reason: String? = nil, detail: String? = nil, at wallNow: UnixTime
    ) {
        guard claimsJobs else {
            if previous == .running { attemptDrafts.replaceState(job: jobID) }
            record {
                try $0.setState(
                    jobID: jobID, from: previous, to: state, attempts: attempts, notBefore: notBefore, reason: reason,
                    detail: detail, at: wallNow)
            }
            return
        }
        let node = config.node.name
        if previous == .running {
            // Known by the claim: a finished job has left `jobs` by now.
            // nil: its claim was found lost. Whatever this daemon decided, another daemon has the job now.
            guard let handedIn = claimLedger.handIn(jobID) else { return }
            let (claim, isTask) = (handedIn.number, handedIn.isTaskRun)
            // A retry waits in the store as queued with its time, so that any daemon can run it when it is due.
            let stored: JobState = state == .retryWait ? .queued : state
            // The attempt's end recorded just before for this commit goes in the same guarded statement.
            let attemptEnd = isTask ? nil : attemptEnds.take(ClaimedRun(job: jobID, claim: claim))
            record { [self] transaction in
                if isTask {
                    // Answered at once: a task run's end announces itself (the task's next run may start on any
                    // daemon), which an engine decides before COMMIT.
                    let held = try transaction.finishClaimed(
                        jobID: jobID, node: node, claim: claim, to: stored, attempts: attempts, notBefore: notBefore,
                        reason: reason, detail: detail, at: wallNow)
                    if !held { claimLedger.endRefused(jobID) }
                } else if let attemptEnd {
                    try transaction.finishClaimed(
                        jobID: jobID, node: node, claim: claim, to: stored, attempts: attempts, notBefore: notBefore,
                        reason: reason, detail: detail, at: wallNow, endingAttempt: attemptEnd
                    ) { [self] in claimLedger.endRefused(jobID) }
                } else {
                    try transaction.finishClaimed(
                        jobID: jobID, node: node, claim: claim, to: stored, attempts: attempts, notBefore: notBefore,
                        reason: reason, detail: detail, at: wallNow
                    ) { [self] in claimLedger.endRefused(jobID) }
                }
            }
            return
        }
        guard state.isTerminal else { return }
        record { [self] transaction in
            let ended = try transaction.finishUnclaimed(
                jobID: jobID, to: state, attempts: attempts, reason: reason, detail: detail, at: wallNow)
            if !ended { claimLedger.endRefused(jobID) }
        }
    }

    /// A running attempt's end, under the job's claim on a shared store.
    func recordAttemptEnd(jobID: Int64, _ result: AttemptResult, at wallNow: UnixTime) {
        guard claimsJobs else {
            if !attemptDrafts.absorbEnd(job: jobID, (result, wallNow)) {
                record { try $0.finishRunningAttempt(jobID: jobID, result, at: wallNow) }
            }
            attemptEndsUncommitted = true
            return
        }
        guard let claim = claimLedger.claim(of: jobID)?.number else { return }
        let node = config.node.name
        // Refused, the job's end below is refused too, and says the claim is lost. Usually that end takes this one.
        let handOff = attemptEnds.record(ClaimedRun(job: jobID, claim: claim), (result, wallNow))
        record { [unowned self] transaction in
            guard !attemptEnds.wasTaken(handOff) else { return }
            try transaction.endClaimedAttempt(jobID: jobID, node: node, claim: claim, result, at: wallNow)
        }
        attemptEndsUncommitted = true
    }

    /// Finished files whose claim turned out lost when their end was committed: another daemon has the job, and
    /// its file stays in the processing area for that daemon.
    func withoutLostClaims(_ finished: [FinishedJob]) -> [FinishedJob] {
        guard claimLedger.anyLost else { return finished }
        return finished.filter { job in
            guard claimLedger.settleLost(job.jobID) else { return true }
            logger.warning(
                "the claim on this job was lost (its lease ran out); another daemon runs it, nothing is moved",
                metadata: ["file": "\(job.name)", "job": "\(job.jobID)"])
            for waiting in names.release(job.name, job: job.jobID) { noteActivity(waiting) }
            return false
        }
    }

    // MARK: Recovery

    /// Recovery on a shared store: only this daemon's own jobs. Its running jobs were cut short (it is starting, so
    /// whatever ran them died) and go back to the queue at once, without waiting for their leases; its finished
    /// files still in the processing area are moved. Queued jobs are everyone's: free slots claim them from the
    /// store (`claimForeignWork`), best first. Other daemons' running jobs and moves are theirs.
    /// Returns what the shared recovery leaves to the usual path: the task runs to adopt (uploads are claimed like
    /// any queued work) and the finished jobs to move.
    func recoverOwnClaims(live found: [JobRecord], unmoved: [JobRecord]) -> (tasks: [JobRecord], unmoved: [JobRecord]) {
        let (node, wallNow) = (config.node.name, Self.wallClock())
        let mine = found.filter { $0.state == .running && $0.owner == node }
        var requeued: [JobRecord] = []
        for job in mine {
            let (jobID, claim, attempts) = (job.id, job.claims, max(0, job.attempts - 1))
            let interrupted = AttemptResult(outcome: .interrupted, reason: "the daemon stopped while it ran")
            record { transaction in
                try transaction.endClaimedAttempt(jobID: jobID, node: node, claim: claim, interrupted, at: wallNow)
                _ = try transaction.finishClaimed(
                    jobID: jobID, node: node, claim: claim, to: .queued, attempts: attempts, notBefore: nil, reason: nil,
                    detail: "recovered after the daemon stopped", at: wallNow)
            }
            var queued = job
            queued.state = .queued
            queued.attempts = attempts
            requeued.append(queued)
        }
        foreignWorkPending = true
        if !mine.isEmpty { logger.info("recovered this daemon's interrupted jobs", metadata: ["jobs": "\(mine.count)"]) }
        // Each starting scheduler adopts the queued task runs, as any of them may run them: the claim decides which
        // daemon runs each, one run of a task at a time. (A worker without the scheduler role leaves its own to them.)
        let tasks = runs(.scheduler)
            ? requeued.filter { $0.kind == .task } + found.filter { $0.kind == .task && $0.state == .queued } : []
        return (tasks, unmoved.filter { $0.owner == node })
    }

    // MARK: Leases

    func armLeaseRenewal() {
        guard claimsJobs, leaseTimer == nil, claimLedger.holdsAny else { return }
        leaseTimer = schedule(.leaseRenewal, after: UInt64(max(1, config.store.lease.wholeMilliseconds / 3)))
    }

    /// Every third of the lease while this daemon holds claims: one statement renews them all; claims found lost
    /// end their workers; leases other daemons let run out are taken back for any daemon to claim.
    func leaseRenewalDue() {
        leaseTimer = nil
        // Tried even while the store cannot be written: the renewal is also how this daemon is back first after an
        // outage, before the others' rescues (which wait `lease` after a server restart) take its jobs.
        guard claimsJobs, claimLedger.holdsAny else {
            armLeaseRenewal()
            return
        }
        let (node, lease, held, wallNow) = (config.node.name, config.store.leaseSeconds, claimLedger.held, Self.wallClock())
        let outcome = commit("renew leases") { transaction -> (lost: [Int64], rescued: [Int64]) in
            let renewed = try transaction.renewLeases(node: node, lease: lease)
            var lost: [Int64] = []
            if renewed < held.count {
                for (id, claim) in held {
                    let job = try transaction.reader.job(id: id)
                    if job?.state != .running || job?.owner != node || job?.claims != claim { lost.append(id) }
                }
            }
            return (lost, try transaction.rescueExpiredLeases(at: wallNow, graceAfterRestart: lease))
        }
        if let outcome {
            for jobID in outcome.lost { claimLost(jobID) }
            if !outcome.rescued.isEmpty {
                logger.warning("took back jobs whose daemon's lease ran out", metadata: ["jobs": "\(outcome.rescued.count)"])
                foreignWorkPending = true
            }
        }
        armLeaseRenewal()
    }

    /// This daemon stalled past its lease and another took the job back: its worker must not go on beside the
    /// other daemon's run. Nothing of the job is recorded or moved from here on.
    func claimLost(_ jobID: Int64) {
        guard claimLedger.renewalFoundLost(jobID) else { return }
        logger.error("the lease on this job ran out and another daemon took it back; ending its worker", metadata: ["job": "\(jobID)"])
        if var attempt = running[jobID] {
            attempt.interrupted = true
            running[jobID] = attempt
            supervisor.signal(attempt.worker, SIGKILL)
        }
    }

    /// A worker whose claim was lost has exited: forgotten, its slot free, nothing written.
    func endOfLostClaim(_ jobID: Int64) -> Bool {
        guard claimLedger.isLost(jobID), let job = jobs[jobID] else { return false }
        _ = claimLedger.settleLost(jobID)
        forgetTakenElsewhere(job)
        return true
    }

    // MARK: Work queued by other daemons

    /// Free slots take queued jobs of any daemon, best first, after this daemon's own queue: at start, after a rescue,
    /// and when another daemon says it queued work. Task runs first, once per look (they are few, and due now), on a
    /// scheduler: a task's run may start on any of them once no other run of its task runs anywhere.
    func claimForeignWork() {
        guard claimsJobs, foreignWorkPending, phase.admitsNewWork, readyCount == 0, runs(.worker) else { return }
        let (node, lease) = (config.node.name, config.store.leaseSeconds)
        let agingStep = Double(Self.agingStep(config)) / 1000
        var looksForTaskRuns = runsTaskRuns
        while running.count < spawnThrottle.allowed(configured: config.limits.maxConcurrent), phase.admitsNewWork {
            // The host's limits first: a job claimed and then given back for them would wait out the give-back delay.
            // Held back, the admission recheck (or the next exit) looks again, as for this daemon's own queue.
            if let reason = hostHoldsBack() {
                noteAdmission(waiting: reason)
                if admissionRecheck == nil { admissionRecheck = schedule(.admissionRecheck, after: Self.admissionRecheckDelay) }
                return
            }
            guard let claimed = commit("claim a job", { [looksForTaskRuns] transaction -> JobRecord? in
                if looksForTaskRuns, let run = try transaction.claimNextTaskRun(node: node, lease: lease, agingStep: agingStep) { return run }
                return try transaction.claimNext(node: node, lease: lease, kinds: Self.foreignKinds, agingStep: agingStep)
            })
            else { return }
            looksForTaskRuns = looksForTaskRuns && claimed?.kind == .task
            guard let taken = claimed else {
                foreignWorkPending = false
                armClaimableTimer()
                return
            }
            // A job this daemon cannot run ends the look: the next one would likely be the same.
            guard let job = adoptClaimed(taken) else { return }
            if let reason = heldBack(job) {
                jobs[job.id] = nil
                if case .handler = job.owner { _ = names.release(job.name, job: job.id) }
                _ = release(taken, reason: reason)
                return
            }
            claimLedger.took(taken.id, claim: taken.claims, isTaskRun: taken.kind == .task)
            armLeaseRenewal()
            adoptTaskRun(job)
            // A cancel or priority left for this job's holder (a daemon that stopped or died with it) is this daemon's
            // now: applied before the job starts, so that a cancelled job never runs.
            var toStart = job
            if requestsLeftToHolders.contains(job.id) {
                takeRecordedEvents()
                guard let current = jobs[job.id], current.state == .queued else { continue }
                toStart = current
            }
            start(toStart, queuedAt: now)
        }
    }

    /// A job claimed from the store, in memory as one of this daemon's; nil when its handler is gone here (then it
    /// is given back).
    private func adoptClaimed(_ record: JobRecord) -> LiveJob? {
        let owner: JobOwner
        let handlerName = record.handler ?? ""
        switch record.kind {
        case .file:
            guard let handler = config.handlers.first(where: { $0.name == handlerName }) ?? config.handler(for: record.name) else {
                return release(record, reason: "no handler here for it")
            }
            // Daemons that share a store share its files only through one processing area: one on other folders
            // leaves the job to those that have its file.
            guard let status = FileSystem.status(layout.processing.appending(record.name)),
                RecoveryPlan.isClaimedFile(status, of: record)
            else { return release(record, reason: "its file is not in this daemon's processing area") }
            owner = .handler(handler.name)
            names.assign(record.name, to: record.id)
        case .upload:
            guard config.handlers.contains(where: { $0.name == handlerName && $0.upload != nil }) else {
                return release(record, reason: "its handler has no upload command here")
            }
            owner = .upload(handlerName)
        case .task:
            let name = String(decoding: record.name.bytes, as: UTF8.self)
            guard runsTaskRuns, task(named: name) != nil, taskRuntimes[name] != nil else { return release(record, reason: "no task \(name) here") }
            owner = .task(name)
        }
        // Counted by the claim; in memory the count is of attempts that ended.
        let job = LiveJob(
            id: record.id, name: record.name, owner: owner, state: .queued, priority: record.priority,
            attempts: max(0, record.attempts - 1), maxAttempts: record.maxAttempts, eventID: record.eventID)
        jobs[record.id] = job
        return job
    }

    /// Why a job claimed from the store must not start here now: what holds back this daemon's own jobs (a paused
    /// handler, an open breaker, the admission limits) holds back others' too.
    private func heldBack(_ job: LiveJob) -> String? {
        switch job.owner {
        case .handler(let name), .upload(let name):
            if intervention.pausedHandlers == nil { intervention.pausedHandlers = readPausedHandlers() ?? [] }
            if intervention.pausedHandlers?.contains(name) == true { return "handler \(name) is paused" }
        case .task: break
        }
        if breakers[job.owner]?.isOpen == true { return "its circuit breaker is open" }
        return nil
    }

    /// What the admission limits say before anything is claimed (a claimed job's own estimate is not known yet).
    private func hostHoldsBack() -> String? {
        let host = running.isEmpty ? nil : hostMonitor.sample(at: now, workers: running.values.map(\.worker.pid))
        guard case .wait(let reason, _, _) = admission.decide(
            candidate: .none, running: runningEstimate, runningCount: running.count, host: host)
        else { return nil }
        return reason
    }

    /// How long a job given back waits before any daemon claims it again: this one would otherwise take it back at once.
    static let givenBackDelay: Double = 5

    /// Gives a claimed job back to the queue untouched (its attempt uncounted): another daemon may run it.
    private func release(_ claimed: JobRecord, reason: String) -> LiveJob? {
        let (node, wallNow) = (config.node.name, Self.wallClock())
        logger.warning("claimed a job this daemon cannot run; giving it back", metadata: ["job": "\(claimed.id)", "reason": "\(reason)"])
        record {
            _ = try $0.finishClaimed(
                jobID: claimed.id, node: node, claim: claimed.claims, to: .queued, attempts: max(0, claimed.attempts - 1),
                notBefore: wallNow + Self.givenBackDelay, reason: nil, detail: "given back by \(node): \(reason)", at: wallNow)
        }
        return nil
    }
}

extension Dispatcher {
    /// On a shared store, files in the processing area with no job (a daemon died between its rename and its
    /// commit) are adopted by any lister: a file seen unregistered, as the same inode, at two watchdog sweeps in a
    /// row, far longer than any claim takes to commit. The store's unique live name decides between daemons that
    /// adopt it at once. (On SQLite the start adopts them, the state dir's lock keeping everyone else out.)
    func adoptOrphanedFiles() {
        guard claimsJobs, runs(.lister), !phase.isStopping, !phase.isPausedForDisk else { return }
        var seen: [RelativePath: FileStatus] = [:]
        let cursor = DirectoryCursor(root: layout.processing, recursive: true) { _ in false }
        while case let slice = cursor.next(limit: 512), !slice.isEmpty {
            // Hidden names are never input: a hidden entry is a lock.
            for file in slice where !names.isTaken(file.path) && !file.path.hasHiddenComponent {
                if file.status.kind == .regular { seen[file.path] = file.status }
            }
        }
        let again = seen.filter { name, status in
            orphanCandidates[name].map { $0.device == status.device && $0.inode == status.inode } ?? false
        }
        orphanCandidates = seen
        let wallNow = Self.wallClock()
        for (name, status) in again.sorted(by: { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }) {
            guard let handler = config.handler(for: name) else { continue }
            let latest: JobRecord?
            do {
                latest = try store.read { try $0.latestJob(kind: .file, name: name) }
            } catch {
                logger.warning("cannot read the store to adopt a file left in the processing area", metadata: ["error": "\(error)"])
                return
            }
            // Live, or finished and not yet moved out: its daemon (or that daemon's next start) has it.
            if let latest, !latest.state.isTerminal || latest.finalPath == nil { continue }
            let adopted = commit("adopt a file left in the processing area") {
                try $0.adoptFile(
                    name: name, handler: handler.name, priority: handler.priority, maxAttempts: handler.maxAttempts,
                    claim: (status.device, status.inode), at: wallNow)
            }
            guard let id = adopted ?? nil else { continue }
            orphanCandidates[name] = nil
            logger.warning("adopted a file left in the processing area with no job", metadata: ["file": "\(name)", "job": "\(id)"])
            let job = LiveJob(
                id: id, name: name, owner: .handler(handler.name), state: .queued, priority: handler.priority, attempts: 0,
                maxAttempts: handler.maxAttempts)
            jobs[id] = job
            names.assign(name, to: id)
            enqueue(job)
        }
    }
}
