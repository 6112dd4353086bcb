import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// What the watchdog sweep found: written to the store (`status` shows it); `problems` empty means healthy.
struct HealthSnapshot: Codable, Sendable, Equatable {
    /// Unix seconds.
    var at: Double
    /// "daemon" or "sweep".
    var by: String
    var problems: [String]
    /// Things worth saying that are not problems.
    var notes: [String]

    var healthy: Bool { problems.isEmpty }

    static let noteKey = "health"

    var json: String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self) }

    static func decode(_ text: String?) -> HealthSnapshot? {
        text.flatMap { try? JSONDecoder().decode(HealthSnapshot.self, from: Data($0.utf8)) }
    }
}

/// The checks both the daemon's watchdog sweep and the one-shot `sweep --mode watchdog` make.
enum HealthChecks {
    /// Less free than this on a filesystem the daemon writes to is a problem: moves and the store would fail.
    static let minimumFreeBytes: UInt64 = 64 << 20
    static let minimumFreeFraction = 0.01
    /// A run this far past its timeout and the grace (SIGTERM, then SIGKILL after `shutdown_grace`, should have
    /// ended it) is stuck.
    static let stuckSlack: Double = 30

    static func disk(_ config: Config) -> [String] {
        var problems: [String] = []
        var seen: Set<UInt64> = []
        for (what, path) in [("state", config.paths.state), ("Inbox", config.paths.inbox), ("Done", config.paths.done), ("Failed", config.paths.failed)] {
            guard let status = FileSystem.status(PathBytes(path)), seen.insert(status.device).inserted else { continue }
            guard let space = FileSystem.space(PathBytes(path)) else { continue }
            let floor = max(minimumFreeBytes, UInt64(Double(space.total) * minimumFreeFraction))
            if space.free < floor {
                problems.append("disk: only \(space.free >> 20) MiB free on the filesystem of \(what) (\(path))")
            }
        }
        return problems
    }

    /// The configured timeout of the handler or task a job belongs to.
    static func timeout(of job: JobRecord, in config: Config) -> Duration? {
        switch job.kind {
        case .file, .upload: config.handlers.first { $0.name == job.handler }?.timeout
        case .task: config.tasks.first { Array($0.name.utf8) == job.name.bytes }?.timeout
        }
    }

    /// Runs recorded as running for longer than their timeout allows.
    static func stuckRuns(_ reader: any StoreReader, config: Config, now: Double) throws -> [String] {
        var problems: [String] = []
        for attempt in try reader.runningAttempts() {
            guard let job = try reader.job(id: attempt.jobID), let timeout = timeout(of: job, in: config) else { continue }
            let limit = Double(timeout.wholeMilliseconds + config.limits.shutdownGrace.wholeMilliseconds) / 1000 + stuckSlack
            let elapsed = now - attempt.startedAt
            if elapsed > limit {
                problems.append(
                    "job \(job.id) (\(Reports.printable(job.name))) has run for \(Reports.formatSeconds(elapsed)), past its timeout of \(timeout.configText)")
            }
        }
        return problems
    }
}

extension Batch {
    /// The one-shot watchdog: checks disk space, stuck runs and, when a daemon runs, that its own watchdog
    /// is sweeping; without a daemon, re-queues runs whose daemon died. Records the snapshot; exit 1 when
    /// unhealthy.
    static func watchdog(config: Config) throws(CommandError) -> (ExitStatus, [String]) {
        let store = try Reports.openStore(config)
        let now = Date().timeIntervalSince1970
        var snapshot = HealthSnapshot(at: now, by: "sweep", problems: HealthChecks.disk(config), notes: [])
        var daemonLock: InstanceLock?
        var busyOneShot: String?
        if case .oneShot(let pid, let role) = StateOwner.current(config) {
            // A health check does not wait for a long `task run`; that run owns the jobs meanwhile.
            busyOneShot = "a one-shot \(role) (pid \(pid)) is working; no daemon is running"
        } else {
            do {
                if case .acquired(let lock) = try InstanceLock.acquire(StateOwner.lockPath(config), role: "watchdog") { daemonLock = lock }
            } catch {
                throw CommandError(.failure, "error: \(error)")
            }
            if daemonLock == nil, case .oneShot(let pid, let role) = StateOwner.current(config) {
                busyOneShot = "a one-shot \(role) (pid \(pid)) is working; no daemon is running"
            }
        }
        do {
            try store.write { transaction in
                let reader = transaction.reader
                if let busyOneShot {
                    snapshot.notes.append(busyOneShot)
                } else if daemonLock != nil, config.store.url != nil {
                    // A shared store's other daemons may be running, on this host or others: the runs marked running
                    // are theirs, or this node's under leases that any daemon takes back once they run out.
                    snapshot.notes.append(
                        "the daemon of this config (node \(config.node.name)) is not running; the store's daemons take back its runs when their leases run out")
                } else if daemonLock != nil {
                    snapshot.notes.append("no daemon is running")
                    // Nobody owns runs still marked running: their daemon died. The next daemon or sweep runs them.
                    var requeued = 0
                    for attempt in try reader.runningAttempts() {
                        if let pid = attempt.pid, let start = attempt.startTime,
                            ProcessSupervisor.isAlive(WorkerHandle(pid: pid, startTime: start))
                        {
                            continue
                        }
                        try transaction.finishAttempt(
                            attemptID: attempt.id, AttemptResult(outcome: .interrupted, reason: "its daemon died while it ran"), at: now)
                        try transaction.setState(
                            jobID: attempt.jobID, from: .running, to: .queued, detail: "re-queued by the watchdog: its daemon died", at: now)
                        requeued += 1
                    }
                    if requeued > 0 { snapshot.notes.append("re-queued \(requeued) runs whose daemon died") }
                } else {
                    let interval = Double(config.sweeps.watchdog.wholeMilliseconds) / 1000
                    let last = HealthSnapshot.decode(try reader.nodeNote(node: config.node.name, HealthSnapshot.noteKey))
                    if let last, last.by == "daemon", now - last.at <= 3 * interval + 2 {
                        snapshot.problems += last.problems
                    } else {
                        let age = last.map { "last checked \(Reports.formatSeconds(now - $0.at)) ago" } ?? "never checked"
                        snapshot.problems.append("the daemon's watchdog is not sweeping (\(age)); the daemon may be wedged")
                    }
                }
                snapshot.problems += try HealthChecks.stuckRuns(reader, config: config, now: now)
                // With a daemon running, its own snapshot stays the one `status` shows.
                if daemonLock != nil {
                    try transaction.setNodeNote(node: config.node.name, HealthSnapshot.noteKey, snapshot.json, at: now)
                }
                if !snapshot.healthy, config.tasks.contains(where: { $0.trigger == .event("error.critical") }) {
                    _ = try transaction.insertEvent(name: "error.critical", source: "watchdog", at: now)
                }
            }
        } catch {
            throw CommandError(.failure, "error: cannot read or write the state database: \(error)")
        }
        withExtendedLifetime(daemonLock) {}
        if !snapshot.healthy { TaskCommands.wakeDaemon(config, reason: "watchdog") }
        var lines = snapshot.problems.map { "watchdog: unhealthy: \($0)" } + snapshot.notes.map { "watchdog: \($0)" }
        if snapshot.healthy { lines.insert("watchdog: healthy", at: 0) }
        return (snapshot.healthy ? .ok : .failure, lines)
    }
}
