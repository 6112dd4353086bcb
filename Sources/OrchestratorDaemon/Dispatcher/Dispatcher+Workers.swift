#if canImport(Glibc)
import Glibc
#endif
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// Starting workers, reaping them, timeouts and retries.
extension Dispatcher {
    /// After SIGTERM at a timeout, how long the group has before SIGKILL.
    static let killGrace: UInt64 = 5_000
    /// Per-attempt log size cap; output beyond it is counted and dropped.
    static let logCap = 10 << 20

    func startWorkers() {
        guard !shuttingDown else { return }
        defer {
            if !running.isEmpty, hostSampling == nil {
                hostSampling = schedule(.hostSample, after: Self.hostSampleInterval)
            }
        }
        while running.count < config.limits.maxConcurrent {
            // One reading of the clock for both peek and pop: aging must not change the choice in between.
            let time = now
            guard let entry = ready.peek(at: time, isStale: { jobs[$0]?.state != .queued }), let job = jobs[entry.id] else { break }
            let candidate = estimate(of: job.owner)
            // Strict order: when the best job does not fit, nothing passes it (it would starve otherwise).
            let host = running.isEmpty ? nil : hostMonitor.sample(at: time, workers: running.values.map(\.worker.pid))
            let decision = admission.decide(
                candidate: candidate, running: runningEstimate, runningCount: running.count, host: host)
            if case .wait(let reason, let retryLater) = decision {
                noteAdmission(waiting: reason)
                if retryLater, admissionRecheck == nil {
                    admissionRecheck = schedule(.admissionRecheck, after: Self.admissionRecheckDelay)
                }
                return
            }
            _ = ready.pop(at: time, isStale: { jobs[$0]?.state != .queued })
            guard breakerAdmits(job) else { continue }
            noteAdmission(waiting: nil)
            start(job)
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
        case .handler(let index):
            let handler = config.handlers[index]
            return LoadEstimate(cpu: handler.cpuPercent ?? 0, memory: handler.memoryPercent ?? 0)
        case .task(let index):
            let task = config.tasks[index]
            return LoadEstimate(cpu: task.cpuPercent ?? 0, memory: task.memoryPercent ?? 0)
        case .upload:
            return .none
        }
    }

    /// Records why the queue waits (for `status`) when that changes.
    private func noteAdmission(waiting reason: String?) {
        guard reason != admissionWait else { return }
        admissionWait = reason
        if let reason { logger.debug("queue waits", metadata: ["reason": "\(reason)"]) }
        let wallNow = Self.wallClock()
        record { try $0.setDaemonNote("admission", reason, at: wallNow) }
    }

    /// What a job runs, from its handler or task.
    struct RunSpec {
        let command: CommandTemplate
        let timeout: Duration
        let backoff: Duration
    }

    func spec(of owner: JobOwner) -> RunSpec {
        switch owner {
        case .handler(let index):
            let handler = config.handlers[index]
            return RunSpec(command: handler.command, timeout: handler.timeout, backoff: handler.backoff)
        case .task(let index):
            let task = config.tasks[index]
            return RunSpec(command: task.command, timeout: task.timeout, backoff: task.backoff)
        case .upload(let index):
            let handler = config.handlers[index]
            return RunSpec(command: handler.upload ?? handler.command, timeout: handler.timeout, backoff: handler.backoff)
        }
    }

    private func start(_ job: LiveJob) {
        let spec = spec(of: job.owner)
        let number = job.attempts + 1
        let logPath = nextLogPath(jobID: job.id, attempt: number)
        var environment = workerEnvironment
        let values: PlaceholderValues
        switch job.owner {
        case .handler(let index):
            let file = layout.processing.appending(job.name)
            values = PlaceholderValues(file: file.bytes, name: job.name, job: job.id, attempt: number)
            environment.append(Array("ORCH_FILE=".utf8) + file.bytes)
            environment.append(Array("ORCH_NAME=".utf8) + job.name.bytes)
            environment.append(Array("ORCH_HANDLER=\(config.handlers[index].name)".utf8))
        case .task(let index):
            values = PlaceholderValues(file: [], name: RelativePath([]), job: job.id, attempt: number)
            environment.append(Array("ORCH_TASK=\(config.tasks[index].name)".utf8))
        case .upload(let index):
            // {file} is the file's path in Done.
            let file = layout.done.appending(job.name)
            values = PlaceholderValues(file: file.bytes, name: job.name, job: job.id, attempt: number)
            environment.append(Array("ORCH_FILE=".utf8) + file.bytes)
            environment.append(Array("ORCH_NAME=".utf8) + job.name.bytes)
            environment.append(Array("ORCH_HANDLER=\(config.handlers[index].name)".utf8))
        }
        environment.append(Array("ORCH_JOB_ID=\(job.id)".utf8))
        environment.append(Array("ORCH_ATTEMPT=\(number)".utf8))
        let request = SpawnRequest(
            arguments: spec.command.expand(values), environment: environment,
            workingDirectory: Array(config.baseDirectory.utf8), logPath: logPath.bytes, logCap: Self.logCap)
        let jobID = job.id
        let wallNow = Self.wallClock()
        jobs[jobID]?.state = .running
        do {
            let worker = try supervisor.spawn(request) { [unowned self] exit in
                post(.workerExited(jobID: jobID, exit))
            }
            var attempt = RunningAttempt(
                jobID: jobID, number: number, worker: worker, estimate: estimate(of: job.owner), startedAt: now)
            runningEstimate = runningEstimate + attempt.estimate
            attempt.timeoutTimer = schedule(.timeout(jobID: jobID), after: ticks(spec.timeout))
            taskStarted(job, at: wallNow)
            running[jobID] = attempt
            logger.debug(
                "started", metadata: ["file": "\(job.name)", "job": "\(jobID)", "attempt": "\(number)", "pid": "\(worker.pid)"])
            record { transaction in
                let attemptID = try transaction.startAttempt(jobID: jobID, number: number, logPath: logPath.bytes, at: wallNow)
                try transaction.setAttemptProcess(attemptID: attemptID, pid: worker.pid, startTime: worker.startTime)
                try transaction.setState(jobID: jobID, from: .queued, to: .running, detail: "attempt \(number)", at: wallNow)
            }
        } catch {
            // The command could not start at all (missing, not executable): a failed attempt like any other.
            let reason = error.description
            logger.error("cannot start worker", metadata: [job.logKey: "\(job.name)", "job": "\(jobID)", "error": "\(reason)"])
            taskStarted(job, at: wallNow)
            record { transaction in
                let attemptID = try transaction.startAttempt(jobID: jobID, number: number, logPath: logPath.bytes, at: wallNow)
                try transaction.finishAttempt(
                    attemptID: attemptID, AttemptResult(outcome: .failed, exitCode: 127, reason: reason), at: wallNow)
            }
            attemptFailed(jobID: jobID, reason: reason, previous: .queued, couldNotStart: true)
        }
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
        runningEstimate = running.isEmpty ? .none : runningEstimate - attempt.estimate
        if let timer = attempt.timeoutTimer { wheel.cancel(timer) }
        if let timer = attempt.killTimer { wheel.cancel(timer) }
        let wallNow = Self.wallClock()
        let result = Self.describe(exit, attempt: attempt, timeout: spec(of: job.owner).timeout)
        let number = attempt.number
        // A job has one running attempt at a time, so its row is found by the job: the row's insert may
        // still be pending in this same batch.
        record { try $0.finishRunningAttempt(jobID: jobID, result, at: wallNow) }
        switch result.outcome {
        case .interrupted:
            // Cut short by shutdown: the attempt does not count and the file stays claimed for the next start.
            jobs[jobID]?.state = .queued
            breakerNoVerdict(job.owner)
            record { try $0.setState(jobID: jobID, from: .running, to: .queued, detail: "interrupted by shutdown", at: wallNow) }
            logger.info("interrupted; will run again at next start", metadata: [job.logKey: "\(job.name)", "job": "\(jobID)"])
        case .succeeded:
            jobs[jobID] = nil  // Its name stays taken in `jobsByName` until its file has moved out.
            record { try $0.setState(jobID: jobID, from: .running, to: .done, attempts: number, at: wallNow) }
            breakerSucceeded(job.owner)
            noteBatchOutcome(job, succeeded: true, finished: true, reason: nil)
            switch job.owner {
            case .task: taskFinished(job, succeeded: true, couldNotStart: false, reason: nil)
            case .upload: break
            case .handler(let index):
                processedCount += 1
                finishedJobs.append(FinishedJob(jobID: jobID, name: job.name, succeeded: true, handler: index))
            }
            // One line per file at info level: a burst of thousands stays readable and cheap.
            logger.info(
                "done", metadata: [
                    job.logKey: "\(job.name)", "job": "\(jobID)", "attempt": "\(number)",
                    "ms": "\((now - attempt.startedAt))",
                ])
        case .failed, .running:
            attemptFailed(jobID: jobID, reason: result.reason ?? "failed", previous: .running)
        }
    }

    /// Retries after backoff while attempts remain, else the file goes to Failed/.
    func attemptFailed(jobID: Int64, reason: String, previous: JobState, couldNotStart: Bool = false) {
        guard var job = jobs[jobID] else { return }
        job.attempts += 1
        breakerFailed(job.owner)
        let wallNow = Self.wallClock()
        let attempts = job.attempts
        if job.attempts < job.maxAttempts {
            var generator = SystemRandomNumberGenerator()
            let delay = BackoffPolicy(base: spec(of: job.owner).backoff).delay(afterFailedAttempt: job.attempts, using: &generator)
            job.state = .retryWait
            job.retryTimer = schedule(.retry(jobID: jobID), after: ticks(delay))
            jobs[jobID] = job
            noteBatchOutcome(job, succeeded: false, finished: false, reason: reason)
            let notBefore = wallNow + Double(delay.wholeMilliseconds) / 1000
            record {
                try $0.setState(
                    jobID: jobID, from: previous, to: .retryWait, attempts: attempts, notBefore: notBefore, reason: reason,
                    at: wallNow)
            }
            logger.warning(
                "attempt failed; retrying", metadata: [
                    job.logKey: "\(job.name)", "job": "\(jobID)", "attempt": "\(attempts)", "reason": "\(reason)",
                    "retry_in": "\(delay)",
                ])
        } else {
            jobs[jobID] = nil  // Its name stays taken in `jobsByName` until its file has moved out.
            noteBatchOutcome(job, succeeded: false, finished: true, reason: reason)
            record { try $0.setState(jobID: jobID, from: previous, to: .failed, attempts: attempts, reason: reason, at: wallNow) }
            switch job.owner {
            case .task: taskFinished(job, succeeded: false, couldNotStart: couldNotStart, reason: reason)
            case .upload: break
            case .handler:
                processedCount += 1
                finishedJobs.append(FinishedJob(jobID: jobID, name: job.name, succeeded: false))
            }
            logger.error(
                "failed for good", metadata: [job.logKey: "\(job.name)", "job": "\(jobID)", "attempts": "\(attempts)", "reason": "\(reason)"])
        }
    }

    func retryDue(_ jobID: Int64) {
        guard var job = jobs[jobID], job.state == .retryWait else { return }
        job.state = .queued
        job.retryTimer = nil
        jobs[jobID] = job
        enqueue(job)
        let wallNow = Self.wallClock()
        record { try $0.setState(jobID: jobID, from: .retryWait, to: .queued, detail: "backoff elapsed", at: wallNow) }
    }

    func timeoutReached(_ jobID: Int64) {
        guard var attempt = running[jobID] else { return }
        attempt.timeoutTimer = nil
        attempt.timedOut = true
        attempt.killTimer = schedule(.killAfterGrace(jobID: jobID), after: Self.killGrace)
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

    static func describe(_ exit: WorkerExit, attempt: RunningAttempt, timeout: Duration) -> AttemptResult {
        let userCPU = Double(exit.userCPU.wholeMilliseconds) / 1000
        let systemCPU = Double(exit.systemCPU.wholeMilliseconds) / 1000
        var result = AttemptResult(
            outcome: .failed, timedOut: attempt.timedOut, userCPU: userCPU, systemCPU: systemCPU,
            maxRSSKiB: exit.maxRSSKiB, stderrTail: exit.stderrTail)
        switch exit.termination {
        case .exited(let code):
            result.exitCode = code
            result.reason = "exit status \(code)"
            if code == 0 { result.outcome = .succeeded }
        case .signaled(let number):
            result.signal = number
            result.reason = "killed by signal \(number) (\(signalName(number)))"
        }
        if attempt.interrupted {
            result.outcome = .interrupted
            result.reason = "interrupted by shutdown"
        } else if attempt.timedOut {
            result.outcome = .failed
            result.reason = "timed out after \(timeout); " + (result.reason ?? "")
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
