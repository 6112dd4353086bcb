#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// `sweep` and `task run` when no daemon runs: the dispatcher in a one-shot mode that does its work,
/// prints a summary and exits. With a daemon running, the same commands ask it through the store.
public enum Batch {
    public enum SweepMode: String, CaseIterable, Sendable {
        case all, retry, ingest, upload, watchdog, prune
    }

    // MARK: sweep

    public static func sweep(config: Config, mode: SweepMode, dryRun: Bool, logFormat: LogFormat) throws(CommandError) -> (ExitStatus, [String]) {
        let modes: [SweepMode] = mode == .all ? [.retry, .ingest, .upload, .watchdog, .prune] : [mode]
        try refuseHostProblems(config, commands: false)
        try Daemon.prepareFolders(config)
        var lines: [String] = []
        var status = ExitStatus.ok
        // Each sweep holds its own lock while it runs; one already running elsewhere is skipped.
        var locks: [InstanceLock] = []
        var active: [SweepMode] = []
        for mode in modes {
            switch try acquire(config.paths.state + "/sweep-\(mode.rawValue).lock") {
            case .acquired(let lock):
                locks.append(lock)
                active.append(mode)
            case .heldBy(let pid):
                lines.append("\(mode.rawValue): skipped: already running\(pid.map { " (pid \($0))" } ?? "")")
            }
        }
        defer { withExtendedLifetime(locks) {} }

        let processing = active.filter { $0 == .retry || $0 == .ingest || $0 == .upload }
        if !processing.isEmpty {
            if dryRun {
                lines += try dryRunLines(config: config, modes: processing)
            } else if let pid = StateOwner.current(config).daemonPID {
                try request(config, kind: "sweep", targets: processing.map(\.rawValue))
                lines += processing.map { "\($0.rawValue): the daemon (pid \(pid)) runs it now; its log and `status` show the results" }
            } else {
                let work = BatchWork(
                    ingest: processing.contains(.ingest), retry: processing.contains(.retry), upload: processing.contains(.upload))
                let (ranStatus, report) = try run(config: config, work: work, role: "sweep", logFormat: logFormat)
                if ranStatus == .unavailable {
                    // A daemon started meanwhile: it does the sweep.
                    try request(config, kind: "sweep", targets: processing.map(\.rawValue))
                    lines += processing.map { "\($0.rawValue): a daemon has just started; it runs it now" }
                } else {
                    if ranStatus != .ok { status = .failure }
                    let fileModes = processing.filter { $0 != .upload }
                    if !fileModes.isEmpty {
                        lines.append(
                            "\(fileModes.map(\.rawValue).joined(separator: "+")): \(report.filesDone) done, \(report.filesFailed) failed, "
                                + "\(report.retryingLater) failed and will retry later")
                    }
                    if processing.contains(.upload) || report.uploadsDone + report.uploadsFailed + report.uploadsRetryingLater > 0 {
                        lines.append(
                            "upload: \(report.uploadsDone) ok, \(report.uploadsFailed) failed, \(report.uploadsRetryingLater) failed and will retry later")
                    }
                }
            }
        }
        if active.contains(.watchdog) {
            let (health, healthLines) = try watchdog(config: config)
            if health != .ok { status = .failure }
            lines += healthLines
        }
        if active.contains(.prune) {
            // Done here, daemon or not: deletes in small transactions do not get in a running daemon's way.
            lines.append(try prune(config: config, dryRun: dryRun))
        }
        return (status, lines)
    }

    private static func prune(config: Config, dryRun: Bool) throws(CommandError) -> String {
        let store = try Reports.openStore(config)
        let pruner = Pruner(store: store, logs: PathBytes(config.paths.state + "/logs"), retention: config.retention, node: config.node.name)
        do {
            let now = Date().timeIntervalSince1970
            if dryRun { return "prune: would have " + (try pruner.dryRun(now: now)).summary.prefix { $0 != ";" } }
            return "prune: " + (try pruner.run(now: now)).summary
        } catch {
            throw CommandError(.failure, "error: prune: \(error)")
        }
    }

    private static func dryRunLines(config: Config, modes: [SweepMode]) throws(CommandError) -> [String] {
        var lines: [String] = []
        if modes.contains(.ingest) {
            var count = 0
            let cursor = DirectoryCursor(root: PathBytes(config.paths.inbox), recursive: config.inbox.recursive) {
                config.skipsFolder($0)
            }
            while case let slice = cursor.next(limit: 4096), !slice.isEmpty {
                for file in slice where config.isInput(file.path) {
                    count += 1
                    let handler = config.handler(for: file.path)?.name
                    lines.append("ingest: would run \(Reports.printable(file.path)) with " + (handler.map { "handler \($0)" } ?? "no handler (to Failed)"))
                }
            }
            lines.append("ingest: \(count) files would run")
        }
        if modes.contains(.upload) {
            let now = Date().timeIntervalSince1970
            var due: [JobRecord] = []
            if let store = try Reports.openStoreIfPresent(config) {
                do {
                    due = try store.read { try $0.jobs(inStates: [.queued, .retryWait]) }
                        .filter { $0.kind == .upload && ($0.notBefore ?? 0) <= now }
                } catch {
                    throw CommandError(.failure, "error: cannot read the state database: \(error)")
                }
            }
            for job in due { lines.append("upload: would upload Done/\(Reports.printable(job.name)) (attempt \(job.attempts + 1))") }
            lines.append("upload: \(due.count) uploads are due")
        }
        if modes.contains(.retry) {
            let now = Date().timeIntervalSince1970
            var due: [JobRecord] = []
            if let store = try Reports.openStoreIfPresent(config) {
                do {
                    due = try store.read { try $0.jobs(inStates: [.retryWait]) }.filter { ($0.notBefore ?? 0) <= now }
                } catch {
                    throw CommandError(.failure, "error: cannot read the state database: \(error)")
                }
            }
            for job in due { lines.append("retry: would run job \(job.id) (\(Reports.printable(job.name))), attempt \(job.attempts + 1)") }
            lines.append("retry: \(due.count) retries are due")
        }
        return lines
    }

    // MARK: task run

    public static func taskRun(config: Config, task: String, logFormat: LogFormat) throws(CommandError) -> (ExitStatus, [String]) {
        // A running daemon runs what its own config names, which may not be this file's yet (edited, not reloaded):
        // it answers, as the API does. Without one, this file's task runs here.
        if let pid = StateOwner.current(config).daemonPID {
            return (.ok, [try askDaemonToRun(config, task: task, pid: pid)])
        }
        guard config.tasks.contains(where: { $0.name == task }) else {
            throw CommandError(.badInput, "error: no task named \"\(task)\" in \(config.file)").about(.unknown)
        }
        try refuseHostProblems(config, commands: false)
        try Daemon.prepareFolders(config)
        let (status, report) = try run(config: config, work: BatchWork(taskRun: task), role: "task run", logFormat: logFormat)
        if status == .unavailable {
            try request(config, kind: "task_run", targets: [task])
            return (.ok, ["task \(task): queued ahead of everything in the daemon that just started"])
        }
        let job = report.taskJob.map { " (job \($0); `orchestrator show \($0)` has its log)" } ?? ""
        if report.taskSucceeded == true { return (.ok, ["task \(task): succeeded\(job)"]) }
        return (.failure, ["task \(task): failed: \(report.taskReason ?? "did not run")\(job)"])
    }

    // MARK: Running

    /// Runs the dispatcher on `work` under the state lock (after any other one-shot run); `.unavailable` if a
    /// daemon holds it. Then under the Inbox's locks: after a one-shot run of another state dir on the same
    /// Inbox, and refused (69) while a daemon of another state dir owns it.
    static func run(config: Config, work: BatchWork, role: String, logFormat: LogFormat) throws(CommandError) -> (ExitStatus, BatchReport) {
        let lock: InstanceLock
        switch try StateOwner.acquireForOneShot(config, role: role) {
        case .success(let acquired): lock = acquired
        case .failure: return (.unavailable, BatchReport())
        }
        let inboxLocks = try InboxOwner.acquireForOneShot(config, role: role)
        let store: any Store
        do {
            store = try StoreFactory.open(config)
        } catch {
            throw CommandError(.failure, "error: cannot open \(StoreFactory.describe(config)): \(error)")
        }
        try StoreFactory.hold(store, config, shared: false)
        // Not the systemd notifier of a unit a one-shot may run under: only the daemon speaks to it.
        let (exitCode, report) = try Daemon.runDispatcher(
            config: config, store: store, logger: Daemon.makeLogger(format: logFormat),
            notifier: SystemdNotifier(environment: [:]), batch: work)
        withExtendedLifetime((lock, inboxLocks)) {}
        return (exitCode == 0 ? .ok : .failure, report)
    }

    private static func acquire(_ path: String) throws(CommandError) -> InstanceLock.Outcome {
        do {
            return try InstanceLock.acquire(path)
        } catch {
            throw CommandError(.failure, "error: \(error)")
        }
    }

    /// What the daemon's dispatcher answers a `task_run` request: queued, or not a task of its config.
    static let queuedAnswer = "queued"
    static let unknownTaskAnswer = "unknown"

    /// Records a `task_run` request, wakes the daemon and waits for its answer (`InterventionCommands.answerTimeout`).
    private static func askDaemonToRun(_ config: Config, task: String, pid: Int32) throws(CommandError) -> String {
        let store = try Reports.openStore(config)
        let answer = try InterventionCommands.awaitAnswer(store: store, kind: "task_run", target: task) { _ in
            TaskCommands.wakeDaemon(config, reason: "task_run")
        }
        switch answer {
        case queuedAnswer?:
            return "task \(task): queued ahead of everything in the running daemon (pid \(pid))"
        case unknownTaskAnswer?:
            throw CommandError(
                .badInput,
                "error: the running daemon (pid \(pid)) has no task named \"\(task)\" in the config it runs with; after editing \(config.file), reload it (systemctl reload, or kill -HUP \(pid))"
            ).about(.unknown)
        default:
            break
        }
        return "task \(task): recorded for the running daemon (pid \(pid)), which has not answered within \(Int(InterventionCommands.answerTimeout)) s; it runs when the daemon reads it, if its config has the task"
    }

    private static func request(_ config: Config, kind: String, targets: [String]) throws(CommandError) {
        let store = try Reports.openStore(config)
        do {
            try store.write { transaction in
                for target in targets {
                    _ = try transaction.insertRequest(kind: kind, target: target, at: Date().timeIntervalSince1970)
                }
            }
        } catch {
            throw CommandError(.failure, "error: cannot record the request: \(error)")
        }
        TaskCommands.wakeDaemon(config, reason: kind)
    }
}
