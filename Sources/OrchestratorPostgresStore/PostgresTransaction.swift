import Foundation
import OrchestratorCore
import OrchestratorPostgres
import OrchestratorStore

/// Reads from the PostgreSQL engine, inside `PostgresStore.read` or a write transaction.
struct PostgresReader: StoreReader {
    let connection: PostgresConnection

    private func jobs(_ sql: String, _ parameters: [PostgresValue?] = []) throws -> [JobRecord] {
        try connection.execute(sql, parameters).rows.map { try JobRecord(postgres: $0) }
    }

    private func attempts(_ sql: String, _ parameters: [PostgresValue?] = []) throws -> [AttemptRecord] {
        try connection.execute(sql, parameters).rows.map { try AttemptRecord(postgres: $0) }
    }

    func job(id: Int64) throws -> JobRecord? {
        try jobs("SELECT * FROM job WHERE id = $1", [.int(id)]).first
    }

    func latestJob(kind: JobKind, name: RelativePath) throws -> JobRecord? {
        try jobs(
            "SELECT * FROM job WHERE kind = $1 AND name = $2 ORDER BY id DESC LIMIT 1",
            [.text(kind.rawValue), .bytes(name.bytes)]
        ).first
    }

    func latestJob(finalPath: RelativePath) throws -> JobRecord? {
        try jobs("SELECT * FROM job WHERE final_path = $1 ORDER BY id DESC LIMIT 1", [.bytes(finalPath.bytes)]).first
    }

    func jobs(inStates states: [JobState]) throws -> [JobRecord] {
        try jobs("SELECT * FROM job WHERE state = ANY($1::text[]) ORDER BY id", [.text(Self.textArray(states.map(\.rawValue)))])
    }

    func jobs(_ filter: JobFilter, limit: Int) throws -> [JobRecord] {
        var conditions: [String] = []
        var parameters: [PostgresValue?] = []
        func condition(_ sql: String, _ value: PostgresValue) {
            parameters.append(value)
            conditions.append(sql.replacingOccurrences(of: "?", with: "$\(parameters.count)"))
        }
        if let state = filter.state { condition("state = ?", .text(state.rawValue)) }
        if let handler = filter.handler { condition("kind != 'task' AND handler = ?", .text(handler)) }
        if let task = filter.task { condition("kind = 'task' AND name = ?", .bytes(Array(task.utf8))) }
        if let since = filter.since { condition("created_at >= ?", .double(since)) }
        if let before = filter.beforeID { condition("id < ?", .int(before)) }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        parameters.append(.int(Int64(limit)))
        return try jobs("SELECT * FROM job \(whereClause) ORDER BY id DESC LIMIT $\(parameters.count)", parameters)
    }

    func unmovedFinishedJobs() throws -> [JobRecord] {
        try jobs("SELECT * FROM job WHERE kind = 'file' AND state IN ('done', 'failed') AND final_path IS NULL ORDER BY id")
    }

    func attempts(jobID: Int64) throws -> [AttemptRecord] {
        try attempts("SELECT * FROM attempt WHERE job_id = $1 ORDER BY number, id", [.int(jobID)])
    }

    func runningAttempts() throws -> [AttemptRecord] {
        try attempts("SELECT * FROM attempt WHERE outcome = 'running' ORDER BY id")
    }

    func runningAttempt(jobID: Int64) throws -> AttemptRecord? {
        try attempts(
            "SELECT * FROM attempt WHERE job_id = $1 AND outcome = 'running' ORDER BY id DESC LIMIT 1", [.int(jobID)]
        ).first
    }

    func transitions(jobID: Int64) throws -> [(at: UnixTime, from: String?, to: String, detail: String?)] {
        try connection.execute(
            "SELECT at, from_state, to_state, detail FROM transition WHERE job_id = $1 ORDER BY id", [.int(jobID)]
        ).rows.map { row in
            (try row[0].double() ?? 0, try row[1].string(), try row[2].string() ?? "", try row[3].string())
        }
    }

    func history(limit: Int, failedOnly: Bool) throws -> [HistoryRow] {
        let filter = failedOnly ? "a.outcome IN ('failed', 'cancelled')" : "a.outcome != 'running'"
        let rows = try connection.execute(
            """
            SELECT a.*, j.id AS j_id, j.kind AS j_kind, j.name AS j_name, j.handler AS j_handler,
                   j.state AS j_state, j.priority AS j_priority, j.attempts AS j_attempts,
                   j.max_attempts AS j_max_attempts, j.not_before AS j_not_before,
                   j.final_path AS j_final_path, j.reason AS j_reason, j.created_at AS j_created_at,
                   j.updated_at AS j_updated_at, j.finished_at AS j_finished_at, j.cause AS j_cause,
                   j.slot_ms AS j_slot_ms, j.event_id AS j_event_id, j.claim_device AS j_claim_device,
                   j.claim_inode AS j_claim_inode, j.priority_set_at AS j_priority_set_at
            FROM attempt a JOIN job j ON j.id = a.job_id
            WHERE \(filter)
            ORDER BY a.ended_at DESC, a.id DESC
            LIMIT $1
            """, [.int(Int64(limit))])
        return try rows.rows.map { row in
            HistoryRow(job: try JobRecord(postgres: row, prefix: "j_"), attempt: try AttemptRecord(postgres: row))
        }
    }

    func failedWithoutFailedAttempt(limit: Int) throws -> [JobRecord] {
        try jobs(
            """
            SELECT * FROM job j
            WHERE j.state = 'failed'
                  AND NOT EXISTS (SELECT 1 FROM attempt a WHERE a.job_id = j.id AND a.outcome IN ('failed', 'cancelled'))
            ORDER BY COALESCE(j.finished_at, j.updated_at) DESC, j.id DESC
            LIMIT $1
            """, [.int(Int64(limit))])
    }

    func counts() throws -> QueueCounts {
        var byState: [JobState: Int] = [:]
        // A paused handler's waiting files stay queued here, for any daemon to claim once it is resumed: counted as
        // paused, as the single store records them.
        let sql = """
            SELECT CASE WHEN j.state = 'queued' AND j.kind = 'file'
                             AND EXISTS (SELECT FROM handler_state h WHERE h.name = j.handler AND h.paused)
                        THEN 'paused' ELSE j.state END,
                   COUNT(*)
            FROM job j GROUP BY 1
            """
        for row in try connection.execute(sql).rows {
            if let state = try row[0].string().flatMap(JobState.init(rawValue:)) { byState[state] = Int(try row[1].int64() ?? 0) }
        }
        return QueueCounts(byState: byState)
    }

    func activityPerMinute(since: UnixTime) throws -> [MinuteActivity] {
        try connection.execute(
            """
            SELECT floor(j.finished_at / 60) * 60 AS minute,
                   COUNT(*) FILTER (WHERE j.state = 'done') AS done, COUNT(*) FILTER (WHERE j.state = 'failed') AS failed,
                   AVG(a.ended_at - a.started_at) AS average, MAX(a.ended_at - a.started_at) AS longest
            FROM job j
            LEFT JOIN attempt a ON a.id = (SELECT MAX(id) FROM attempt WHERE job_id = j.id AND ended_at IS NOT NULL)
            WHERE j.finished_at >= $1 AND j.state IN ('done', 'failed')
            GROUP BY 1
            ORDER BY 1
            """, [.double(since)]
        ).rows.map { row in
            MinuteActivity(
                minute: try row[0].double() ?? 0, done: Int(try row[1].int64() ?? 0), failed: Int(try row[2].int64() ?? 0),
                averageSeconds: try row[3].double(), maxSeconds: try row[4].double())
        }
    }

    func lastRunDurations(jobIDs: [Int64]) throws -> [Int64: Double] {
        guard !jobIDs.isEmpty else { return [:] }
        let rows = try connection.execute(
            """
            SELECT job_id, ended_at - started_at FROM attempt
            WHERE id IN (SELECT MAX(id) FROM attempt WHERE job_id = ANY($1::bigint[]) AND ended_at IS NOT NULL GROUP BY job_id)
            """, [.text("{" + jobIDs.map(String.init).joined(separator: ",") + "}")]
        ).rows
        var result: [Int64: Double] = [:]
        for row in rows {
            if let id = try row[0].int64(), let seconds = try row[1].double() { result[id] = seconds }
        }
        return result
    }

    // MARK: Tasks, events, requests

    func lastScheduledSlot(task: String) throws -> Int64? {
        try connection.execute(
            "SELECT MAX(slot_ms) FROM job WHERE kind = 'task' AND name = $1 AND cause IN ('schedule', 'catch_up')",
            [.bytes(Array(task.utf8))]
        ).scalar?.int64()
    }

    /// Each task's name is found by a walk of `job_task_latest` (one step per task, not one per run), then its
    /// latest finished run from the same index: a scheduler on a shared store reads this before each run with
    /// prerequisites, and sorting months of runs (100,000) took 0.9 s. The latest is found by its end (`MAX`), which
    /// the index answers at once; ordered by end and id together, the planner sorted all of them.
    func latestTaskRuns() throws -> [String: TaskRunRecord] {
        let rows = try connection.execute(
            """
            WITH RECURSIVE names AS (
                (SELECT name FROM job WHERE kind = 'task' ORDER BY name LIMIT 1)
                UNION ALL
                SELECT (SELECT k.name FROM job k WHERE k.kind = 'task' AND k.name > names.name ORDER BY k.name LIMIT 1)
                FROM names WHERE names.name IS NOT NULL)
            SELECT j.id, j.name, j.state, j.reason, j.finished_at,
                   (SELECT MIN(a.started_at) FROM attempt a WHERE a.job_id = j.id) AS started_at,
                   (SELECT a.pid IS NULL FROM attempt a WHERE a.job_id = j.id ORDER BY a.number DESC, a.id DESC LIMIT 1)
                       AS not_started
            FROM names
            CROSS JOIN LATERAL (
                SELECT * FROM job k
                WHERE k.kind = 'task' AND k.name = names.name AND k.state IN ('done', 'failed')
                  AND k.finished_at = (SELECT MAX(m.finished_at) FROM job m
                                       WHERE m.kind = 'task' AND m.name = names.name AND m.state IN ('done', 'failed'))
                ORDER BY k.id DESC LIMIT 1) j
            WHERE names.name IS NOT NULL
            """
        ).rows
        var result: [String: TaskRunRecord] = [:]
        for row in rows {
            let name = String(decoding: try row.cell("name").bytes() ?? [], as: UTF8.self)
            let finishedAt = try row.cell("finished_at").double() ?? 0
            result[name] = TaskRunRecord(
                jobID: try row.cell("id").int64() ?? 0,
                state: JobState(rawValue: try row.cell("state").string() ?? "") ?? .failed,
                reason: try row.cell("reason").string(), startedAt: try row.cell("started_at").double() ?? finishedAt,
                finishedAt: finishedAt, couldNotStart: try row.cell("not_started").bool() ?? false)
        }
        return result
    }

    func lastTaskStart(task: String) throws -> UnixTime? {
        try connection.execute(
            lastTaskStartQuery(name: "$1"), [.bytes(Array(task.utf8))]
        ).scalar?.double()
    }

    func statistics(kind: JobKind, owner: String) throws -> RunStatistics {
        let ownerCondition = kind == .task ? "j.name = $2" : "j.handler = $2"
        let ownerValue: PostgresValue = kind == .task ? .bytes(Array(owner.utf8)) : .text(owner)
        // Counted by the server, not read row by row (months of runs took seconds and hundreds of MB that way).
        guard let row = try connection.execute(
            """
            SELECT COUNT(*), COUNT(*) FILTER (WHERE a.outcome = 'failed'), AVG(a.ended_at - a.started_at),
                   percentile_disc(0.95) WITHIN GROUP (ORDER BY a.ended_at - a.started_at)
            FROM attempt a JOIN job j ON j.id = a.job_id
            WHERE j.kind = $1 AND \(ownerCondition) AND a.outcome IN ('succeeded', 'failed')
            """, [.text(kind.rawValue), ownerValue]
        ).rows.first
        else { return RunStatistics(executions: 0, failures: 0) }
        return RunStatistics(
            executions: Int(try row[0].int64() ?? 0), failures: Int(try row[1].int64() ?? 0), averageSeconds: try row[2].double(),
            p95Seconds: try row[3].double())
    }

    func taskEnabledOverrides() throws -> [String: Bool] {
        var result: [String: Bool] = [:]
        for row in try connection.execute("SELECT name, enabled FROM task_state WHERE enabled IS NOT NULL").rows {
            if let name = try row[0].string(), let enabled = try row[1].bool() { result[name] = enabled }
        }
        return result
    }

    func taskWaits() throws -> [String: [String]] {
        var result: [String: [String]] = [:]
        for row in try connection.execute("SELECT name, waiting_for FROM task_state WHERE waiting_for IS NOT NULL").rows {
            if let name = try row[0].string(), let names = try row[1].string() {
                result[name] = names.split(separator: ",").map(String.init)
            }
        }
        return result
    }

    func eventName(id: Int64) throws -> String? {
        try connection.execute("SELECT name FROM event WHERE id = $1", [.int(id)]).scalar?.string()
    }

    func eventBodyPath(id: Int64) throws -> [UInt8]? {
        try connection.execute("SELECT body_path FROM event WHERE id = $1", [.int(id)]).scalar?.bytes()
    }

    func pendingEvents() throws -> [EventRecord] {
        try connection.execute("SELECT id, name, source, created_at, handled_at FROM event WHERE handled_at IS NULL ORDER BY id")
            .rows.map { row in
                EventRecord(
                    id: try row[0].int64() ?? 0, name: try row[1].string() ?? "", source: try row[2].string() ?? "",
                    createdAt: try row[3].double() ?? 0, handledAt: try row[4].double())
            }
    }

    func pendingRequests() throws -> [(id: Int64, kind: String, target: String)] {
        try connection.execute("SELECT id, kind, target FROM request WHERE handled_at IS NULL ORDER BY id").rows.map { row in
            (id: try row[0].int64() ?? 0, kind: try row[1].string() ?? "", target: try row[2].string() ?? "")
        }
    }

    func requestAnswer(id: Int64) throws -> RequestAnswer? {
        try connection.execute("SELECT handled_at IS NOT NULL, result FROM request WHERE id = $1", [.int(id)]).rows.first.map { row in
            RequestAnswer(handled: try row[0].bool() ?? false, result: try row[1].string())
        }
    }

    // MARK: Uploads, handlers, breakers, notes

    func uploadCounts() throws -> (pending: Int, ok: Int, failed: Int) {
        var counts = (pending: 0, ok: 0, failed: 0)
        for row in try connection.execute("SELECT state, COUNT(*) FROM job WHERE kind = 'upload' GROUP BY state").rows {
            let n = Int(try row[1].int64() ?? 0)
            switch JobState(rawValue: try row[0].string() ?? "") {
            case .done: counts.ok += n
            case .failed: counts.failed += n
            default: counts.pending += n
            }
        }
        return counts
    }

    func latestUpload(path: RelativePath) throws -> JobRecord? {
        try jobs("SELECT * FROM job WHERE kind = 'upload' AND name = $1 ORDER BY id DESC LIMIT 1", [.bytes(path.bytes)]).first
    }

    func pausedHandlers() throws -> Set<String> {
        Set(try connection.execute("SELECT name FROM handler_state WHERE paused").rows.compactMap { try $0[0].string() })
    }

    func breakers() throws -> [BreakerRecord] {
        try connection.execute(
            "SELECT node, owner, state, consecutive_failures, open_until, updated_at FROM breaker ORDER BY node, owner"
        ).rows.map { row in
            BreakerRecord(
                node: try row[0].string() ?? "", owner: try row[1].string() ?? "", state: try row[2].string() ?? "",
                consecutiveFailures: Int(try row[3].int64() ?? 0), openUntil: try row[4].double(),
                updatedAt: try row[5].double() ?? 0)
        }
    }

    func nodeNotes(prefix: String) throws -> [NodeNote] {
        try connection.execute(
            """
            SELECT node, key, value, updated_at FROM node_note WHERE starts_with(key, $1) AND value IS NOT NULL
            ORDER BY node, key
            """, [.text(prefix)]
        ).rows.map { row in
            NodeNote(
                node: try row[0].string() ?? "", key: try row[1].string() ?? "", value: try row[2].string() ?? "",
                at: try row[3].double() ?? 0)
        }
    }

    func nodeNote(node: String, _ key: String) throws -> String? {
        try connection.execute("SELECT value FROM node_note WHERE node = $1 AND key = $2", [.text(node), .text(key)]).scalar?
            .string()
    }

    func daemonNotes(prefix: String) throws -> [(key: String, value: String, at: UnixTime)] {
        try connection.execute(
            "SELECT key, value, updated_at FROM daemon_note WHERE starts_with(key, $1) AND value IS NOT NULL ORDER BY key",
            [.text(prefix)]
        ).rows.map { row in (key: try row[0].string() ?? "", value: try row[1].string() ?? "", at: try row[2].double() ?? 0) }
    }

    func daemonNote(_ key: String) throws -> String? {
        try connection.execute("SELECT value FROM daemon_note WHERE key = $1", [.text(key)]).scalar?.string()
    }

    // MARK: Retention (the same rules as SQLite's, see StorePrune.swift)

    func taskRunsToKeep() throws -> Set<Int64> {
        let rows = try connection.execute(
            """
            SELECT (SELECT id FROM job WHERE kind = 'task' AND name = t.name AND state IN ('done', 'failed')
                    ORDER BY finished_at DESC, id DESC LIMIT 1),
                   (SELECT id FROM job WHERE kind = 'task' AND name = t.name AND slot_ms IS NOT NULL
                      AND cause IN ('schedule', 'catch_up') ORDER BY slot_ms DESC LIMIT 1),
                   (SELECT a.job_id FROM attempt a JOIN job j ON j.id = a.job_id WHERE j.kind = 'task' AND j.name = t.name
                    ORDER BY a.started_at DESC, a.id DESC LIMIT 1)
            FROM (SELECT DISTINCT name FROM job WHERE kind = 'task') t
            """
        ).rows
        var keep: Set<Int64> = []
        for row in rows {
            for column in 0..<3 { if let id = try row[column].int64() { keep.insert(id) } }
        }
        return keep
    }

    func prunableJobs(finishedBefore cutoff: UnixTime, keeping: Set<Int64>, limit: Int) throws -> [Int64] {
        try connection.execute(
            Self.prunableJobsSQL + " ORDER BY finished_at LIMIT $3",
            [.double(cutoff), .text(Self.idArray(keeping)), .int(Int64(limit))]
        ).rows.compactMap { try $0[0].int64() }
    }

    func pruneCounts(finishedBefore cutoff: UnixTime) throws -> PruneCounts {
        let jobs = "SELECT id FROM (" + Self.prunableJobsSQL + ") prunable"
        let keep: PostgresValue = .text(Self.idArray(try taskRunsToKeep()))
        func count(_ sql: String, _ parameters: [PostgresValue?]) throws -> Int {
            Int(try connection.execute(sql, parameters).scalar?.int64() ?? 0)
        }
        return PruneCounts(
            jobs: try count("SELECT COUNT(*) FROM (\(jobs)) counted", [.double(cutoff), keep]),
            attempts: try count("SELECT COUNT(*) FROM attempt WHERE job_id IN (\(jobs))", [.double(cutoff), keep]),
            transitions: try count("SELECT COUNT(*) FROM transition WHERE job_id IN (\(jobs))", [.double(cutoff), keep]),
            events: try count("SELECT COUNT(*) FROM (\(Self.prunableEventsSQL)) counted", [.double(cutoff)]),
            requests: try count("SELECT COUNT(*) FROM (\(Self.prunableRequestsSQL)) counted", [.double(cutoff)]))
    }

    func daemonsToForget(lastHeardBefore cutoff: UnixTime, silentFor: Double, keeping node: String) throws -> Int {
        Int(try connection.execute(
            "SELECT COUNT(*) FROM (\(Self.forgettableDaemons)) AS gone", [.double(cutoff), .double(silentFor), .text(node)]
        ).scalar?.int64() ?? 0)
    }

    /// Names of the daemons `forgetDaemons` deletes: $1 the cutoff, $2 the silence, $3 the name kept.
    static let forgettableDaemons = """
        SELECT name FROM node AS n
        WHERE heartbeat_at < $1 AND heartbeat_at < \(serverClock) - $2 AND name != $3
          AND NOT EXISTS (SELECT 1 FROM job WHERE job.owner = n.name AND job.state = 'running')
        """

    /// $1 the cutoff, $2 the ids to keep (an int8[] literal).
    static let prunableJobsSQL = """
        SELECT id FROM job
        WHERE state IN ('done', 'failed') AND finished_at < $1
          AND (kind != 'file' OR final_path IS NOT NULL)
          AND id < (SELECT MAX(id) FROM job)
          AND (event_id IS NULL OR event_id NOT IN (SELECT id FROM event WHERE handled_at IS NULL))
          AND id != ALL($2::bigint[])
        """

    static let liveStates = JobState.allCases.filter { !$0.isTerminal }.map { "'\($0.rawValue)'" }.joined(separator: ", ")

    /// $1 the cutoff.
    static let prunableEventsSQL = """
        SELECT id FROM event
        WHERE handled_at IS NOT NULL AND handled_at < $1
          AND id < (SELECT MAX(id) FROM event)
          AND id NOT IN (SELECT event_id FROM job WHERE state IN (\(liveStates)) AND event_id IS NOT NULL)
        """

    /// $1 the cutoff.
    static let prunableRequestsSQL = """
        SELECT id FROM request WHERE handled_at IS NOT NULL AND handled_at < $1 AND id < (SELECT MAX(id) FROM request)
        """

    static func idArray(_ ids: some Collection<Int64>) -> String { "{" + ids.map(String.init).joined(separator: ",") + "}" }

    /// An array literal of plain words (state names: no quoting needed).
    static func textArray(_ words: [String]) -> String { "{" + words.joined(separator: ",") + "}" }
}

/// Writes to the PostgreSQL engine, inside one transaction opened by `PostgresStore.write`.
/// Job ids taken from the job table's sequence ahead of need, so that inserting a job waits for no answer. One
/// daemon's jobs get increasing ids; between daemons ids come in blocks, so among jobs of equal priority one
/// daemon's may be claimed up to `block` places before another's registered a moment earlier. Used only under the
/// writer connection's lock.
final class JobIDPool {
    private var ids: ArraySlice<Int64> = []
    static let block = 16

    func take(_ connection: PostgresConnection) throws -> Int64 {
        if ids.isEmpty {
            ids = try connection.execute(
                "SELECT nextval(pg_get_serial_sequence('job', 'id')) FROM generate_series(1, $1)", [.int(Int64(Self.block))]
            ).rows.compactMap { try $0[0].int64() }[...]
        }
        guard let id = ids.popFirst() else { throw PostgresError(kind: .client, message: "the job id sequence gave no value") }
        return id
    }

    /// After a write that failed (see `PostgresStore.write`).
    func discard() { ids = [] }
}

struct PostgresTransaction: StoreTransaction {
    let connection: PostgresConnection
    /// Set by every write that makes a job claimable; `PostgresStore.write` then announces it with the COMMIT.
    let wakeup: WakeupMark
    let jobIDs: JobIDPool

    var reader: any StoreReader { PostgresReader(connection: connection) }

    private func insertedID(_ sql: String, _ parameters: [PostgresValue?]) throws -> Int64? {
        try connection.execute(sql, parameters).scalar?.int64()
    }

    func addTransition(jobID: Int64, from: JobState?, to: JobState, detail: String?, at now: UnixTime) throws {
        try connection.executeLater(
            "INSERT INTO transition (job_id, at, from_state, to_state, detail) VALUES ($1, $2, $3, $4, $5)",
            [.int(jobID), .double(now), from.map { .text($0.rawValue) }, .text(to.rawValue), detail.map { .text($0) }])
    }

    func insertJob(
        kind: JobKind, name: RelativePath, handler: String?, state: JobState, priority: Int, maxAttempts: Int,
        reason: String?, detail: String?, claim: (device: UInt64, inode: UInt64)?, at now: UnixTime
    ) throws -> Int64 {
        // The job and its first transition in one statement, with an id taken ahead: nothing to wait for, so it goes
        // with the next statement that is.
        let id = try jobIDs.take(connection)
        try connection.executeLater(
            """
            WITH inserted AS (
                INSERT INTO job (id, kind, name, handler, state, priority, max_attempts, reason, created_at, updated_at,
                                 finished_at, claim_device, claim_inode)
                VALUES ($13, $1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11) RETURNING id)
            INSERT INTO transition (job_id, at, from_state, to_state, detail)
            SELECT id, $8, NULL, $4, $12 FROM inserted
            """,
            [
                .text(kind.rawValue), .bytes(name.bytes), handler.map { .text($0) }, .text(state.rawValue),
                .int(Int64(priority)), .int(Int64(maxAttempts)), reason.map { .text($0) }, .double(now),
                state.isTerminal ? .double(now) : nil, claim.map { .int(Int64(bitPattern: $0.device)) },
                claim.map { .int(Int64(bitPattern: $0.inode)) }, detail.map { .text($0) }, .int(id),
            ])
        if state == .queued { wakeup.needed = true }
        return id
    }

    func setState(
        jobID: Int64, from: JobState?, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime
    ) throws {
        // The update and its transition in one statement (a data-modifying WITH runs whether or not it is read), sent
        // with the next one.
        try connection.executeLater(
            """
            WITH updated AS (
                UPDATE job SET state = $1, attempts = COALESCE($2, attempts), not_before = $3,
                               reason = COALESCE($4, reason), updated_at = $5,
                               finished_at = CASE WHEN $6 THEN $5 ELSE finished_at END
                WHERE id = $7)
            INSERT INTO transition (job_id, at, from_state, to_state, detail) VALUES ($7, $5, $8, $1, $9)
            """,
            [
                .text(state.rawValue), attempts.map { .int(Int64($0)) }, notBefore.map { .double($0) },
                reason.map { .text($0) }, .double(now), .bool(state.isTerminal), .int(jobID), from.map { .text($0.rawValue) },
                (detail ?? reason).map { .text($0) },
            ])
        // Also queued to queued: a new `not_before` may be earlier than what other daemons sleep until.
        if state == .queued { wakeup.needed = true }
    }

    func addNote(jobID: Int64, state: JobState, detail: String, at now: UnixTime) throws {
        try addTransition(jobID: jobID, from: state, to: state, detail: detail, at: now)
    }

    func setPriority(jobID: Int64, state: JobState, priority: Int, at now: UnixTime) throws {
        try connection.executeLater(
            "UPDATE job SET priority = $1, priority_set_at = $2, updated_at = $2 WHERE id = $3",
            [.int(Int64(priority)), .double(now), .int(jobID)])
        try addNote(jobID: jobID, state: state, detail: "priority set to \(priority)", at: now)
    }

    func setRunSettings(jobID: Int64, handler: String?, maxAttempts: Int) throws {
        try connection.executeLater(
            "UPDATE job SET handler = COALESCE($1, handler), max_attempts = $2 WHERE id = $3",
            [handler.map { .text($0) }, .int(Int64(maxAttempts)), .int(jobID)])
    }

    func setFinalPath(jobID: Int64, _ path: RelativePath) throws {
        try connection.executeLater("UPDATE job SET final_path = $1 WHERE id = $2", [.bytes(path.bytes), .int(jobID)])
    }

    func startAttempt(jobID: Int64, number: Int, logPath: [UInt8], at now: UnixTime) throws -> Int64 {
        guard let id = try insertedID(
            "INSERT INTO attempt (job_id, number, outcome, started_at, log_path) VALUES ($1, $2, 'running', $3, $4) RETURNING id",
            [.int(jobID), .int(Int64(number)), .double(now), .bytes(logPath)])
        else { throw PostgresError(kind: .client, message: "INSERT INTO attempt returned no id") }
        return id
    }

    func recordStartedAttempt(
        jobID: Int64, number: Int, logPath: [UInt8], pid: Int32, startTime: UInt64?, at now: UnixTime,
        ended: (result: AttemptResult, at: UnixTime)?
    ) throws {
        let started: [PostgresValue?] = [
            .int(jobID), .int(Int64(number)), .double(now), .bytes(logPath), .int(Int64(pid)),
            startTime.map { .int(Int64(bitPattern: $0)) },
        ]
        guard let (result, endedAt) = ended else {
            try connection.executeLater(
                """
                INSERT INTO attempt (job_id, number, outcome, started_at, log_path, pid, start_time)
                VALUES ($1, $2, 'running', $3, $4, $5, $6)
                """, started)
            return
        }
        // The result's parameters come first, in `resultColumns`' order ($1-$10).
        try connection.executeLater(
            """
            INSERT INTO attempt (outcome, ended_at, exit_code, signal, timed_out, user_cpu, system_cpu, max_rss_kib,
                                 stderr_tail, reason, job_id, number, started_at, log_path, pid, start_time)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
            """, Self.parameters(result, at: endedAt) + started)
    }

    func setAttemptProcess(attemptID: Int64, pid: Int32, startTime: UInt64?) throws {
        try connection.executeLater(
            "UPDATE attempt SET pid = $1, start_time = $2 WHERE id = $3",
            [.int(Int64(pid)), startTime.map { .int(Int64(bitPattern: $0)) }, .int(attemptID)])
    }

    static let resultColumns = """
        outcome = $1, ended_at = $2, exit_code = $3, signal = $4, timed_out = $5, user_cpu = $6, system_cpu = $7,
        max_rss_kib = $8, stderr_tail = $9, reason = $10
        """

    static func parameters(_ result: AttemptResult, at now: UnixTime) -> [PostgresValue?] {
        [
            .text(result.outcome.rawValue), .double(now), result.exitCode.map { .int(Int64($0)) },
            result.signal.map { .int(Int64($0)) }, .bool(result.timedOut), result.userCPU.map { .double($0) },
            result.systemCPU.map { .double($0) }, result.maxRSSKiB.map { .int(Int64($0)) }, .bytes(result.stderrTail),
            result.reason.map { .text($0) },
        ]
    }

    func finishAttempt(attemptID: Int64, _ result: AttemptResult, at now: UnixTime) throws {
        try connection.executeLater(
            "UPDATE attempt SET \(Self.resultColumns) WHERE id = $11", Self.parameters(result, at: now) + [.int(attemptID)])
    }

    func finishRunningAttempt(jobID: Int64, _ result: AttemptResult, at now: UnixTime) throws {
        try connection.executeLater(
            "UPDATE attempt SET \(Self.resultColumns) WHERE job_id = $11 AND outcome = 'running'",
            Self.parameters(result, at: now) + [.int(jobID)])
    }

    // MARK: Tasks, uploads, events, requests

    func insertTaskRun(
        task: String, priority: Int, maxAttempts: Int, cause: TaskCause, slot: Int64?, eventID: Int64?,
        detail: String, at now: UnixTime
    ) throws -> Int64? {
        // ON CONFLICT DO NOTHING: the unique slot and event keys decide, also against another daemon's insert.
        guard let id = try insertedID(
            """
            INSERT INTO job (kind, name, state, priority, max_attempts, cause, slot_ms, event_id, created_at, updated_at)
            VALUES ('task', $1, 'queued', $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING RETURNING id
            """,
            [
                .bytes(Array(task.utf8)), .int(Int64(priority)), .int(Int64(maxAttempts)), .text(cause.rawValue),
                slot.map { .int($0) }, eventID.map { .int($0) }, .double(now),
            ])
        else { return nil }
        try addTransition(jobID: id, from: nil, to: .queued, detail: detail, at: now)
        wakeup.needed = true
        return id
    }

    func insertUpload(path: RelativePath, handler: String, maxAttempts: Int, at now: UnixTime) throws -> Int64? {
        guard let id = try insertedID(
            """
            INSERT INTO job (kind, name, handler, state, priority, max_attempts, created_at, updated_at)
            VALUES ('upload', $1, $2, 'queued', 5, $3, $4, $4) ON CONFLICT DO NOTHING RETURNING id
            """, [.bytes(path.bytes), .text(handler), .int(Int64(maxAttempts)), .double(now)])
        else { return nil }
        try addTransition(jobID: id, from: nil, to: .queued, detail: "file reached Done", at: now)
        wakeup.needed = true
        return id
    }

    func insertEvent(name: String, source: String, at now: UnixTime) throws -> Int64 {
        guard let id = try insertedID(
            "INSERT INTO event (name, source, created_at) VALUES ($1, $2, $3) RETURNING id",
            [.text(name), .text(source), .double(now)])
        else { throw PostgresError(kind: .client, message: "INSERT INTO event returned no id") }
        return id
    }

    func setEventBodyPath(id: Int64, _ path: [UInt8]) throws {
        try connection.execute("UPDATE event SET body_path = $1 WHERE id = $2", [.bytes(path), .int(id)])
    }

    func markEventHandled(id: Int64, at now: UnixTime) throws {
        try connection.execute("UPDATE event SET handled_at = $1 WHERE id = $2", [.double(now), .int(id)])
    }

    func insertRequest(kind: String, target: String, at now: UnixTime) throws -> Int64 {
        guard let id = try insertedID(
            "INSERT INTO request (kind, target, created_at) VALUES ($1, $2, $3) RETURNING id",
            [.text(kind), .text(target), .double(now)])
        else { throw PostgresError(kind: .client, message: "INSERT INTO request returned no id") }
        return id
    }

    @discardableResult
    func markRequestHandled(id: Int64, at now: UnixTime) throws -> Bool {
        try connection.execute(
            "UPDATE request SET handled_at = $1 WHERE id = $2 AND handled_at IS NULL", [.double(now), .int(id)]
        ).affectedRows == 1
    }

    func answerRequest(id: Int64, result: String, at now: UnixTime) throws {
        try connection.execute(
            "UPDATE request SET handled_at = $1, result = $2 WHERE id = $3", [.double(now), .text(result), .int(id)])
    }

    func ensureTaskBaseline(task: String, now milliseconds: Int64) throws -> Int64 {
        try connection.execute(
            """
            INSERT INTO task_state (name, baseline_ms) VALUES ($1, $2)
            ON CONFLICT (name) DO UPDATE SET baseline_ms = COALESCE(task_state.baseline_ms, excluded.baseline_ms)
            RETURNING baseline_ms
            """, [.text(task), .int(milliseconds)]
        ).scalar?.int64() ?? milliseconds
    }

    func setTaskWaiting(task: String, for prerequisites: [String]?) throws {
        let value = prerequisites.flatMap { $0.isEmpty ? nil : $0.joined(separator: ",") }
        try connection.execute(
            "INSERT INTO task_state (name, waiting_for) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET waiting_for = excluded.waiting_for",
            [.text(task), value.map { .text($0) }])
    }

    func setTaskEnabled(task: String, _ enabled: Bool) throws {
        try connection.execute(
            "INSERT INTO task_state (name, enabled) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled",
            [.text(task), .bool(enabled)])
    }

    // MARK: Handlers, breakers, notes

    func setHandlerPaused(_ name: String, _ paused: Bool, at now: UnixTime) throws {
        try connection.execute(
            """
            INSERT INTO handler_state (name, paused, updated_at) VALUES ($1, $2, $3)
            ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at
            """, [.text(name), .bool(paused), .double(now)])
    }

    func setBreaker(
        node: String, owner: String, state: String, consecutiveFailures: Int, openUntil: UnixTime?, at now: UnixTime
    ) throws {
        try connection.execute(
            """
            INSERT INTO breaker (node, owner, state, consecutive_failures, open_until, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (node, owner) DO UPDATE SET state = excluded.state, consecutive_failures = excluded.consecutive_failures,
                open_until = excluded.open_until, updated_at = excluded.updated_at
            """,
            [
                .text(node), .text(owner), .text(state), .int(Int64(consecutiveFailures)), openUntil.map { .double($0) },
                .double(now),
            ])
    }

    func clearBreakers(node: String?) throws {
        if let node {
            try connection.execute("DELETE FROM breaker WHERE node = $1", [.text(node)])
        } else {
            try connection.execute("DELETE FROM breaker")
        }
    }

    func setNodeNote(node: String, _ key: String, _ value: String?, at now: UnixTime) throws {
        try connection.execute(
            """
            INSERT INTO node_note (node, key, value, updated_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (node, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """, [.text(node), .text(key), value.map { .text($0) }, .double(now)])
    }

    /// The first key of a store note's two-key advisory lock ("ornt"); tasks' locks are another space.
    static let noteLockClass: Int32 = 0x6F72_6E74

    func lockDaemonNote(_ key: String) throws {
        try connection.execute("SELECT pg_advisory_xact_lock(\(Self.noteLockClass), hashtext($1))", [.text(key)])
    }

    func setDaemonNote(_ key: String, _ value: String?, at now: UnixTime) throws {
        try connection.execute(
            """
            INSERT INTO daemon_note (key, value, updated_at) VALUES ($1, $2, $3)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """, [.text(key), value.map { .text($0) }, .double(now)])
    }

    // MARK: Retention

    func deleteJobs(_ ids: [Int64]) throws -> PruneCounts {
        guard !ids.isEmpty else { return PruneCounts() }
        let list: PostgresValue = .text(PostgresReader.idArray(ids))
        var counts = PruneCounts()
        counts.transitions = try connection.execute("DELETE FROM transition WHERE job_id = ANY($1::bigint[])", [list]).affectedRows
        counts.attempts = try connection.execute("DELETE FROM attempt WHERE job_id = ANY($1::bigint[])", [list]).affectedRows
        counts.jobs = try connection.execute("DELETE FROM job WHERE id = ANY($1::bigint[])", [list]).affectedRows
        return counts
    }

    func forgetDaemons(lastHeardBefore cutoff: UnixTime, silentFor: Double, keeping node: String) throws -> Int {
        let parameters: [PostgresValue?] = [.double(cutoff), .double(silentFor), .text(node)]
        let gone = PostgresReader.forgettableDaemons
        try connection.execute("DELETE FROM node_note WHERE node IN (\(gone))", parameters)
        try connection.execute("DELETE FROM breaker WHERE node IN (\(gone))", parameters)
        return try connection.execute("DELETE FROM node WHERE name IN (\(gone))", parameters).affectedRows
    }

    func deleteHandledEventsAndRequests(before cutoff: UnixTime, limit: Int) throws -> PruneCounts {
        var counts = PruneCounts()
        let parameters: [PostgresValue?] = [.double(cutoff), .int(Int64(limit))]
        // Bodies go first: a crash in between leaves an old handled event without its body, never a body file
        // that no row names.
        let bodies = try connection.execute(
            "SELECT body_path FROM event WHERE body_path IS NOT NULL AND id IN (\(PostgresReader.prunableEventsSQL) LIMIT $2)",
            parameters
        ).rows.compactMap { try $0[0].bytes() }
        for body in bodies { unlink(String(decoding: body, as: UTF8.self)) }
        counts.events = try connection.execute(
            "DELETE FROM event WHERE id IN (\(PostgresReader.prunableEventsSQL) LIMIT $2)", parameters).affectedRows
        counts.requests = try connection.execute(
            "DELETE FROM request WHERE id IN (\(PostgresReader.prunableRequestsSQL) LIMIT $2)", parameters).affectedRows
        return counts
    }

    func markLogPruned(jobID: Int64, logPath: [UInt8], at now: UnixTime) throws {
        try connection.execute(
            "UPDATE attempt SET log_pruned_at = $1 WHERE job_id = $2 AND log_path = $3",
            [.double(now), .int(jobID), .bytes(logPath)])
    }
}

extension JobRecord {
    init(postgres row: PostgresRow, prefix: String = "") throws {
        func cell(_ name: String) throws -> PostgresCell { try row.cell(prefix + name) }
        self.init(
            id: try cell("id").int64() ?? 0, kind: JobKind(rawValue: try cell("kind").string() ?? "") ?? .file,
            name: RelativePath(try cell("name").bytes() ?? []), handler: try cell("handler").string(),
            state: JobState(rawValue: try cell("state").string() ?? "") ?? .failed,
            priority: Int(try cell("priority").int64() ?? 5), attempts: Int(try cell("attempts").int64() ?? 0),
            maxAttempts: Int(try cell("max_attempts").int64() ?? 1),
            finalPath: try cell("final_path").bytes().map(RelativePath.init),
            claimDevice: try cell("claim_device").int64().map { UInt64(bitPattern: $0) },
            claimInode: try cell("claim_inode").int64().map { UInt64(bitPattern: $0) }, at: try cell("created_at").double() ?? 0)
        notBefore = try cell("not_before").double()
        reason = try cell("reason").string()
        updatedAt = try cell("updated_at").double() ?? createdAt
        finishedAt = try cell("finished_at").double()
        cause = try cell("cause").string()
        slotMs = try cell("slot_ms").int64()
        eventID = try cell("event_id").int64()
        prioritySetByHand = try cell("priority_set_at").double() != nil
        if row.columns.contains(where: { $0.name == prefix + "owner" }) {
            owner = try cell("owner").string()
            leaseUntil = try cell("lease_until").double()
            claims = Int(try cell("claims").int64() ?? 0)
        }
    }
}

extension AttemptRecord {
    init(postgres row: PostgresRow) throws {
        self.init(
            id: try row.cell("id").int64() ?? 0, jobID: try row.cell("job_id").int64() ?? 0,
            number: Int(try row.cell("number").int64() ?? 0),
            outcome: AttemptOutcome(rawValue: try row.cell("outcome").string() ?? "") ?? .failed,
            startedAt: try row.cell("started_at").double() ?? 0, endedAt: try row.cell("ended_at").double(),
            pid: try row.cell("pid").int64().map { Int32(truncatingIfNeeded: $0) },
            startTime: try row.cell("start_time").int64().map { UInt64(bitPattern: $0) },
            exitCode: try row.cell("exit_code").int64().map { Int32(truncatingIfNeeded: $0) },
            signal: try row.cell("signal").int64().map { Int32(truncatingIfNeeded: $0) },
            timedOut: try row.cell("timed_out").bool() ?? false, userCPU: try row.cell("user_cpu").double(),
            systemCPU: try row.cell("system_cpu").double(), maxRSSKiB: try row.cell("max_rss_kib").int64().map { Int($0) },
            logPath: try row.cell("log_path").bytes(), stderrTail: try row.cell("stderr_tail").bytes() ?? [],
            reason: try row.cell("reason").string(), logPrunedAt: try row.cell("log_pruned_at").double())
    }
}
