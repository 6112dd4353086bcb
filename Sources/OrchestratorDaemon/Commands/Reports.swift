#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// `status`, `history` and `show`: read-only views of the store, safe while the daemon runs.
public enum Reports {
    // MARK: status

    public static func status(config: Config, json: Bool) throws(CommandError) -> String {
        let owner = StateOwner.current(config)
        let daemonPID = owner.daemonPID
        var waiting = 0
        let cursor = DirectoryCursor(root: PathBytes(config.paths.inbox), recursive: config.inbox.recursive) {
            config.skipsFolder($0)
        }
        while case let slice = cursor.next(limit: 4096), !slice.isEmpty { waiting += slice.count { config.isInput($0.path) } }

        var counts = QueueCounts(byState: [:])
        var runningJobs: [(JobRecord, AttemptRecord)] = []
        var allBreakers: [BreakerRecord] = []
        var pausedHandlers: [String] = []
        var uploads = (pending: 0, ok: 0, failed: 0)
        var nodeNotes: [NodeNote] = []
        var nodes: [NodeRecord] = []
        // Whatever state the state dir is in, status answers (exit 0) and says what it could not read.
        var cannotRead: [String] = []
        // What the daemon posts when the store cannot take it (a full disk), or, when it could not even have the
        // board's block, the marker that stands in for it.
        let statePath = PathBytes(config.paths.state)
        // One line for the pause or the stop, one for the store's trouble (see `Dispatcher.postBoard`).
        let board = (daemonPID == nil ? nil : StatusBoard.read(Dispatcher.statusBoardPath(statePath)))?
            .split(separator: "\n").map(String.init) ?? []
        let stopping = board.first { $0.hasPrefix("stopping") }
        let paused = board.first { $0.hasPrefix("paused: ") }
            ?? (FileSystem.exists(Dispatcher.noSpaceMarkerPath(statePath)) ? "paused: no space on \(config.paths.state)" : nil)
        if !FileSystem.exists(PathBytes(config.paths.inbox)) {
            cannotRead.append("Inbox \(config.paths.inbox) does not exist")
        }
        var storeUnreadable = false
        var store = openStoreForStatus(config, cannotRead: &cannotRead, unreadable: &storeUnreadable)
        if let opened = store {
            do {
                try opened.read { reader in
                    counts = try reader.counts()
                    allBreakers = try reader.breakers()
                    pausedHandlers = try reader.pausedHandlers().sorted()
                    nodeNotes = try reader.nodeNotes(prefix: "")
                    uploads = try reader.uploadCounts()
                    nodes = try reader.nodes()
                    for attempt in try reader.runningAttempts() {
                        if let job = try reader.job(id: attempt.jobID) { runningJobs.append((job, attempt)) }
                    }
                }
            } catch {
                cannotRead.append(CommandError.oneLine("cannot read the state database \(opened.location): \(error)"))
                storeUnreadable = true
                (counts, runningJobs, allBreakers, nodeNotes) = (QueueCounts(byState: [:]), [], [], [])
                (uploads, store, nodes) = ((0, 0, 0), nil, [])
            }
        }
        // The daemon's database file was removed or replaced under it: what was read here is not what it records.
        let prefix = Dispatcher.unhealthyBoardPrefix
        if let trouble = board.first(where: { $0.hasPrefix(prefix) }).map({ String($0.dropFirst(prefix.count)) }) {
            cannotRead.append("the daemon says: \(trouble)")
            storeUnreadable = true
            (counts, runningJobs, allBreakers, nodeNotes) = (QueueCounts(byState: [:]), [], [], [])
            (uploads, store, nodes) = ((0, 0, 0), nil, [])
        }
        let now = Date().timeIntervalSince1970
        let shared = config.store.url != nil
        // Each daemon of a shared store keeps its own notes and breakers; the top-level ones are this config's
        // daemon's. SQLite's one daemon: the newest of each, whichever name wrote it (as before names were kept).
        let notesByNode = DaemonNotes.byNode(nodeNotes, allBreakers)
        let own = shared ? notesByNode[config.node.name] ?? DaemonNotes() : DaemonNotes(notes: nodeNotes, breakers: allBreakers)
        let admissionWait = daemonPID == nil ? nil : own.admissionWait
        let configLoadedAt = daemonPID == nil ? nil : own.configLoadedAt
        let health = own.health
        let conditions = nodes.map { NodeLiveness.condition(of: $0, shared: shared, stateDirDaemonRuns: daemonPID != nil) }
        let disagreement = NodeLiveness.configDisagreement(zip(nodes, conditions).filter { $0.1 == .running }.map(\.0))
        // Queued work no running daemon may take: only daemons without the worker role run (a lister alone, say).
        let noWorker: String? = {
            guard shared, !storeUnreadable, counts.count(.queued) > 0,
                !zip(nodes, conditions).contains(where: { $0.1 == .running && $0.0.roles.contains("worker") })
            else { return nil }
            return "no running daemon of the store has the worker role: the \(counts.count(.queued)) queued jobs wait for one"
        }()
        let taskRows: [[String: Any]]
        do throws(CommandError) {
            taskRows = try TaskCommands.rows(config: config, store: store)
        } catch {
            cannotRead.append(contentsOf: error.lines.map { $0.hasPrefix("error: ") ? String($0.dropFirst(7)) : $0 })
            taskRows = (try? TaskCommands.rows(config: config, store: nil)) ?? []
        }
        if json {
            var object: [String: Any] = [
                "daemon": [
                    "running": daemonPID != nil, "pid": daemonPID.map { Int($0) } as Any? ?? NSNull(),
                    "stopping": stopping as Any? ?? NSNull(),
                ],
                "inbox_waiting": waiting,
                "jobs": Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, counts.count($0)) }),
                "running": runningJobs.map { job, attempt -> [String: Any] in
                    var fields = nameFields(job.name)
                    fields["job"] = job.id
                    fields["attempt"] = attempt.number
                    fields["pid"] = attempt.pid.map { Int($0) } as Any? ?? NSNull()
                    fields["running_seconds"] = max(0, now - attempt.startedAt)
                    if shared, let node = job.owner { fields["node"] = node }
                    return fields
                },
            ]
            object["breakers"] = own.breakersJSON
            object["tasks"] = taskRows
            object["paused_handlers"] = pausedHandlers
            // A job waiting longer than this is starving (it has gained priority by aging all this while).
            object["starvation_after_seconds"] = Double(config.limits.starvationAfter.wholeMilliseconds) / 1000
            object["uploads"] = ["pending": uploads.pending, "ok": uploads.ok, "failed": uploads.failed]
            object["sweeps"] = own.sweepsJSON
            object["queue_waits_because"] = (admissionWait ?? noWorker) as Any? ?? NSNull()
            object["cannot_read"] = cannotRead
            object["config_loaded_at"] = configLoadedAt as Any? ?? NSNull()
            object["store"] = config.store.shown
            object["daemons"] = zip(nodes, conditions).map { node, condition -> [String: Any] in
                let notes = notesByNode[node.name] ?? DaemonNotes()
                // What a daemon no longer running said about its queue and config would read as current.
                let running = condition == .running
                return [
                    "name": node.name, "instance": node.instance, "pid": Int(node.pid), "version": node.version,
                    "condition": condition.rawValue, "started_at": iso(node.startedAt),
                    "heartbeat_seconds_ago": max(0, node.heartbeatAge), "leases": node.leasesHeld,
                    "config_hash": node.configHash, "roles": node.roles,
                    "health": notes.healthJSON, "sweeps": notes.sweepsJSON, "breakers": notes.breakersJSON,
                    "config_loaded_at": (running ? notes.configLoadedAt : nil) as Any? ?? NSNull(),
                    "queue_waits_because": (running ? notes.admissionWait : nil) as Any? ?? NSNull(),
                ]
            }
            object["config_disagreement"] = disagreement as Any? ?? NSNull()
            object["paused"] = paused as Any? ?? NSNull()
            // A store that cannot be read (its server away) leaves the counts at zero: that is not a healthy, idle queue.
            object["healthy"] = daemonPID != nil && !storeUnreadable && (health?.healthy ?? true)
            object["health"] = own.healthJSON
            return try render(object)
        }
        var lines: [String] = []
        var daemonLine = "daemon:   " + (daemonPID.map { "running (pid \($0))" } ?? "not running")
        if let stopping { daemonLine += ", " + stopping }
        if case .oneShot(let pid, let role) = owner { daemonLine += "; a one-shot \(role) (pid \(pid)) is working" }
        lines.append(daemonLine)
        for problem in cannotRead { lines.append("warning:  \(problem)") }
        if let configLoadedAt, !shared { lines.append("config:   \(config.file), in force since \(configLoadedAt)") }
        lines.append("store:    " + (config.store.url == nil ? "sqlite in \(config.paths.state)" : config.store.shown))
        if shared {
            for (node, condition) in zip(nodes, conditions) {
                let state = switch condition {
                case .running: "running, heartbeat \(formatSeconds(max(0, node.heartbeatAge))) ago"
                case .stopped: "stopped \(formatSeconds(max(0, node.heartbeatAge))) ago"
                case .silent: "SILENT for \(formatSeconds(max(0, node.heartbeatAge))) (presumed dead)"
                }
                lines.append(
                    "node:     \(pad(node.name, 16)) \(state), \(node.leasesHeld) leases, config \(node.configHash.prefix(12)), "
                        + "\(node.roles.joined(separator: "+")), pid \(node.pid) at \(node.instance)")
                lines += nodeNoteLines(notesByNode[node.name] ?? DaemonNotes(), running: condition == .running, now: now)
            }
            if let disagreement { lines.append("warning:  \(disagreement)") }
        }
        if let paused { lines.append("PAUSED:   \(paused.dropFirst("paused: ".count)); nothing new starts until \(paused.hasPrefix("paused: no space") ? "space returns" : "that changes")") }
        lines.append("inbox:    \(waiting) waiting")
        // Zeros read from nowhere would look like an empty queue (a store's server that is away, say).
        if storeUnreadable {
            lines.append("queue:    unknown (the store cannot be read)")
        } else {
            lines.append(
                "queue:    \(counts.count(.queued)) queued, \(counts.count(.running)) running, "
                    + "\(counts.count(.retryWait)) waiting to retry, \(counts.count(.breakerWait)) waiting for a breaker, "
                    + "\(counts.count(.paused)) paused")
        }
        if let noWorker { lines.append("waiting:  \(noWorker)") }
        if !pausedHandlers.isEmpty { lines.append("handlers: paused: \(pausedHandlers.joined(separator: ", "))") }
        if !storeUnreadable { lines.append("finished: \(counts.count(.done)) done, \(counts.count(.failed)) failed") }
        // On a shared store these are each daemon's, under its `node:` line.
        if !shared, let admissionWait { lines.append("waiting:  \(admissionWait)") }
        if !shared { lines += own.sweepLines(now: now) }
        if uploads != (0, 0, 0) { lines.append("uploads:  \(uploads.pending) pending, \(uploads.ok) ok, \(uploads.failed) failed") }
        if !shared { lines += own.healthLines(now: now) + own.breakerLines }
        for row in taskRows {
            var line = "task:     \(pad(row["name"] as? String ?? "", 20)) next \(row["next_fire"] as? String ?? "-")"
            if row["enabled"] as? Bool == false { line += " (disabled)" }
            if let names = row["waiting_for"] as? [String] { line += ", waiting for " + names.joined(separator: ", ") }
            if let last = row["last_result"] as? String { line += ", last \(last)" }
            lines.append(line)
        }
        for (job, attempt) in runningJobs {
            lines.append(
                "  running job \(job.id) attempt \(attempt.number) pid \(attempt.pid.map(String.init) ?? "?")"
                    + (shared ? job.owner.map { " on \($0)" } ?? "" : "") + " for \(formatSeconds(now - attempt.startedAt)): \(printable(job.name))")
        }
        return lines.joined(separator: "\n")
    }

    /// A daemon's own notes, under its `node:` line of a shared store's `status`.
    static func nodeNoteLines(_ notes: DaemonNotes, running: Bool, now: UnixTime) -> [String] {
        var lines: [String] = []
        if running, let loaded = notes.configLoadedAt { lines.append("config:   in force since \(loaded)") }
        if running, let wait = notes.admissionWait { lines.append("waiting:  \(wait)") }
        lines += notes.sweepLines(now: now) + notes.healthLines(now: now) + notes.breakerLines
        return lines.map { "          " + $0 }
    }

    // MARK: history

    public static func history(config: Config, limit: Int, failedOnly: Bool, json: Bool) throws(CommandError) -> String {
        var rows: [HistoryRow] = []
        // Files that failed without ever starting (no handler, not a regular file, cancelled while waiting) are in
        // Failed/ too: `--failed` lists them, newest first among the failed attempts.
        var neverRan: [JobRecord] = []
        do {
            try openStoreIfPresent(config)?.read { reader in
                rows = try reader.history(limit: limit, failedOnly: failedOnly)
                if failedOnly { neverRan = try reader.failedWithoutFailedAttempt(limit: limit) }
            }
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.failure, "error: cannot read the state database: \(error)")
        }
        let entries = (rows.map { HistoryEntry.attempt($0) } + neverRan.map { HistoryEntry.neverRan($0) })
            .sorted { $0.at > $1.at }.prefix(limit)
        if json {
            return try render(entries.map { entry -> [String: Any] in
                switch entry {
                case .attempt(let row):
                    return nameFields(row.job.name).merging(attemptFields(row.attempt)) { $1 }.merging([
                        "job": row.job.id, "handler": row.job.handler as Any? ?? NSNull(),
                        "job_state": row.job.state.rawValue, "kind": row.job.kind.rawValue,
                    ]) { $1 }.merging(taskFields(row.job)) { $1 }
                case .neverRan(let job):
                    // The keys of an attempt's row, empty: a client reads both kinds the same way.
                    var fields = attemptFields(nil)
                    fields["ended_at"] = iso(job.finishedAt ?? job.updatedAt)
                    fields["reason"] = job.reason as Any? ?? NSNull()
                    return nameFields(job.name).merging(fields) { $1 }.merging([
                        "job": job.id, "handler": job.handler as Any? ?? NSNull(), "job_state": job.state.rawValue,
                        "kind": job.kind.rawValue,
                    ]) { $1 }.merging(taskFields(job)) { $1 }
                }
            })
        }
        if entries.isEmpty { return failedOnly ? "no failures recorded" : "no runs recorded yet" }
        var lines = ["WHEN                  JOB    ATTEMPT  RESULT      DURATION  FILE / REASON"]
        for entry in entries {
            switch entry {
            case .attempt(let row):
                let attempt = row.attempt
                let when = formatTime(attempt.endedAt ?? attempt.startedAt)
                let duration = attempt.endedAt.map { formatSeconds($0 - attempt.startedAt) } ?? "-"
                let result = attempt.exitCode.map { "exit \($0)" } ?? attempt.signal.map { "signal \($0)" } ?? attempt.outcome.rawValue
                var line = "\(pad(when, 21)) \(pad(String(row.job.id), 6)) \(pad(String(attempt.number), 8)) "
                    + "\(pad(result, 11)) \(pad(duration, 9)) \(printable(row.job.name))"
                // A cancel's own words are its job's reason; the attempt's says how its group ended.
                let reasons = [attempt.outcome == .cancelled ? row.job.reason : nil, attempt.outcome != .succeeded ? attempt.reason : nil]
                    .compactMap { $0 }
                if !reasons.isEmpty { line += " (\(reasons.map(terminalSafe).joined(separator: "; ")))" }
                lines.append(line)
            case .neverRan(let job):
                var line = "\(pad(formatTime(job.finishedAt ?? job.updatedAt), 21)) \(pad(String(job.id), 6)) \(pad("-", 8)) "
                    + "\(pad("failed", 11)) \(pad("-", 9)) \(printable(job.name))"
                if let reason = job.reason { line += " (\(terminalSafe(reason)))" }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// A line of `history`: an attempt, or a job that failed without one.
    enum HistoryEntry {
        case attempt(HistoryRow)
        case neverRan(JobRecord)

        var at: UnixTime {
            switch self {
            case .attempt(let row): row.attempt.endedAt ?? row.attempt.startedAt
            case .neverRan(let job): job.finishedAt ?? job.updatedAt
            }
        }
    }

    // MARK: show

    public static func show(config: Config, target: String, json: Bool, workingDirectory: String) throws(CommandError) -> String {
        try requireTarget(target)
        guard let store = try openStoreIfPresent(config) else {
            throw CommandError(.badInput, "error: no job matches \(target): nothing has been recorded yet").about(.unknown)
        }
        let found: (JobRecord, [AttemptRecord], [(at: UnixTime, from: String?, to: String, detail: String?)])?
        var upload: JobRecord?
        do {
            found = try store.read { reader in
                guard var job = try findJob(reader, config: config, target: target, workingDirectory: workingDirectory)
                else { return nil }
                // On a shared store a paused handler's waiting file stays queued there, for any daemon to claim once the
                // handler is resumed: it waits for the pause all the same (SPEC: state `paused`).
                if job.kind == .file, job.state == .queued, let handler = job.handler, try reader.pausedHandlers().contains(handler) {
                    job.state = .paused
                }
                if job.kind == .file, job.state == .done, let path = job.finalPath { upload = try reader.latestUpload(path: path) }
                return (job, try reader.attempts(jobID: job.id), try reader.transitions(jobID: job.id))
            }
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.failure, "error: cannot read the state database: \(error)")
        }
        guard let (job, attempts, transitions) = found else {
            throw CommandError(.badInput, "error: no job matches \(target)\(notFoundHint(config, target: target, workingDirectory: workingDirectory))")
                .about(.unknown)
        }
        let location = location(of: job, config: config)
        if json {
            var object = jobFields(job)
            object["location"] = location as Any? ?? NSNull()
            // As for the name: the exact bytes when the path is not valid UTF-8 (`location` then holds U+FFFD).
            if let path = job.finalPath, !path.bytes.isEmpty, !path.isValidUTF8 {
                let root = job.state == .done ? config.paths.done : config.paths.failed
                object["location_b64"] = Data(PathBytes(root).appending(path).bytes).base64EncodedString()
            }
            if let upload {
                object["upload"] = [
                    "job": upload.id, "state": Self.uploadState(upload), "attempts": upload.attempts,
                    "reason": upload.reason as Any? ?? NSNull(),
                ] as [String: Any]
            }
            object["attempts"] = attempts.map(attemptFields)
            object["transitions"] = transitions.map { transition in
                [
                    "at": iso(transition.at), "from": transition.from as Any? ?? NSNull(), "to": transition.to,
                    "detail": transition.detail as Any? ?? NSNull(),
                ] as [String: Any]
            }
            return try render(object)
        }
        var lines = [
            "job \(job.id): \(printable(job.name))",
            "  state:     \(job.state.rawValue)" + (job.reason.map { " (\(terminalSafe($0)))" } ?? ""),
            "  handler:   \(job.handler ?? "none")  priority \(job.priority)",
            "  attempts:  \(job.attempts) of \(job.maxAttempts)",
        ]
        if let location { lines.append("  file:      \(terminalSafe(location))") }
        if let upload {
            lines.append(
                "  upload:    \(Self.uploadState(upload)) after \(upload.attempts) attempts (job \(upload.id))"
                    + (upload.reason.map { ": \(terminalSafe($0))" } ?? ""))
        }
        for attempt in attempts {
            var line = "  attempt \(attempt.number): \(attempt.outcome.rawValue)"
            if let code = attempt.exitCode { line += ", exit \(code)" }
            if let signal = attempt.signal { line += ", signal \(signal)" }
            if attempt.timedOut { line += ", timed out" }
            if let ended = attempt.endedAt { line += ", \(formatSeconds(ended - attempt.startedAt))" }
            lines.append(line)
            lines.append("    started \(formatTime(attempt.startedAt))" + (attempt.pid.map { ", pid \($0)" } ?? ""))
            if let user = attempt.userCPU, let system = attempt.systemCPU {
                lines.append(String(format: "    cpu %.3fs user, %.3fs system", user, system)
                    + (attempt.maxRSSKiB.map { ", max rss \($0) KiB" } ?? ""))
            }
            if let reason = attempt.reason, attempt.outcome != .succeeded { lines.append("    reason: \(terminalSafe(reason))") }
            if let pruned = attempt.logPrunedAt {
                lines.append("    log: pruned \(formatTime(pruned)) ([retention] logs)")
            } else if let log = attempt.logPath {
                lines.append(FileSystem.exists(PathBytes(log))
                    ? "    log: \(terminalSafe(String(decoding: log, as: UTF8.self)))" : "    log: none (no output)")
            }
            if !attempt.stderrTail.isEmpty {
                lines.append("    stderr tail:")
                for tailLine in String(decoding: attempt.stderrTail, as: UTF8.self).split(separator: "\n").suffix(10) {
                    lines.append("      \(terminalSafe(tailLine))")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// A job id (`id:N` for the id alone), or a path in Inbox/Done/Failed (or the name relative to them). A number that is
    /// also a file's name (`2`, with a file named 2 in the store) is refused as ambiguous (64): it named the job with
    /// that id, another file's, without a word.
    static func findJob(_ reader: any StoreReader, config: Config, target: String, workingDirectory: String) throws -> JobRecord? {
        try requireTarget(target)
        if target.hasPrefix("id:") {
            // Ids start at 1: `id:0` matched nothing, and the hint blamed pruning.
            guard let id = Int64(target.dropFirst(3)), id >= 1 else {
                throw CommandError(.usage, "error: \(terminalSafe(target)): after id: comes a job id (a number from 1)")
            }
            return try reader.job(id: id)
        }
        if let id = Int64(target), let job = try reader.job(id: id) {
            if let named = try reader.latestJob(kind: .file, name: RelativePath(target)), named.id != job.id {
                throw CommandError(
                    .usage,
                    "error: \(target) is both job \(job.id) (\(printable(job.name))) and the file named \(target) (job \(named.id)): "
                        + "give id:\(job.id) for the first, or the file's path (Inbox/\(target), or where it is in Done/ or Failed/) for the second")
            }
            return job
        }
        // A name recurs (a daily `report.txt`): a path in Inbox or the processing area names the live job under that name,
        // one in Done or Failed the job that ended there; a bare name, the live job if there is one.
        let roots = [(config.paths.done, false), (config.paths.failed, false), (config.paths.inbox, true), (config.paths.processing, true)]
        let targetBytes = ArgumentBytes.of(target)
        var candidates: [(name: RelativePath, live: Bool)] = []
        // From the current folder, and from the folders holding Inbox, Done and Failed: `show Done/x` names Done's x
        // wherever it is run (as `POST /api/v1/replay` takes Failed/x), the current folder winning.
        var resolved = [resolvedPath(of: target, workingDirectory: workingDirectory)]
        if !target.hasPrefix("/") {
            for (root, _) in roots {
                let path = resolvedPath(of: target, workingDirectory: (root as NSString).deletingLastPathComponent)
                if !resolved.contains(path) { resolved.append(path) }
            }
        }
        for path in resolved {
            for (root, live) in roots {
                let rootReal = FileSystem.realPath(PathBytes(root)) ?? PathBytes(root)
                let prefix = rootReal.bytes + [UInt8(ascii: "/")]
                if path.bytes.starts(with: prefix) { candidates.append((RelativePath(Array(path.bytes.dropFirst(prefix.count))), live)) }
            }
        }
        let bare = RelativePath(targetBytes)
        if let job = try reader.latestJob(kind: .file, name: bare), !job.state.isTerminal { candidates.append((bare, true)) }
        candidates.append((bare, false))
        for (name, live) in candidates {
            if live, let job = try reader.latestJob(kind: .file, name: name) { return job }
            if let job = try reader.latestJob(finalPath: name) { return job }
            if let job = try reader.latestJob(kind: .file, name: name) { return job }
        }
        return nil
    }

    /// Whether `target` is an entry in Inbox itself (not the processing area): a file there that no live job
    /// holds has not been claimed yet (claims come a queue's worth at a time) and is no job to act on.
    static func waitsInInbox(_ config: Config, target: String, workingDirectory: String) -> Bool {
        let resolved = resolvedPath(of: target, workingDirectory: workingDirectory)
        let inbox = FileSystem.realPath(PathBytes(config.paths.inbox)) ?? PathBytes(config.paths.inbox)
        let processing = FileSystem.realPath(PathBytes(config.paths.processing)) ?? PathBytes(config.paths.processing)
        let slash = [UInt8(ascii: "/")]
        guard resolved.bytes.starts(with: inbox.bytes + slash), !resolved.bytes.starts(with: processing.bytes + slash) else { return false }
        return FileSystem.status(resolved) != nil
    }

    // MARK: helpers

    /// An empty target is a usage error, store or no store: it matched the job of a file its worker moved away (its
    /// final path is empty).
    static func requireTarget(_ target: String) throws(CommandError) {
        guard !target.isEmpty else { throw CommandError(.usage, "error: no job given: give a file's path, its name, or a job id") }
    }

    /// Why a target may have matched nothing: a path that lies outside the instance's folders (paths are taken from
    /// the current folder, so `Failed/x` run elsewhere names another folder), else that old jobs are pruned.
    static func notFoundHint(_ config: Config, target: String, workingDirectory: String) -> String {
        // A name with folders (`sub/a.txt`) is also a name relative to Inbox, Done or Failed: only a target written
        // as a path (absolute, ./ or ../, or whose first folder is here) is called one.
        let first = target.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        let writtenAsPath = target.hasPrefix("/") || target.hasPrefix("./") || target.hasPrefix("../")
            || (target.contains("/") && FileSystem.exists(PathBytes(workingDirectory + "/" + first)))
        if writtenAsPath {
            let resolved = resolvedPath(of: target, workingDirectory: workingDirectory)
            let roots = [config.paths.inbox, config.paths.processing, config.paths.done, config.paths.failed]
            let inside = roots.contains { root in
                let real = FileSystem.realPath(PathBytes(root)) ?? PathBytes(root)
                return resolved.bytes.starts(with: real.bytes + [UInt8(ascii: "/")])
            }
            if !inside {
                return ": \(resolved) is not in this instance's Inbox/, Done/ or Failed/ (a path is taken from the current "
                    + "folder; give the file's name alone, or its path from here)"
            }
        }
        return " (finished jobs older than [retention] jobs = \(config.retention.jobs.configText) are pruned)"
    }

    /// A path given on the command line, absolute, its folders resolved and the entry itself not: a symlink in
    /// Failed/ names itself, not its target.
    static func resolvedPath(of target: String, workingDirectory: String) -> PathBytes {
        let targetBytes = ArgumentBytes.of(target)
        let absolute = target.hasPrefix("/") ? targetBytes : Array(workingDirectory.utf8) + [UInt8(ascii: "/")] + targetBytes
        let given = PathBytes(absolute)
        return FileSystem.realPath(given.parent).map { $0.appending(RelativePath(given.lastComponent)) } ?? given
    }

    /// The store for `status`, or nil with the reason in `cannotRead`; nil without one when nothing has been
    /// recorded yet. Never creates the state dir: status only reads.
    /// `unreadable`: set when there is a store that cannot be read now (not when nothing has been recorded yet).
    static func openStoreForStatus(_ config: Config, cannotRead: inout [String], unreadable: inout Bool) -> (any Store)? {
        if let store = inProcessStore.value { return store }
        if let problem = StoreFactory.daemonStoreMismatch(config) {
            cannotRead.append(problem)
            unreadable = true
            return nil
        }
        if config.store.url != nil {
            do {
                return try StoreFactory.open(config)
            } catch {
                cannotRead.append("cannot open \(StoreFactory.describe(config)): \(error)")
                unreadable = true
                return nil
            }
        }
        let state = config.paths.state
        var info = stat()
        guard stat(state, &info) == 0 else {
            let missing = errno == ENOENT
            let reason = missing ? "does not exist (nothing recorded yet)" : "cannot be read: \(String(cString: strerror(errno)))"
            cannotRead.append("state dir \(state) \(reason)")
            unreadable = !missing
            return nil
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            cannotRead.append("state dir \(state) is not a folder")
            unreadable = true
            return nil
        }
        guard access(state, R_OK | X_OK) == 0 else {
            cannotRead.append("state dir \(state) cannot be read: \(String(cString: strerror(errno)))")
            unreadable = true
            return nil
        }
        let database = state + "/orchestrator.sqlite"
        guard FileManager.default.fileExists(atPath: database) else { return nil }
        do {
            return try SQLiteStore(directory: state)
        } catch {
            cannotRead.append(CommandError.oneLine("cannot open the state database \(database): \(error)"))
            unreadable = true
            return nil
        }
    }

    /// For the commands the HTTP API runs inside the daemon: one store opened once, instead of a pool per
    /// request. Its own, not the dispatcher's: that one commits without waiting for the disk (see
    /// `Store.syncOnlyWhenAsked`), and what a command records must be durable when it answers.
    static let inProcessStore = LockedBox<(any Store)?>(nil)

    static func openStore(_ config: Config) throws(CommandError) -> any Store {
        if let store = inProcessStore.value { return store }
        do {
            return try StoreFactory.open(config)
        } catch let error as StoreFactory.DaemonUsesAnotherStore {
            throw CommandError(.failure, "error: \(error)")
        } catch {
            throw CommandError(.failure, "error: cannot open \(StoreFactory.describe(config)): \(error)")
        }
    }

    /// One job's own fields, as `show --json` and the API's job list give them.
    static func jobFields(_ job: JobRecord) -> [String: Any] {
        var object = nameFields(job.name)
        object["job"] = job.id
        object["kind"] = job.kind.rawValue
        object["handler"] = job.handler as Any? ?? NSNull()
        object["state"] = job.state.rawValue
        object["priority"] = job.priority
        object["attempts_used"] = job.attempts
        object["max_attempts"] = job.maxAttempts
        object["reason"] = job.reason as Any? ?? NSNull()
        object["created_at"] = iso(job.createdAt)
        object["finished_at"] = job.finishedAt.map(iso) as Any? ?? NSNull()
        object.merge(taskFields(job)) { $1 }
        return object
    }

    /// Where a finished file job's file is now (Done/ or Failed/), if it got there.
    static func location(of job: JobRecord, config: Config) -> String? {
        job.finalPath.flatMap { path -> String? in
            guard !path.bytes.isEmpty else { return nil }
            let root = job.state == .done ? config.paths.done : config.paths.failed
            return PathBytes(root).appending(path).description
        }
    }

    /// The store, or nil when SQLite's file does not exist yet (nothing recorded; reading must not create it). A
    /// server's store is always there.
    static func openStoreIfPresent(_ config: Config) throws(CommandError) -> (any Store)? {
        if let problem = StoreFactory.daemonStoreMismatch(config) { throw CommandError(.failure, "error: \(problem)") }
        if config.store.url == nil {
            // Only a database that is not there means "nothing recorded yet": a state dir that is a file, or one that
            // cannot be looked into, is said as such (exit 1), as a damaged database is.
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: config.paths.state, isDirectory: &isFolder), !isFolder.boolValue {
                throw CommandError(.failure, "error: the state dir \(terminalSafe(config.paths.state)) is not a folder")
            }
            let database = config.paths.state + "/orchestrator.sqlite"
            var status = stat()
            guard stat(database, &status) == 0 else {
                let code = errno
                if code == ENOENT { return nil }
                throw CommandError(.failure, "error: cannot read \(terminalSafe(database)): \(String(cString: strerror(code)))")
            }
        }
        return try openStore(config)
    }

    /// `name`, plus `name_b64` with the exact bytes when they are not valid UTF-8.
    static func nameFields(_ name: RelativePath) -> [String: Any] {
        var fields: [String: Any] = ["name": name.description]
        if !name.isValidUTF8 { fields["name_b64"] = Data(name.bytes).base64EncodedString() }
        return fields
    }

    /// pending, ok or failed.
    static func uploadState(_ job: JobRecord) -> String {
        switch job.state {
        case .done: "ok"
        case .failed: "failed"
        default: "pending"
        }
    }

    /// For a task run: what queued it, and its slot or event.
    static func taskFields(_ job: JobRecord) -> [String: Any] {
        guard job.kind == .task else { return [:] }
        var fields: [String: Any] = ["task": job.name.description, "cause": job.cause as Any? ?? NSNull()]
        if let slot = job.slotMs {
            fields["slot_ms"] = slot
            fields["slot"] = iso(Double(slot) / 1000)
        }
        if let event = job.eventID { fields["event_id"] = event }
        return fields
    }

    /// An attempt's fields; for nil (a failed job that no attempt explains), the same keys with nothing in them.
    static func attemptFields(_ attempt: AttemptRecord?) -> [String: Any] {
        guard let attempt else {
            return [
                "attempt": NSNull(), "outcome": "failed", "started_at": NSNull(), "ended_at": NSNull(),
                "duration_seconds": NSNull(), "exit_code": NSNull(), "signal": NSNull(), "timed_out": false, "pid": NSNull(),
                "user_cpu_seconds": NSNull(), "system_cpu_seconds": NSNull(), "max_rss_kib": NSNull(), "log_path": NSNull(),
                "log_pruned": false, "stderr_tail": "", "reason": NSNull(),
            ]
        }
        return [
            "attempt": attempt.number,
            "outcome": attempt.outcome.rawValue,
            "started_at": iso(attempt.startedAt),
            "ended_at": attempt.endedAt.map(iso) as Any? ?? NSNull(),
            "duration_seconds": attempt.endedAt.map { $0 - attempt.startedAt } as Any? ?? NSNull(),
            "exit_code": attempt.exitCode.map { Int($0) } as Any? ?? NSNull(),
            "signal": attempt.signal.map { Int($0) } as Any? ?? NSNull(),
            "timed_out": attempt.timedOut,
            "pid": attempt.pid.map { Int($0) } as Any? ?? NSNull(),
            "user_cpu_seconds": attempt.userCPU as Any? ?? NSNull(),
            "system_cpu_seconds": attempt.systemCPU as Any? ?? NSNull(),
            "max_rss_kib": attempt.maxRSSKiB as Any? ?? NSNull(),
            // A worker that printed nothing has no log file.
            "log_path": attempt.logPath.flatMap { FileSystem.exists(PathBytes($0)) ? String(decoding: $0, as: UTF8.self) : nil }
                as Any? ?? NSNull(),
            "log_pruned": attempt.logPrunedAt != nil,
            "stderr_tail": String(decoding: attempt.stderrTail, as: UTF8.self),
            "reason": attempt.reason as Any? ?? NSNull(),
        ]
    }

    static func render(_ object: Any) throws(CommandError) -> String {
        if let text = JSONText.render(object) { return text }
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        } catch {
            throw CommandError(.failure, "error: cannot render JSON: \(error)")
        }
    }

    /// A worker's output, a file's path or a reason someone typed (`cancel --reason`, the API) as text a terminal only
    /// prints: control characters (escape sequences that clear the screen, set the title or colour, a newline that
    /// forges a row, a carriage return that hides what came before) are shown as `\xHH`.
    static func terminalSafe<Text: StringProtocol>(_ text: Text) -> String {
        var safe = ""
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if (value < 0x20 && value != 0x09) || (0x7f...0x9f).contains(value) {
                safe += "\\x" + (value < 0x10 ? "0" : "") + String(value, radix: 16)
            } else {
                safe.unicodeScalars.append(scalar)
            }
        }
        return safe
    }

    /// Names can hold newlines and control bytes; one record stays on one line.
    static func printable(_ name: RelativePath) -> String {
        LineLogHandler.quoteIfNeeded(name.description)
    }

    /// `2026-01-02T03:04:05.678Z`, as the log writes it: without Foundation's ISO formatter, which builds an
    /// ICU formatter per call (a tenth of the HTTP API's status) and maps ICU's data into the daemon.
    static func iso(_ time: UnixTime) -> String {
        LineLogHandler.timestamp(at: time)
    }

    static func formatTime(_ time: UnixTime) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: time))
    }

    static func formatSeconds(_ seconds: Double) -> String {
        if seconds < 1 { return String(format: "%.0fms", seconds * 1000) }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        if seconds < 3600 { return String(format: "%dm%02ds", Int(seconds) / 60, Int(seconds) % 60) }
        return String(format: "%dh%02dm", Int(seconds) / 3600, Int(seconds) % 3600 / 60)
    }

    /// Columns as wide as their widest cell (a long task name or a cron line with its zone shifts no other
    /// column), two spaces apart; the last column is not padded.
    static func table(_ header: [String], _ rows: [[String]]) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in column == row.count - 1 ? cell : pad(cell, widths[column]) }
                .joined(separator: "  ")
        }
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
