import Foundation
import GRDB
import OrchestratorCore

/// Why a task run was queued.
public enum TaskCause: String, Sendable {
    /// Its interval or cron slot came.
    case schedule
    /// One slot missed while no daemon ran (`catch_up = "once"`).
    case catchUp = "catch_up"
    /// `@reboot`: the daemon started.
    case reboot
    /// An event it listens to (`on`).
    case event
    /// `orchestrator task run`.
    case manual
}

/// The latest finished run of a task.
public struct TaskRunRecord: Sendable, Equatable {
    public var jobID: Int64
    public var state: JobState
    public var reason: String?
    /// When its first attempt started, Unix seconds.
    public var startedAt: UnixTime
    public var finishedAt: UnixTime
    /// Its last attempt never started a process (the command is missing or not executable).
    public var couldNotStart: Bool

    public init(jobID: Int64, state: JobState, reason: String?, startedAt: UnixTime, finishedAt: UnixTime, couldNotStart: Bool) {
        self.jobID = jobID
        self.state = state
        self.reason = reason
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.couldNotStart = couldNotStart
    }
}

/// Counts and durations of one task's or handler's finished attempts.
public struct RunStatistics: Sendable, Equatable {
    public var executions: Int
    public var failures: Int
    public var averageSeconds: Double?
    public var p95Seconds: Double?

    public init(executions: Int, failures: Int, averageSeconds: Double? = nil, p95Seconds: Double? = nil) {
        self.executions = executions
        self.failures = failures
        self.averageSeconds = averageSeconds
        self.p95Seconds = p95Seconds
    }

    /// Where the p95 of `count` durations is among them in ascending order (0-based): the first that 95% of them do
    /// not exceed, as PostgreSQL's `percentile_disc(0.95)`. nil with no durations.
    public static func p95Rank(of count: Int) -> Int? {
        count > 0 ? min(count - 1, Int((Double(count) * 0.95).rounded(.up)) - 1) : nil
    }
}

public struct BreakerRecord: Sendable, Equatable {
    /// The daemon whose failures moved it.
    public var node: String
    /// "handler NAME" or "task NAME".
    public var owner: String
    /// closed, open or half_open.
    public var state: String
    public var consecutiveFailures: Int
    public var openUntil: UnixTime?
    public var updatedAt: UnixTime

    public init(node: String, owner: String, state: String, consecutiveFailures: Int, openUntil: UnixTime?, updatedAt: UnixTime) {
        self.node = node
        self.owner = owner
        self.state = state
        self.consecutiveFailures = consecutiveFailures
        self.openUntil = openUntil
        self.updatedAt = updatedAt
    }
}

public struct EventRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var source: String
    public var createdAt: UnixTime
    public var handledAt: UnixTime?

    public init(id: Int64, name: String, source: String, createdAt: UnixTime, handledAt: UnixTime?) {
        self.id = id
        self.name = name
        self.source = source
        self.createdAt = createdAt
        self.handledAt = handledAt
    }
}

/// When a task's latest run started, as both engines read it (`name`: the placeholder of the task's name, used
/// twice). Not from every run of the task: a scheduler on a shared store asks before each run with prerequisites,
/// and months of a task's runs (100,000) took 0.3-0.4 s to read. Only its live runs and those that finished after
/// the latest finished run started can hold the latest start: a run that started after that one ended after it.
package func lastTaskStartQuery(name: String) -> String {
    """
    SELECT MAX(a.started_at) FROM job j JOIN attempt a ON a.job_id = j.id
    WHERE j.kind = 'task' AND j.name = \(name)
      AND (j.finished_at IS NULL OR j.finished_at >= COALESCE(
          (SELECT MAX(b.started_at) FROM attempt b
           WHERE b.job_id = (SELECT k.id FROM job k WHERE k.kind = 'task' AND k.name = \(name) AND k.finished_at IS NOT NULL
                             ORDER BY k.finished_at DESC, k.id DESC LIMIT 1)),
          -1e300))
    """
}

extension SQLiteReader {
    /// The highest slot recorded for a task's schedule (its scheduled and caught-up runs).
    public func lastScheduledSlot(task: String) throws -> Int64? {
        try Int64.fetchOne(
            db,
            sql: "SELECT MAX(slot_ms) FROM job WHERE kind = 'task' AND name = ? AND cause IN ('schedule', 'catch_up')",
            arguments: [Array(task.utf8).data])
    }

    /// The newest finished run of each task that has one. Found from each task's name (`job_task_latest`), not
    /// from every finished job: with months of files that read 1.5 million rows for a few tasks' (0.3 s).
    public func latestTaskRuns() throws -> [String: TaskRunRecord] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT j.id, j.name, j.state, j.reason, j.finished_at,
                       (SELECT MIN(a.started_at) FROM attempt a WHERE a.job_id = j.id) AS started_at,
                       (SELECT a.pid IS NULL FROM attempt a WHERE a.job_id = j.id ORDER BY a.number DESC, a.id DESC LIMIT 1)
                           AS not_started
                FROM (SELECT DISTINCT name FROM job WHERE kind = 'task') AS t
                JOIN job j ON j.id = (SELECT k.id FROM job k WHERE k.kind = 'task' AND k.name = t.name
                                      AND k.state IN ('done', 'failed') ORDER BY k.finished_at DESC, k.id DESC LIMIT 1)
                """)
        var result: [String: TaskRunRecord] = [:]
        for row in rows {
            let name = String(decoding: (row["name"] as Data?)?.bytes ?? [], as: UTF8.self)
            let finishedAt: Double = row["finished_at"] ?? 0
            result[name] = TaskRunRecord(
                jobID: row["id"], state: JobState(rawValue: row["state"]) ?? .failed, reason: row["reason"],
                startedAt: row["started_at"] ?? finishedAt, finishedAt: finishedAt,
                couldNotStart: (row["not_started"] as Bool?) ?? false)
        }
        return result
    }

    /// When a task's latest run (finished or not) started, if it ever ran.
    public func lastTaskStart(task: String) throws -> UnixTime? {
        try Double.fetchOne(db, sql: lastTaskStartQuery(name: "?1"), arguments: [Array(task.utf8).data])
    }

    /// Finished attempts of a task (kind `.task`) or of a handler's file jobs (kind `.file`).
    /// Counted by the database, not read row by row: months of runs (165,000 of one task) took 4.9 s and 442 MB
    /// that way; one statement that reads the runs once takes 0.8 s and a few MB. The p95 is `RunStatistics.p95Rank`
    /// (`ceil(0.95 n) - 1` in integers), read from the slowest end, which is all SQLite's sorter then keeps.
    public func statistics(kind: JobKind, owner: String) throws -> RunStatistics {
        let ownerColumn = kind == .task ? "j.name" : "j.handler"
        // A task's runs are found from its name (`job_task_latest`) and each job's attempts; left to itself the
        // planner reads every ended attempt (`attempt_outcome`), files' included: 0.6 s instead of 0.15 s for a
        // task of 124,000 runs among 1.5 million. A handler's files have no index by handler; all ended attempts
        // are read.
        let join = kind == .task ? "job j CROSS JOIN attempt a ON a.job_id = j.id" : "attempt a JOIN job j ON j.id = a.job_id"
        let ownerValue: any DatabaseValueConvertible = kind == .task ? Array(owner.utf8).data : owner
        guard let row = try Row.fetchOne(
            db,
            sql: """
                WITH d AS MATERIALIZED (
                    SELECT a.outcome AS outcome, a.ended_at - a.started_at AS seconds FROM \(join)
                    WHERE j.kind = ? AND \(ownerColumn) = ? AND a.outcome IN ('succeeded', 'failed')),
                totals AS (
                    SELECT COUNT(*) AS runs, COUNT(*) FILTER (WHERE outcome = 'failed') AS failures, AVG(seconds) AS average,
                           COUNT(seconds) AS timed
                    FROM d)
                SELECT runs, failures, average,
                       (SELECT seconds FROM d WHERE seconds IS NOT NULL ORDER BY seconds DESC LIMIT 1
                        OFFSET (SELECT timed - 1 - min(timed - 1, (timed * 95 + 99) / 100 - 1) FROM totals)) AS p95
                FROM totals
                """,
            arguments: [kind.rawValue, ownerValue])
        else { return RunStatistics(executions: 0, failures: 0) }
        return RunStatistics(executions: row["runs"], failures: row["failures"], averageSeconds: row["average"], p95Seconds: row["p95"])
    }

    public func pendingRequests() throws -> [(id: Int64, kind: String, target: String)] {
        try Row.fetchAll(db, sql: "SELECT id, kind, target FROM request WHERE handled_at IS NULL ORDER BY id").map {
            (id: $0["id"], kind: $0["kind"], target: $0["target"])
        }
    }

    /// Uploads by state: pending (queued, running, waiting to retry), ok, failed.
    public func uploadCounts() throws -> (pending: Int, ok: Int, failed: Int) {
        var counts = (pending: 0, ok: 0, failed: 0)
        for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job WHERE kind = 'upload' GROUP BY state") {
            let n: Int = row["n"]
            switch JobState(rawValue: row["state"]) {
            case .done: counts.ok += n
            case .failed: counts.failed += n
            default: counts.pending += n
            }
        }
        return counts
    }

    /// The newest upload job of a Done file.
    public func latestUpload(path: RelativePath) throws -> JobRecord? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM job WHERE kind = 'upload' AND name = ? ORDER BY id DESC LIMIT 1", arguments: [path.bytes.data]
        ).map { JobRecord(row: $0) }
    }

    public func eventName(id: Int64) throws -> String? {
        try String.fetchOne(db, sql: "SELECT name FROM event WHERE id = ?", arguments: [id])
    }

    public func pendingEvents() throws -> [EventRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM event WHERE handled_at IS NULL ORDER BY id").map(EventRecord.init(row:))
    }

    /// Overrides set by `task enable|disable`, by task name.
    public func taskEnabledOverrides() throws -> [String: Bool] {
        var result: [String: Bool] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, enabled FROM task_state WHERE enabled IS NOT NULL") {
            result[row["name"]] = row["enabled"]
        }
        return result
    }

    /// What each task's due run waits for, as the daemon last recorded it.
    public func taskWaits() throws -> [String: [String]] {
        var result: [String: [String]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, waiting_for FROM task_state WHERE waiting_for IS NOT NULL") {
            let names: String = row["waiting_for"]
            result[row["name"]] = names.split(separator: ",").map(String.init)
        }
        return result
    }

    /// Notes whose key starts with `prefix`, with when they were written.
    public func daemonNotes(prefix: String) throws -> [(key: String, value: String, at: UnixTime)] {
        try Row.fetchAll(
            db, sql: "SELECT key, value, updated_at FROM daemon_note WHERE key LIKE ? AND value IS NOT NULL ORDER BY key",
            arguments: [prefix + "%"]
        ).map { (key: $0["key"], value: $0["value"], at: $0["updated_at"]) }
    }

    public func daemonNote(_ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM daemon_note WHERE key = ?", arguments: [key])
    }

    public func nodeNotes(prefix: String) throws -> [NodeNote] {
        try Row.fetchAll(
            db,
            sql: "SELECT node, key, value, updated_at FROM node_note WHERE key LIKE ? AND value IS NOT NULL ORDER BY node, key",
            arguments: [prefix + "%"]
        ).map { NodeNote(node: $0["node"], key: $0["key"], value: $0["value"], at: $0["updated_at"]) }
    }

    public func nodeNote(node: String, _ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM node_note WHERE node = ? AND key = ?", arguments: [node, key])
    }

    public func breakers() throws -> [BreakerRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM breaker ORDER BY node, owner").map { row in
            BreakerRecord(
                node: row["node"], owner: row["owner"], state: row["state"], consecutiveFailures: row["consecutive_failures"],
                openUntil: row["open_until"], updatedAt: row["updated_at"])
        }
    }

}

extension EventRecord {
    init(row: Row) {
        id = row["id"]
        name = row["name"]
        source = row["source"]
        createdAt = row["created_at"]
        handledAt = row["handled_at"]
    }
}

extension SQLiteTransaction {
    /// Records a task run as queued, unless one with the same slot or event exists already (then nil):
    /// the unique key is what keeps a restart, a second process or a one-shot sweep from running a slot twice.
    public func insertTaskRun(
        task: String, priority: Int, maxAttempts: Int, cause: TaskCause, slot: Int64? = nil, eventID: Int64? = nil,
        detail: String, at now: UnixTime
    ) throws -> Int64? {
        try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO job (kind, name, state, priority, max_attempts, cause, slot_ms, event_id,
                                           created_at, updated_at)
                VALUES ('task', ?, 'queued', ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [
                    Array(task.utf8).data, priority, maxAttempts, cause.rawValue, slot, eventID, now, now,
                ])
        guard db.changesCount > 0 else { return nil }
        let id = db.lastInsertedRowID
        try addTransition(jobID: id, from: nil, to: .queued, detail: detail, at: now)
        return id
    }

    /// Queues the upload of a Done file, unless one is already live for it (then nil).
    public func insertUpload(path: RelativePath, handler: String, maxAttempts: Int, at now: UnixTime) throws -> Int64? {
        try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO job (kind, name, handler, state, priority, max_attempts, created_at, updated_at)
                VALUES ('upload', ?, ?, 'queued', 5, ?, ?, ?)
                """).execute(arguments: [path.bytes.data, handler, maxAttempts, now, now])
        guard db.changesCount > 0 else { return nil }
        let id = db.lastInsertedRowID
        try addTransition(jobID: id, from: nil, to: .queued, detail: "file reached Done", at: now)
        return id
    }

    public func insertEvent(name: String, source: String, at now: UnixTime) throws -> Int64 {
        try db.execute(
            sql: "INSERT INTO event (name, source, created_at) VALUES (?, ?, ?)", arguments: [name, source, now])
        return db.lastInsertedRowID
    }

    public func insertRequest(kind: String, target: String, at now: UnixTime) throws -> Int64 {
        try db.execute(
            sql: "INSERT INTO request (kind, target, created_at) VALUES (?, ?, ?)", arguments: [kind, target, now])
        return db.lastInsertedRowID
    }

    @discardableResult
    public func markRequestHandled(id: Int64, at now: UnixTime) throws -> Bool {
        try db.execute(sql: "UPDATE request SET handled_at = ? WHERE id = ? AND handled_at IS NULL", arguments: [now, id])
        return db.changesCount == 1
    }

    public func markEventHandled(id: Int64, at now: UnixTime) throws {
        try db.execute(sql: "UPDATE event SET handled_at = ? WHERE id = ?", arguments: [now, id])
    }

    /// Records when a task was first seen, if not yet; returns the baseline in force.
    public func ensureTaskBaseline(task: String, now milliseconds: Int64) throws -> Int64 {
        try db.execute(
            sql: """
                INSERT INTO task_state (name, baseline_ms) VALUES (?, ?)
                ON CONFLICT(name) DO UPDATE SET baseline_ms = COALESCE(baseline_ms, excluded.baseline_ms)
                """,
            arguments: [task, milliseconds])
        return try Int64.fetchOne(db, sql: "SELECT baseline_ms FROM task_state WHERE name = ?", arguments: [task]) ?? milliseconds
    }

    /// Records what a task's due run waits for; nil or empty clears it.
    public func setTaskWaiting(task: String, for prerequisites: [String]?) throws {
        let value = prerequisites.flatMap { $0.isEmpty ? nil : $0.joined(separator: ",") }
        try db.execute(
            sql: "INSERT INTO task_state (name, waiting_for) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET waiting_for = excluded.waiting_for",
            arguments: [task, value])
    }

    public func setBreaker(
        node: String, owner: String, state: String, consecutiveFailures: Int, openUntil: UnixTime?, at now: UnixTime
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO breaker (node, owner, state, consecutive_failures, open_until, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(node, owner) DO UPDATE SET state = excluded.state, consecutive_failures = excluded.consecutive_failures,
                    open_until = excluded.open_until, updated_at = excluded.updated_at
                """,
            arguments: [node, owner, state, consecutiveFailures, openUntil, now])
    }

    /// Nothing to do: SQLite's write transactions run one at a time.
    public func lockDaemonNote(_ key: String) throws {}

    /// Sets or (nil) clears a note.
    public func setDaemonNote(_ key: String, _ value: String?, at now: UnixTime) throws {
        try db.execute(
            sql: """
                INSERT INTO daemon_note (key, value, updated_at) VALUES (?, ?, ?)
                ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """,
            arguments: [key, value, now])
    }

    public func setNodeNote(node: String, _ key: String, _ value: String?, at now: UnixTime) throws {
        try db.execute(
            sql: """
                INSERT INTO node_note (node, key, value, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(node, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """,
            arguments: [node, key, value, now])
    }

    public func clearBreakers(node: String?) throws {
        if let node {
            try db.execute(sql: "DELETE FROM breaker WHERE node = ?", arguments: [node])
        } else {
            try db.execute(sql: "DELETE FROM breaker")
        }
    }

    public func setTaskEnabled(task: String, _ enabled: Bool) throws {
        try db.execute(
            sql: "INSERT INTO task_state (name, enabled) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET enabled = excluded.enabled",
            arguments: [task, enabled])
    }
}
