import OrchestratorConfig
import OrchestratorCore
import OrchestratorCron
import OrchestratorStore

/// SIGHUP (or `POST /api/v1/reload`): the config file is read again. A valid config applies to work that
/// starts after it; running attempts finish under the config they started with. An invalid one, or one
/// that moves `[paths]` or `[http] listen`, is refused and the config in force stays.
extension Dispatcher {
    /// `cause`: what asked for it, for the log.
    @discardableResult
    func reload(cause: String = "SIGHUP") -> ReloadOutcome {
        guard !phase.isStopping else {
            logger.info("\(cause) while stopping: nothing to reload")
            return .stopping
        }
        logger.info("\(cause): reloading the config", metadata: ["config": "\(config.file)"])
        var fresh: Config
        do {
            fresh = try Config.load(file: config.file)
        } catch {
            return refuseReload(Self.withCommandProblems(error.problems, file: config.file))
        }
        // A store given by `--store` or the environment is not the file's to change.
        if config.store.origin != .configFile { fresh.store = config.store }
        // What `watch` checks before it starts, a reload checks too: a command that does not resolve is refused.
        let commandProblems = fresh.commandProblems(searchPath: Config.processSearchPath())
        guard commandProblems.isEmpty else {
            return refuseReload(commandProblems)
        }
        if let (problem, key) = ReloadPlan.refusal(from: config, to: fresh) {
            // A section the new file no longer has has no line: then the file alone.
            let lineNumber = fresh.line(ofKey: key)
            let line = "\(fresh.file)\(lineNumber > 0 ? ":\(lineNumber)" : ""): error: \(problem); restart to apply"
            logger.error("\(line). The config in force is unchanged")
            return .refused([line])
        }
        apply(fresh)
        return .applied(loadedAt: LineLogHandler.timestamp(at: configLoadedAt))
    }

    /// A refused file's text problems and, as `config check` lists them, its commands that cannot start (a reload
    /// said only the first kind while the file had both).
    static func withCommandProblems(_ textProblems: [ConfigProblem], file: String) -> [ConfigProblem] {
        guard let (checking, _, _) = try? Config.loadForChecking(file: file) else { return textProblems }
        return ConfigProblem.merged(text: textProblems, machine: checking.commandProblems(searchPath: Config.processSearchPath()))
    }

    private func refuseReload(_ problems: [ConfigProblem]) -> ReloadOutcome {
        for problem in problems { logger.error("\(problem)") }
        logger.error("config reload refused; the config loaded at \(LineLogHandler.timestamp(at: configLoadedAt)) stays in force")
        return .refused(problems.map(\.description))
    }

    private func apply(_ fresh: Config) {
        let plan = ReloadPlan(from: config, to: fresh)
        config = fresh
        configLoadedAt = Self.wallClock()
        admission = Self.admission(fresh)
        ready.agingStep = Self.agingStep(fresh)
        settling.settle = UInt64(max(0, fresh.inbox.settle.wholeMilliseconds))
        eventListeners = Self.eventListeners(fresh)
        reloadBreakers(fresh)
        reloadTasks(plan)
        // Jobs not yet started whose handler or task is gone are matched again or end now; running ones
        // finish first and meet the same decision if they need another attempt.
        for (jobID, job) in jobs where running[jobID] == nil && undecided[jobID] == nil && spec(of: job.owner) == nil {
            if case .handler = job.owner, let handler = fresh.handler(for: job.name) {
                // Where it waits (queued, backing off, behind a breaker) it keeps waiting, under the new handler.
                rematch(job, to: handler)
                continue
            }
            if let timer = job.retryTimer { wheel.cancel(timer) }
            ownerRemoved(job)
        }
        // Jobs waiting to start or to retry run under the attempt budget in force: recorded now, so that `show` says it
        // at once; one lowered to what it has used already ends now rather than when its backoff is over.
        for (jobID, job) in jobs where running[jobID] == nil && undecided[jobID] == nil && (job.state == .queued || job.state == .retryWait) {
            switch StartReview.decide(.init(
                ownerExists: true, fileInPlace: nil, attempts: job.attempts, recordedBudget: job.maxAttempts, budget: maxAttempts(of: job)))
            {
            case .run(_, let budget?):
                recordRunBudget(budget, of: jobID)
            case .fail(let reason, let couldNotStart, let budget):
                if let budget { recordRunBudget(budget, of: jobID) }
                if let timer = job.retryTimer { wheel.cancel(timer) }
                failForGood(job, from: job.state, attempts: job.attempts, reason: reason, couldNotStart: couldNotStart, at: Self.wallClock())
            case .run(_, nil), .ownerRemoved:
                break
            }
        }
        // Jobs parked for a paused handler the reload removed would wait for a resume that cannot come (`handler
        // resume` knows only the config's handlers): back on the queue, under the handler that took them above
        // (parked again at their start if that one is paused too).
        for name in intervention.parked.keys.sorted() where fresh.handlers.allSatisfy({ $0.name != name }) {
            releaseParked(handler: name, detail: "handler \(name) was removed by a reload")
        }
        for sweep in [TimerPurpose.ingestSweep, .retrySweep, .uploadSweep, .watchdogSweep, .pruneSweep] { armSweep(sweep) }
        if plan.inboxChanged {
            if plan.recursiveChanged {
                watcher?.cancel()
                watcher = nil
                startWatching()
            }
            // Files the old rules left alone may be input now.
            startScan(reason: "config reloaded")
        }
        noteConfigLoaded()
        onConfigApplied?(fresh)
        logger.info(
            "config reloaded", metadata: [
                "handlers": "\(fresh.handlers.count)", "tasks": "\(fresh.tasks.count)",
                "max_concurrent": "\(fresh.limits.maxConcurrent)", "running": "\(running.count)",
            ])
    }

    /// Breakers whose settings did not change keep their state; the others start closed, and jobs parked
    /// behind a breaker that is gone or new go back to the queue.
    private func reloadBreakers(_ fresh: Config) {
        var next = Self.makeBreakers(fresh)
        var kept: Set<JobOwner> = []
        for (owner, breaker) in breakers {
            guard let replacement = next[owner], replacement.threshold == breaker.threshold,
                replacement.cooldown == breaker.cooldown
            else { continue }
            next[owner] = breaker
            kept.insert(owner)
        }
        breakers = next
        for owner in Array(breakerParked.keys) where !kept.contains(owner) {
            if let timer = breakerTimers.removeValue(forKey: owner) { wheel.cancel(timer) }
            release(owner, count: Int.max)
        }
    }

    private func reloadTasks(_ plan: ReloadPlan) {
        let nowMs = Self.wallMilliseconds()
        for name in plan.removedTasks {
            guard let runtime = taskRuntimes.removeValue(forKey: name) else { continue }
            if let timer = runtime.timer { wheel.cancel(timer) }
            if let event = runtime.pending?.eventID { settleEvent(event) }
            if runtime.waitRecorded { setWaiting(name, nil) }
            logger.info("task removed by reload", metadata: ["task": "\(name)"])
        }
        // Unreadable: new and changed tasks wait for the next reload.
        guard let overrides = readEnabledOverrides() else { return }
        for task in config.tasks where plan.addedTasks.contains(task.name) || plan.rescheduledTasks.contains(task.name) {
            var runtime: TaskRuntime
            do {
                runtime = try makeRuntime(task, enabledOverride: overrides[task.name])
            } catch {
                logger.error("task \(task.name): cannot read its state; it will not run until the next reload: \(error)")
                continue
            }
            if let old = taskRuntimes[task.name] {
                if let timer = old.timer { wheel.cancel(timer) }
                runtime.runs = old.runs
                runtime.pending = old.pending
                runtime.waitRecorded = old.waitRecorded
            } else {
                // Added back after a reload removed it: a run that outlived the removal still runs, and holds the
                // next ones back as before (a task never overlaps itself). Forgotten, a second run started beside it.
                for id in running.keys.sorted() where jobs[id]?.owner == .task(task.name) { _ = runtime.runs.add(id) }
            }
            taskRuntimes[task.name] = runtime
            // A task added or rescheduled by a reload has missed nothing: its schedule starts now.
            startSchedule(task, catchUp: false, now: nowMs)
            logger.info(plan.addedTasks.contains(task.name) ? "task added by reload" : "task rescheduled by reload", metadata: ["task": "\(task.name)"])
        }
        for task in config.tasks {
            taskRuntimes[task.name]?.enabled = overrides[task.name] ?? task.enabled
        }
        reviewWaitingRuns()
    }

    func noteConfigLoaded() {
        for warning in config.warnings() { logger.warning("\(warning)") }
        if config.tasks.contains(where: { if case .cron(_, nil) = $0.trigger { true } else { false } }), let problem = hostZoneProblem() {
            logger.warning("\(problem)")
        }
        let loadedAt = configLoadedAt
        let (text, node) = (LineLogHandler.timestamp(at: loadedAt), config.node.name)
        // The zone its schedules without `tz` use, for `tasks` run from a shell whose TZ differs (a unit's
        // Environment=TZ=...): it showed the next fire in its own zone.
        let zone = hostZone().identifier
        record {
            try $0.setNodeNote(node: node, Self.configLoadedNote, text, at: loadedAt)
            try $0.setNodeNote(node: node, Self.hostZoneNote, zone, at: loadedAt)
        }
        registerNode()
    }

    static let configLoadedNote = "config.loaded_at"
    static let hostZoneNote = "host.zone"
}

/// What a reload did: applied (with the load time `status` shows), refused with every problem as
/// `FILE:LINE: error: WHAT`, or not tried because the daemon is stopping.
public enum ReloadOutcome: Sendable, Equatable {
    case applied(loadedAt: String)
    case refused([String])
    case stopping
}

/// What a reload changes, decided from the two configs alone.
struct ReloadPlan: Equatable {
    var addedTasks: Set<String> = []
    var removedTasks: Set<String> = []
    /// Kept tasks whose trigger changed: their timers are armed again.
    var rescheduledTasks: Set<String> = []
    var inboxChanged = false
    var recursiveChanged = false

    init(from old: Config, to new: Config) {
        let oldTasks = Dictionary(old.tasks.map { ($0.name, $0.trigger) }, uniquingKeysWith: { first, _ in first })
        let newTasks = Dictionary(new.tasks.map { ($0.name, $0.trigger) }, uniquingKeysWith: { first, _ in first })
        addedTasks = Set(newTasks.keys).subtracting(oldTasks.keys)
        removedTasks = Set(oldTasks.keys).subtracting(newTasks.keys)
        rescheduledTasks = Set(newTasks.compactMap { name, trigger in
            oldTasks[name].map { $0 != trigger ? name : nil } ?? nil
        })
        inboxChanged = old.inbox != new.inbox
        recursiveChanged = old.inbox.recursive != new.inbox.recursive
    }

    /// Why a valid config cannot be applied without a restart, if it cannot, and the key that says so.
    static func refusal(from old: Config, to new: Config) -> (String, key: String)? {
        if old.paths != new.paths { return ("[paths] changed (\(Self.changedPaths(old.paths, new.paths).joined(separator: ", ")))", "paths") }
        // The server is bound once, at start; its token is read per request, so `token_file` (or its content) may change.
        if old.http?.listen != new.http?.listen {
            if old.http == nil { return ("[http] added", "http") }
            return new.http == nil ? ("[http] removed", "http") : ("[http] listen changed", "http.listen")
        }
        // The dispatcher holds its store from the start.
        if old.store != new.store { return ("[store] changed", "store") }
        // The node's name owns its claims in the store, and its roles decide which loops it started.
        if old.node != new.node { return ("[node] changed", "node") }
        // Every waiting file would fail for good ("no handler"): more likely a file caught empty or cut short mid-write
        // (`cat new > orchestrator.toml`) than meant. A restart applies it, if meant.
        if !old.handlers.isEmpty, new.handlers.isEmpty {
            return ("the new config has no [[handler]] (an empty or cut-short file?), and every waiting file would fail", "handler")
        }
        return nil
    }

    private static func changedPaths(_ old: Paths, _ new: Paths) -> [String] {
        var changed: [String] = []
        if old.inbox != new.inbox { changed.append("inbox") }
        if old.done != new.done { changed.append("done") }
        if old.failed != new.failed { changed.append("failed") }
        if old.state != new.state { changed.append("state") }
        if old.processing != new.processing { changed.append("processing") }
        return changed
    }
}
