#if canImport(Glibc)
import Glibc
#endif
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// What `cancel`, `priority` and `handler pause|resume` left for the daemon to apply.
struct InterventionState {
    /// Running attempts ended by `cancel`, with the reason their job fails with.
    var cancelling: [Int64: String] = [:]
    /// Handlers paused in the store; nil until first read.
    var pausedHandlers: Set<String>?
    /// Jobs waiting because their handler is paused, by handler, in the order they were parked.
    var parked: [String: [Int64]] = [:]
}

/// Requests of `orchestrator cancel` and `priority` (recorded in the store, announced through the wake
/// folder) and handler pauses. The decisions are `Intervention`'s; this applies them to the live jobs.
extension Dispatcher {
    static let cancelRequest = "cancel"
    static let priorityRequest = "priority"

    /// Handles a `cancel` or `priority` request and records the answer its command waits for; false if
    /// `kind` is neither.
    func handleIntervention(requestID: Int64, kind: String, target: String) -> Bool {
        let answer: String
        switch kind {
        case Self.cancelRequest:
            guard let (jobID, reason) = InterventionRequest.parse(target) else { return false }
            answer = cancel(jobID: jobID, reason: reason)
        case Self.priorityRequest:
            guard let (jobID, text) = InterventionRequest.parse(target), let priority = Int(text) else { return false }
            answer = setPriority(jobID: jobID, to: priority)
        default:
            return false
        }
        let wallNow = Self.wallClock()
        record { [self] transaction in
            // A queued job's end is guarded on a shared store: another daemon that claimed it from the store a moment
            // ago has it, and the answer says so rather than that it was cancelled.
            var result = answer
            if kind == Self.cancelRequest, claimsJobs, let (jobID, _) = InterventionRequest.parse(target), claimLedger.isLost(jobID) {
                let owner = try transaction.reader.job(id: jobID)?.owner
                result = InterventionRequest.answer(.otherDaemon(owner ?? "that claimed it"))
            }
            try transaction.answerRequest(id: requestID, result: result, at: wallNow)
        }
        return true
    }

    // MARK: cancel

    func cancel(jobID: Int64, reason: String) -> String {
        if let waiting = undecided.removeValue(forKey: jobID) {
            // Killed from outside, its verdict waiting for a stop signal: it ends as cancelled now.
            wheel.cancel(waiting.timer)
            intervention.cancelling[jobID] = reason
            var ending = waiting.ending
            ending.cancelled = true
            let verdict = AttemptVerdictPolicy.decide(ending, stoppingSince: phase.stoppingSince, now: now)
            finishAttempt(jobID: jobID, waiting.exit, attempt: waiting.attempt, verdict: verdict)
            return InterventionRequest.cancelled
        }
        guard let job = jobs[jobID] else { return claimsJobs ? cancelUnheld(jobID, reason: reason) : answerFromStore(jobID) }
        switch Intervention.cancel(job.state, daemonRuns: true) {
        case .failNow, .endLeftoverThenFail:
            if let timer = job.retryTimer { wheel.cancel(timer) }
            breakerParked[job.owner]?.removeAll { $0 == jobID }
            if case .handler(let name) = job.owner { intervention.parked[name]?.removeAll { $0 == jobID } }
            logger.info("cancelled \(Intervention.whenCancelled(attempts: job.attempts))", metadata: [job.logKey: "\(job.name)", "job": "\(jobID)", "reason": "\(reason)"])
            // Claimed from the store and not started yet: its end goes through that claim.
            let from: JobState = claimLedger.holds(jobID) ? .running : job.state
            // Its entry on the ready queue is dropped as stale once the job is gone.
            failForGood(job, from: from, attempts: job.attempts, reason: reason, couldNotStart: false, at: Self.wallClock(), cancelledByHand: true)
            return InterventionRequest.cancelled
        case .endRunningAttempt:
            guard var attempt = running[jobID] else { return answerFromStore(jobID) }
            intervention.cancelling[jobID] = reason
            // The same grace as at a timeout, then SIGKILL (a timeout's kill timer already armed stands).
            if attempt.killTimer == nil { attempt.killTimer = schedule(.killAfterGrace(jobID: jobID), after: killGrace) }
            running[jobID] = attempt
            logger.info(
                "cancelled while running; sending SIGTERM to its process group",
                metadata: [job.logKey: "\(job.name)", "job": "\(jobID)", "pid": "\(attempt.worker.pid)", "reason": "\(reason)"])
            supervisor.signal(attempt.worker, SIGTERM)
            return InterventionRequest.ending
        case .refuse(let refusal):
            return InterventionRequest.answer(refusal)
        }
    }

    /// On a shared store, a waiting job no daemon has in memory (given back while its handler is paused or its breaker
    /// open, or its daemon is gone): ended in the store, only if it still waits there (a daemon that claimed it a
    /// moment ago has it), and its file sent from the shared processing area to Failed/.
    private func cancelUnheld(_ jobID: Int64, reason: String) -> String {
        let wallNow = Self.wallClock()
        guard let (ended, record) = commit("cancel a job", { transaction -> (Bool, JobRecord?) in
            let ended = try transaction.finishUnclaimed(jobID: jobID, to: .failed, attempts: nil, reason: reason, detail: nil, at: wallNow)
            return (ended, try transaction.reader.job(id: jobID))
        }), ended, let record else { return answerFromStore(jobID) }
        logger.info("cancelled \(Intervention.whenCancelled(attempts: record.attempts))", metadata: [record.kind.logKey: "\(record.name)", "job": "\(jobID)", "reason": "\(reason)"])
        if record.kind == .file {
            finishedJobs.append(FinishedJob(jobID: jobID, name: record.name, succeeded: false, handler: record.handler))
        }
        return InterventionRequest.cancelled
    }

    /// A cancelled attempt's worker has ended: the job fails for good, no retry, its breaker unmoved.
    func cancelledAttemptEnded(_ job: LiveJob, attempts: Int) {
        let reason = intervention.cancelling.removeValue(forKey: job.id) ?? Intervention.cancelReason(nil)
        breakerNoVerdict(job.owner)
        failForGood(job, from: .running, attempts: attempts, reason: reason, couldNotStart: false, at: Self.wallClock(), cancelledByHand: true)
    }

    /// A job this daemon does not hold as live: finished (or finishing), or unknown.
    private func answerFromStore(_ jobID: Int64) -> String {
        let record: JobRecord?
        do {
            record = try store.read { try $0.job(id: jobID) }
        } catch {
            // Nothing is changed on this answer; the command says the job is unknown and the log says why.
            logger.error("cannot read job \(jobID) to answer a request", metadata: ["error": "\(error)"])
            record = nil
        }
        guard let record else { return InterventionRequest.answer(.unknown) }
        // On a shared store a live job this daemon does not hold is another daemon's: its claimant's, or, not claimed
        // yet, the daemon that registered it and holds it in its queue.
        if claimsJobs, !record.state.isTerminal {
            return InterventionRequest.answer(.otherDaemon(record.owner ?? registeringDaemon(of: jobID) ?? "that queued it"))
        }
        // Live in the store but not here: it has just finished and its end is not committed yet.
        return InterventionRequest.answer(.finished(record.state.isTerminal ? record.state : .done))
    }

    /// The daemon that registered a file job on a shared store, from its first transition; nil if not recorded.
    func registeringDaemon(of jobID: Int64) -> String? {
        let transitions: [(at: UnixTime, from: String?, to: String, detail: String?)]
        do {
            transitions = try store.read { try $0.transitions(jobID: jobID) }
        } catch {
            // Only the refusal's wording depends on it.
            logger.warning("cannot read job \(jobID)'s registration to name its daemon", metadata: ["error": "\(error)"])
            return nil
        }
        return Self.registrar(firstTransitionDetail: transitions.first?.detail)
    }

    /// The daemon named by a job's first transition, if that records its registration on a shared store.
    static func registrar(firstTransitionDetail detail: String?) -> String? {
        guard let detail, detail.hasPrefix(registeredBy) else { return nil }
        return String(detail.dropFirst(registeredBy.count))
    }

    // MARK: priority

    /// On a shared store, a waiting job no daemon has in memory (see `cancelUnheld`): its priority is set in the store,
    /// where the daemon that claims it next reads it.
    private func setPriorityUnheld(_ jobID: Int64, to priority: Int) -> String {
        let wallNow = Self.wallClock()
        guard let answer = commit("set a job's priority", { transaction -> String in
            guard let record = try transaction.reader.job(id: jobID) else { return InterventionRequest.answer(.unknown) }
            switch Intervention.priority(record.state, to: priority) {
            case .requeue, .record:
                try transaction.setPriority(jobID: jobID, state: record.state, priority: priority, at: wallNow)
                return InterventionRequest.prioritySet
            case .refuse(let refusal):
                return InterventionRequest.answer(refusal)
            }
        }) else { return answerFromStore(jobID) }
        if answer == InterventionRequest.prioritySet {
            logger.info("priority set", metadata: ["job": "\(jobID)", "priority": "\(priority)"])
        }
        return answer
    }

    func setPriority(jobID: Int64, to priority: Int) -> String {
        guard let job = jobs[jobID] else { return claimsJobs ? setPriorityUnheld(jobID, to: priority) : answerFromStore(jobID) }
        switch Intervention.priority(job.state, to: priority) {
        case .requeue, .record:
            jobs[jobID]?.priority = priority
            // A task run held behind its task's active run has no entry yet: it is queued with this priority.
            ready.reprioritize(jobID, to: priority)
            let state = job.state
            let wallNow = Self.wallClock()
            record { try $0.setPriority(jobID: jobID, state: state, priority: priority, at: wallNow) }
            logger.info("priority set", metadata: [job.logKey: "\(job.name)", "job": "\(jobID)", "priority": "\(priority)"])
            return InterventionRequest.prioritySet
        case .refuse(let refusal):
            return InterventionRequest.answer(refusal)
        }
    }

    // MARK: handler pause

    /// Parks a job whose handler is paused (state `paused`) instead of starting it; true if it did.
    func parkIfPaused(_ job: LiveJob) -> Bool {
        // A handler's uploads wait with its files: pausing is for a backend that is down, and uploads talk to it.
        let name: String
        switch job.owner {
        case .handler(let handler), .upload(let handler): name = handler
        case .task: return false
        }
        if intervention.pausedHandlers == nil { intervention.pausedHandlers = readPausedHandlers() ?? [] }
        guard intervention.pausedHandlers?.contains(name) == true else { return false }
        park(job, handler: name)
        return true
    }

    private func park(_ job: LiveJob, handler name: String) {
        let jobID = job.id
        let from = job.state
        jobs[jobID]?.state = .paused
        intervention.parked[name, default: []].append(jobID)
        let wallNow = Self.wallClock()
        recordTransition(jobID: jobID, from: from, to: .paused, detail: "handler \(name) is paused", at: wallNow)
    }

    /// `handler pause|resume` as the store holds them: newly paused handlers' queued jobs are parked at
    /// once (so `status` says so), resumed ones' parked jobs go back on the queue.
    func refreshPausedHandlers() {
        guard let paused = readPausedHandlers() else { return }
        let before = intervention.pausedHandlers ?? []
        intervention.pausedHandlers = paused
        for name in paused.subtracting(before).sorted() {
            logger.info("handler paused: its jobs wait, running ones finish", metadata: ["handler": "\(name)"])
            for (_, job) in jobs.sorted(by: { $0.key < $1.key })
            where job.state == .queued && (job.owner == .handler(name) || job.owner == .upload(name)) {
                park(job, handler: name)
            }
        }
        for name in before.subtracting(paused).sorted() {
            logger.info("handler resumed", metadata: ["handler": "\(name)"])
            releaseParked(handler: name, detail: "handler \(name) resumed")
            // On a shared store its jobs that other daemons registered wait queued, unclaimed while it was paused
            // (`claimNext` passes them by): they are claimable now.
            if claimsJobs { foreignWorkPending = true }
        }
    }

    /// The jobs parked for a handler go back on the queue.
    func releaseParked(handler name: String, detail: String) {
        let wallNow = Self.wallClock()
        for jobID in intervention.parked.removeValue(forKey: name) ?? [] {
            guard var job = jobs[jobID], job.state == .paused else { continue }
            job.state = .queued
            jobs[jobID] = job
            enqueue(job)
            recordTransition(jobID: jobID, from: .paused, to: .queued, detail: detail, at: wallNow)
        }
    }

    /// nil (and logged) if the store cannot be read; what is in force then stays in force.
    func readPausedHandlers() -> Set<String>? {
        do {
            return try store.read { try $0.pausedHandlers() }
        } catch {
            logger.error("cannot read paused handlers: \(error)")
            return nil
        }
    }
}

/// How `cancel` and `priority` requests and their answers are written in the store's `request` table.
enum InterventionRequest {
    static let cancelled = "cancelled"
    static let ending = "ending"
    static let prioritySet = "set"

    /// `JOB_ID VALUE`: the value (a reason or a priority) may hold spaces.
    static func target(jobID: Int64, _ value: String) -> String { "\(jobID) \(value)" }

    static func parse(_ target: String) -> (Int64, String)? {
        let parts = target.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        guard let id = parts.first.flatMap({ Int64($0) }) else { return nil }
        return (id, parts.count > 1 ? String(parts[1]) : "")
    }

    static func answer(_ refusal: Intervention.Refusal) -> String {
        switch refusal {
        case .unknown: "unknown"
        case .finished(let state): "finished \(state.rawValue)"
        case .otherDaemon(let node): "other_daemon \(node)"
        case .notWaiting(let state): "not_waiting \(state.rawValue)"
        case .outOfRange(let value): "out_of_range \(value)"
        }
    }

    /// The refusal an answer carries, if it is one.
    static func refusal(_ answer: String) -> Intervention.Refusal? {
        let parts = answer.split(separator: " ", maxSplits: 1).map(String.init)
        let value = parts.count > 1 ? parts[1] : ""
        switch parts.first {
        case "unknown": return .unknown
        case "finished": return .finished(JobState(rawValue: value) ?? .done)
        case "other_daemon": return .otherDaemon(value)
        case "not_waiting": return .notWaiting(JobState(rawValue: value) ?? .running)
        case "out_of_range": return .outOfRange(Int(value) ?? 0)
        default: return nil
        }
    }
}

extension Dispatcher {
    /// A recovered file job runs at its handler's priority as the config now says, unless
    /// `orchestrator priority` set one by hand.
    func recoveredPriority(_ job: JobRecord, handler: String) -> Int {
        job.prioritySetByHand ? job.priority : self.handler(named: handler)?.priority ?? job.priority
    }
}
