import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorCron
import OrchestratorPlatform
import OrchestratorSchedule
import OrchestratorStore

/// `tasks`, `trigger` and `task enable|disable`: the store is the channel to a running daemon, which a
/// file dropped into `state/wake/` wakes after the commit.
public enum TaskCommands {
    // MARK: trigger

    /// Records the event durably, then wakes a running daemon. Exits 0 whether or not a task listens.
    public static func trigger(config: Config, event: String) throws(CommandError) -> String {
        guard isValidEventName(event) else { throw invalidEventName(event) }
        let store = try Reports.openStore(config)
        let id: Int64
        do {
            id = try store.write { try $0.insertEvent(name: event, source: "trigger", at: Date().timeIntervalSince1970) }
        } catch {
            throw CommandError(.failure, "error: cannot record the event: \(error)")
        }
        wakeDaemons(config, store: store, reason: "event-\(id)")
        let listening = config.tasks.filter { if case .event(event) = $0.trigger { true } else { false } }
        // A disabled task does not run on its trigger: the event passes it by (it is not kept for the task's enabling).
        let overrides = (try? store.read { try $0.taskEnabledOverrides() }) ?? [:]
        let disabled = listening.filter { !(overrides[$0.name] ?? $0.enabled) }.map(\.name)
        let listeners = listening.map(\.name).filter { !disabled.contains($0) }
        let daemon = StateOwner.current(config).daemonPID != nil
        var line = "event \(event) recorded (id \(id))"
        // The running daemon decides with the config it runs with: this file may have been edited since.
        if daemon, let node = try? store.read({ try $0.node(named: config.node.name) }), node.configHash != config.sharedHash {
            return line + "; the running daemon's config is not this file's (\(config.file) was edited since the daemon "
                + "started or reloaded; reload to apply it): the tasks of the daemon's config that listen to it run"
        }
        if listening.isEmpty {
            line += "; no task listens to it"
        } else if !listeners.isEmpty {
            let who = daemon ? "the daemon queues" : otherDaemonsRun(config, store: store) ? "a running daemon of the store queues" : "the next daemon start queues"
            line += "; " + who + ": " + listeners.joined(separator: ", ")
        }
        if !disabled.isEmpty {
            line += "; disabled, so not run for it: " + disabled.joined(separator: ", ")
        }
        return line
    }

    static func isValidEventName(_ name: String) -> Bool { EventName.isValid(name) }

    /// An invalid name as the error shows it: its start, escaped (it may be long, or hold control characters).
    static func invalidEventName(_ name: String) -> CommandError {
        let shown = ConfigProblem.shortened(name)
        return CommandError(.usage, "error: event name \"\(Reports.terminalSafe(shown))\" must be \(EventName.rule)")
    }

    /// `wakeDaemon`, and on a shared store every running daemon of it (`Store.announceRequests`): a command given
    /// the config of a daemon that is not running is heard by the others. Not for a request that this config's own
    /// daemon must answer (cancel, priority): another daemon could take it first.
    static func wakeDaemons(_ config: Config, store: any Store, reason: String) {
        wakeDaemon(config, reason: reason)
        // What it announces is already committed: an announcement lost with the server is read by every daemon
        // when its listening session is renewed (`WakeupBatch.mustReadRequests`), or at its next wake-up.
        if config.store.url != nil { try? store.announceRequests() }
    }

    /// Whether daemons of this config's shared store other than its own are running (by their heartbeats).
    static func otherDaemonsRun(_ config: Config, store: any Store) -> Bool {
        guard config.store.url != nil, let nodes = try? store.read({ try $0.nodes() }) else { return false }
        return nodes.contains {
            $0.name != config.node.name && NodeLiveness.condition(of: $0, shared: true, stateDirDaemonRuns: false) == .running
        }
    }

    /// Creates a file in the wake folder; the daemon's inotify watch on it reads the store. Without a daemon
    /// the file is removed again at the next start.
    static func wakeDaemon(_ config: Config, reason: String) {
        let directory = PathBytes(config.paths.state).appending(RelativePath("wake"))
        try? FileSystem.createDirectories(directory)
        let name = RelativePath(Array("\(reason)-\(getpid())".utf8))
        try? FileSystem.writeFile(directory.appending(name), [], exclusive: false)
    }

    // MARK: enable / disable

    public static func setEnabled(config: Config, task: String, enabled: Bool) throws(CommandError) -> String {
        guard config.tasks.contains(where: { $0.name == task }) else {
            throw CommandError(.badInput, "error: no task named \"\(task)\" in \(config.file)").about(.unknown)
        }
        let store = try Reports.openStore(config)
        do {
            try store.write { try $0.setTaskEnabled(task: task, enabled) }
        } catch {
            throw CommandError(.failure, "error: cannot record the change: \(error)")
        }
        wakeDaemons(config, store: store, reason: enabled ? "enable" : "disable")
        return "task \(task) \(enabled ? "enabled" : "disabled")"
    }

    // MARK: tasks

    public static func list(config: Config, json: Bool, now: Date = Date()) throws(CommandError) -> String {
        let store = try Reports.openStoreIfPresent(config)
        let rows = try rows(config: config, store: store, now: now)
        let handlers = try handlerRows(config: config, store: store)
        if json { return try Reports.render(["tasks": rows, "handlers": handlers]) }
        var lines: [String] = []
        if rows.isEmpty {
            lines.append("no tasks configured")
        } else {
            lines += Reports.table(
                ["TASK", "TRIGGER", "NEXT", "RUNS", "FAILED", "AVG", "P95", "LAST"],
                rows.map { row in
                    var last = (row["last_result"] as? String).map { "\($0) \(row["last_finished"] as? String ?? "")" } ?? "never ran"
                    if let names = row["waiting_for"] as? [String] { last += "; waiting for " + names.joined(separator: ", ") }
                    if row["enabled"] as? Bool == false { last += " (disabled)" }
                    return [
                        row["name"] as? String ?? "", row["trigger"] as? String ?? "", row["next_fire"] as? String ?? "-",
                        String(row["executions"] as? Int ?? 0), String(row["failures"] as? Int ?? 0),
                        (row["average_seconds"] as? Double).map(Reports.formatSeconds) ?? "-",
                        (row["p95_seconds"] as? Double).map(Reports.formatSeconds) ?? "-", last,
                    ]
                })
        }
        if !handlers.isEmpty {
            lines.append("")
            lines += Reports.table(
                ["HANDLER", "ATTEMPTS", "FAILED", "AVG", "P95"],
                handlers.map { row in
                    [
                        row["name"] as? String ?? "", String(row["executions"] as? Int ?? 0), String(row["failures"] as? Int ?? 0),
                        (row["average_seconds"] as? Double).map(Reports.formatSeconds) ?? "-",
                        (row["p95_seconds"] as? Double).map(Reports.formatSeconds) ?? "-",
                    ]
                })
        }
        return lines.joined(separator: "\n")
    }

    /// Attempts, failures and durations of each handler's file jobs.
    static func handlerRows(config: Config, store: (any Store)?) throws(CommandError) -> [[String: Any]] {
        var rows: [[String: Any]] = []
        do {
            for handler in config.handlers {
                let stats = try store?.read { try $0.statistics(kind: .file, owner: handler.name) } ?? RunStatistics(executions: 0, failures: 0)
                var row: [String: Any] = ["name": handler.name, "executions": stats.executions, "failures": stats.failures]
                if let average = stats.averageSeconds { row["average_seconds"] = average }
                if let p95 = stats.p95Seconds { row["p95_seconds"] = p95 }
                rows.append(row)
            }
        } catch {
            throw CommandError(.failure, "error: cannot read the state database: \(error)")
        }
        return rows
    }

    /// One row per configured task: trigger, next fire, last result, what it waits for, statistics.
    static func rows(config: Config, store: (any Store)?, now: Date = Date()) throws(CommandError) -> [[String: Any]] {
        var overrides: [String: Bool] = [:]
        var latest: [String: TaskRunRecord] = [:]
        var waits: [String: [String]] = [:]
        var statistics: [String: RunStatistics] = [:]
        var lastSlots: [String: Int64] = [:]
        var daemonZone: String?
        let daemonRuns = StateOwner.current(config).daemonPID != nil
        do {
            try store?.read { reader in
                // The running daemon's schedules are in its zone, which this shell's TZ may not be.
                if daemonRuns { daemonZone = try reader.nodeNote(node: config.node.name, Dispatcher.hostZoneNote) }
                overrides = try reader.taskEnabledOverrides()
                latest = try reader.latestTaskRuns()
                waits = try reader.taskWaits()
                for task in config.tasks {
                    statistics[task.name] = try reader.statistics(kind: .task, owner: task.name)
                    lastSlots[task.name] = try reader.lastScheduledSlot(task: task.name)
                }
            }
        } catch {
            throw CommandError(.failure, "error: cannot read the state database: \(error)")
        }
        let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        let zone = daemonZone.flatMap { try? loadZone($0) } ?? hostZone()
        var rows: [[String: Any]] = []
        for task in config.tasks {
            let enabled = overrides[task.name] ?? task.enabled
            var row: [String: Any] = [
                "name": task.name, "trigger": describe(task.trigger), "enabled": enabled,
                "priority": task.priority, "after": task.after,
            ]
            // A disabled task fires at no time: no next fire is shown for it.
            if enabled, let schedule = try? SlotSchedule(trigger: task.trigger, hostZone: zone), !schedule.isReboot,
                let next = schedule.nextSlot(after: max(nowMs, lastSlots[task.name] ?? nowMs))
            {
                row["next_fire"] = CronTimestamp.format(next / 1000, in: zone)
            }
            if let run = latest[task.name] {
                row["last_result"] = run.state == .done ? "succeeded" : "failed"
                // As `next_fire`: ISO 8601 with the offset, in the zone the task's schedule is read in.
                row["last_finished"] = CronTimestamp.format(Int64(run.finishedAt.rounded(.down)), in: zone)
                if let reason = run.reason, run.state != .done { row["last_reason"] = reason }
            }
            if let names = waits[task.name] { row["waiting_for"] = names }
            let stats = statistics[task.name] ?? RunStatistics(executions: 0, failures: 0)
            row["executions"] = stats.executions
            row["failures"] = stats.failures
            if let average = stats.averageSeconds { row["average_seconds"] = average }
            if let p95 = stats.p95Seconds { row["p95_seconds"] = p95 }
            rows.append(row)
        }
        return rows
    }

    static func describe(_ trigger: Trigger) -> String {
        switch trigger {
        case .every(let interval): "every \(interval.configText)"
        case .cron(let expression, let zone): "cron \(expression)" + (zone.map { " \($0)" } ?? "")
        case .event(let name): "on \(name)"
        }
    }
}
