import Foundation
import GRDB
import OrchestratorCore

/// Reads from the SQLite engine, usable inside or outside a write transaction.
public struct SQLiteReader: StoreReader {
    let db: Database

    public func job(id: Int64) throws -> JobRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map { JobRecord(row: $0) }
    }

    /// The newest job for a name (any state).
    public func latestJob(kind: JobKind, name: RelativePath) throws -> JobRecord? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM job WHERE kind = ? AND name = ? ORDER BY id DESC LIMIT 1",
            arguments: [kind.rawValue, name.bytes.data]
        ).map { JobRecord(row: $0) }
    }

    /// The newest job whose file ended under this path in Done/ or Failed/.
    public func latestJob(finalPath: RelativePath) throws -> JobRecord? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM job WHERE final_path = ? ORDER BY id DESC LIMIT 1",
            arguments: [finalPath.bytes.data]
        ).map { JobRecord(row: $0) }
    }

    public func jobs(inStates states: [JobState]) throws -> [JobRecord] {
        let marks = states.map { _ in "?" }.joined(separator: ",")
        return try Row.fetchAll(
            db, sql: "SELECT * FROM job WHERE state IN (\(marks)) ORDER BY id",
            arguments: StatementArguments(states.map(\.rawValue))
        ).map { JobRecord(row: $0) }
    }

    /// Finished jobs whose file has not been moved out of the processing area yet.
    public func unmovedFinishedJobs() throws -> [JobRecord] {
        try Row.fetchAll(
            db, sql: "SELECT * FROM job WHERE kind = 'file' AND state IN ('done','failed') AND final_path IS NULL"
        ).map { JobRecord(row: $0) }
    }

    public func attempts(jobID: Int64) throws -> [AttemptRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM attempt WHERE job_id = ? ORDER BY number, id", arguments: [jobID])
            .map(AttemptRecord.init(row:))
    }

    public func runningAttempts() throws -> [AttemptRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM attempt WHERE outcome = 'running' ORDER BY id")
            .map(AttemptRecord.init(row:))
    }

    public func transitions(jobID: Int64) throws -> [(at: UnixTime, from: String?, to: String, detail: String?)] {
        try Row.fetchAll(
            db, sql: "SELECT at, from_state, to_state, detail FROM transition WHERE job_id = ? ORDER BY id",
            arguments: [jobID]
        ).map { ($0["at"], $0["from_state"], $0["to_state"], $0["detail"]) }
    }

    /// Attempts, newest first; `failedOnly` keeps attempts that failed or were cancelled.
    public func history(limit: Int, failedOnly: Bool) throws -> [HistoryRow] {
        // Every attempt that is not running has ended (`ended_at` is written with its outcome). The failed ones are
        // few, but the planner would take `attempt_outcome` and sort them all; their own index is in end order.
        let (index, filter) = failedOnly
            ? ("attempt_failed_ended", "a.outcome IN ('failed', 'cancelled')") : ("attempt_ended", "a.outcome != 'running'")
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT a.*, j.id AS j_id, j.kind AS j_kind, j.name AS j_name, j.handler AS j_handler,
                       j.state AS j_state, j.priority AS j_priority, j.attempts AS j_attempts,
                       j.max_attempts AS j_max_attempts, j.not_before AS j_not_before,
                       j.final_path AS j_final_path, j.reason AS j_reason, j.created_at AS j_created_at,
                       j.updated_at AS j_updated_at, j.finished_at AS j_finished_at, j.cause AS j_cause,
                       j.slot_ms AS j_slot_ms, j.event_id AS j_event_id
                FROM attempt a INDEXED BY \(index) JOIN job j ON j.id = a.job_id
                WHERE \(filter)
                ORDER BY a.ended_at DESC, a.id DESC
                LIMIT ?
                """,
            arguments: [limit])
        return rows.map { row in HistoryRow(job: JobRecord(row: row, prefix: "j_"), attempt: AttemptRecord(row: row)) }
    }

    public func failedWithoutFailedAttempt(limit: Int) throws -> [JobRecord] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT * FROM job j
                WHERE j.state = 'failed'
                  AND NOT EXISTS (SELECT 1 FROM attempt a WHERE a.job_id = j.id AND a.outcome IN ('failed', 'cancelled'))
                ORDER BY COALESCE(j.finished_at, j.updated_at) DESC, j.id DESC
                LIMIT ?
                """,
            arguments: [limit]
        ).map { JobRecord(row: $0) }
    }

    public func counts() throws -> QueueCounts {
        var byState: [JobState: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job GROUP BY state") {
            if let state = JobState(rawValue: row["state"]) { byState[state] = row["n"] }
        }
        return QueueCounts(byState: byState)
    }
}

/// Writes to the SQLite engine, inside one transaction opened by `SQLiteStore.write`.
public struct SQLiteTransaction: StoreTransaction {
    let db: Database

    public var reader: any StoreReader { SQLiteReader(db: db) }

    /// Inserts a job and its first transition; returns its id.
    public func insertJob(
        kind: JobKind, name: RelativePath, handler: String?, state: JobState, priority: Int, maxAttempts: Int,
        reason: String? = nil, detail: String? = nil, claim: (device: UInt64, inode: UInt64)? = nil, at now: UnixTime
    ) throws -> Int64 {
        try db.cachedStatement(sql: """
                INSERT INTO job (kind, name, handler, state, priority, max_attempts, reason, created_at, updated_at,
                                 finished_at, claim_device, claim_inode)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [kind.rawValue, name.bytes.data, handler, state.rawValue, priority, maxAttempts, reason, now,
                        now, state.isTerminal ? now : nil, claim.map { Int64(bitPattern: $0.device) },
                        claim.map { Int64(bitPattern: $0.inode) }])
        let id = db.lastInsertedRowID
        try addTransition(jobID: id, from: nil, to: state, detail: detail, at: now)
        return id
    }

    /// Moves a job to `state`, recording the transition; `attempts` and `reason` are updated when given.
    public func setState(
        jobID: Int64, from: JobState?, to state: JobState, attempts: Int? = nil, notBefore: UnixTime? = nil,
        reason: String? = nil, detail: String? = nil, at now: UnixTime
    ) throws {
        try db.cachedStatement(sql: """
                UPDATE job SET state = ?, attempts = COALESCE(?, attempts), not_before = ?,
                               reason = COALESCE(?, reason), updated_at = ?,
                               finished_at = CASE WHEN ? THEN ? ELSE finished_at END
                WHERE id = ?
                """).execute(arguments: [state.rawValue, attempts, notBefore, reason, now, state.isTerminal, now, jobID])
        try addTransition(jobID: jobID, from: from, to: state, detail: detail ?? reason, at: now)
    }

    public func setRunSettings(jobID: Int64, handler: String?, maxAttempts: Int) throws {
        try db.cachedStatement(sql: "UPDATE job SET handler = COALESCE(?, handler), max_attempts = ? WHERE id = ?")
            .execute(arguments: [handler, maxAttempts, jobID])
    }

    public func setFinalPath(jobID: Int64, _ path: RelativePath) throws {
        try db.cachedStatement(sql: "UPDATE job SET final_path = ? WHERE id = ?").execute(arguments: [path.bytes.data, jobID])
    }

    public func startAttempt(jobID: Int64, number: Int, logPath: [UInt8], at now: UnixTime) throws -> Int64 {
        try db.cachedStatement(sql: "INSERT INTO attempt (job_id, number, outcome, started_at, log_path) VALUES (?, ?, 'running', ?, ?)").execute(arguments: [jobID, number, now, logPath.data])
        return db.lastInsertedRowID
    }

    public func recordStartedAttempt(
        jobID: Int64, number: Int, logPath: [UInt8], pid: Int32, startTime: UInt64?, at now: UnixTime,
        ended: (result: AttemptResult, at: UnixTime)?
    ) throws {
        let startTime = startTime.map { Int64(bitPattern: $0) }
        guard let (result, endedAt) = ended else {
            try db.cachedStatement(sql: """
                    INSERT INTO attempt (job_id, number, outcome, started_at, log_path, pid, start_time)
                    VALUES (?, ?, 'running', ?, ?, ?, ?)
                    """).execute(arguments: [jobID, number, now, logPath.data, pid, startTime])
            return
        }
        try db.cachedStatement(sql: """
                INSERT INTO attempt (job_id, number, started_at, log_path, pid, start_time, outcome, ended_at, exit_code,
                                     signal, timed_out, user_cpu, system_cpu, max_rss_kib, stderr_tail, reason)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [jobID, number, now, logPath.data, pid, startTime, result.outcome.rawValue, endedAt,
                        result.exitCode, result.signal, result.timedOut, result.userCPU, result.systemCPU, result.maxRSSKiB,
                        result.stderrTail.data, result.reason])
    }

    public func setAttemptProcess(attemptID: Int64, pid: Int32, startTime: UInt64?) throws {
        try db.cachedStatement(sql: "UPDATE attempt SET pid = ?, start_time = ? WHERE id = ?").execute(arguments: [pid, startTime.map { Int64(bitPattern: $0) }, attemptID])
    }

    public func finishAttempt(attemptID: Int64, _ result: AttemptResult, at now: UnixTime) throws {
        try db.cachedStatement(sql: """
                UPDATE attempt SET outcome = ?, ended_at = ?, exit_code = ?, signal = ?, timed_out = ?,
                                   user_cpu = ?, system_cpu = ?, max_rss_kib = ?, stderr_tail = ?, reason = ?
                WHERE id = ?
                """).execute(arguments: [result.outcome.rawValue, now, result.exitCode, result.signal, result.timedOut, result.userCPU,
                        result.systemCPU, result.maxRSSKiB, result.stderrTail.data, result.reason, attemptID])
    }

    /// Records something that happened to a job without changing its state (shown by `show`).
    public func addNote(jobID: Int64, state: JobState, detail: String, at now: UnixTime) throws {
        try addTransition(jobID: jobID, from: state, to: state, detail: detail, at: now)
    }

    /// Ends the attempt of a job that is still marked running.
    public func finishRunningAttempt(jobID: Int64, _ result: AttemptResult, at now: UnixTime) throws {
        try db.cachedStatement(
            sql: """
                UPDATE attempt SET outcome = ?, ended_at = ?, exit_code = ?, signal = ?, timed_out = ?,
                                   user_cpu = ?, system_cpu = ?, max_rss_kib = ?, stderr_tail = ?, reason = ?
                WHERE job_id = ? AND outcome = 'running'
                """
        ).execute(
            arguments: [result.outcome.rawValue, now, result.exitCode, result.signal, result.timedOut, result.userCPU,
                        result.systemCPU, result.maxRSSKiB, result.stderrTail.data, result.reason, jobID])
    }

    public func addTransition(jobID: Int64, from: JobState?, to: JobState, detail: String?, at now: UnixTime) throws {
        try db.cachedStatement(sql: "INSERT INTO transition (job_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)").execute(arguments: [jobID, now, from?.rawValue, to.rawValue, detail])
    }
}
