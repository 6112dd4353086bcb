import OrchestratorCore
import OrchestratorPostgres
import OrchestratorStore

/// The server's clock, Unix seconds with a fraction: the time a statement runs, not its transaction's start.
let serverClock = "extract(epoch FROM clock_timestamp())::double precision"

/// Claims under a lease, in PostgreSQL: several daemons at once, so a claim skips rows another transaction holds
/// and every later step checks, inside its own UPDATE, that the claim still stands.
extension PostgresTransaction {
    func claimNext(node: String, lease: Double, kinds: [JobKind], agingStep: Double) throws -> JobRecord? {
        guard !kinds.isEmpty else { return nil }
        let rows = try connection.execute(
            """
            WITH claimed AS (
                UPDATE job SET state = 'running', owner = $1, attempts = attempts + 1, claims = claims + 1,
                               lease_until = \(serverClock) + $2, updated_at = \(serverClock)
                WHERE id = (
                    SELECT id FROM job
                    WHERE state = 'queued' AND kind = ANY($3::text[]) AND (not_before IS NULL OR not_before <= \(serverClock))
                      AND NOT EXISTS (SELECT FROM handler_state h WHERE h.name = job.handler AND h.paused)
                    ORDER BY CASE WHEN priority >= 10 THEN priority
                                  ELSE LEAST(10, priority + CASE WHEN $4 > 0 THEN floor((\(serverClock) - updated_at) / $4)::int ELSE 0 END)
                             END DESC, id
                    LIMIT 1
                    FOR UPDATE SKIP LOCKED)
                RETURNING *),
            noted AS (
                INSERT INTO transition (job_id, at, from_state, to_state, detail)
                SELECT id, updated_at, 'queued', 'running', 'claimed by ' || $1 FROM claimed)
            SELECT * FROM claimed
            """,
            [.text(node), .double(lease), .text(PostgresReader.textArray(kinds.map(\.rawValue))), .double(agingStep)]
        ).rows
        guard let row = rows.first else { return nil }
        return try JobRecord(postgres: row)
    }

    func renewLeases(node: String, lease: Double) throws -> Int {
        try connection.execute(
            "UPDATE job SET lease_until = \(serverClock) + $1 WHERE owner = $2 AND state = 'running'",
            [.double(lease), .text(node)]
        ).affectedRows
    }

    func rescueExpiredLeases(at now: UnixTime, graceAfterRestart: Double) throws -> [Int64] {
        // The expiry is checked again by the UPDATE itself, on the row as it is once locked: a completion that
        // committed first has moved the job out of `running`, and it stays done.
        let rows = try connection.execute(
            """
            WITH started AS (SELECT extract(epoch FROM pg_postmaster_start_time())::double precision AS at),
            expired AS (
                SELECT id, owner FROM job, started
                WHERE state = 'running' AND lease_until < \(serverClock)
                  -- Ran out while the server was down: its daemon may be alive and renewing as soon as it can.
                  AND (lease_until >= started.at OR \(serverClock) - started.at > $2)
                FOR UPDATE OF job SKIP LOCKED)
            UPDATE job SET state = 'queued', owner = NULL, lease_until = NULL, attempts = GREATEST(0, job.attempts - 1),
                           updated_at = $1
            FROM expired
            WHERE job.id = expired.id AND job.state = 'running' AND job.lease_until < \(serverClock)
            RETURNING job.id, expired.owner
            """, [.double(now), .double(graceAfterRestart)]
        ).rows
        var rescued: [Int64] = []
        for row in rows {
            guard let id = try row[0].int64() else { continue }
            let owner = try row[1].string() ?? "?"
            try finishRunningAttempt(jobID: id, AttemptResult(outcome: .interrupted, reason: "the lease of \(owner) ran out"), at: now)
            try addTransition(jobID: id, from: .running, to: .queued, detail: "rescued: the lease of \(owner) ran out", at: now)
            rescued.append(id)
        }
        if !rescued.isEmpty { wakeup.needed = true }
        return rescued.sorted()
    }

    func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime
    ) throws -> Bool {
        let rows = try connection.execute(
            Self.claimedEnd,
            Self.claimedEndParameters(
                jobID: jobID, node: node, claim: claim, to: state, attempts: attempts, notBefore: notBefore, reason: reason,
                detail: detail, at: now)
        ).rows
        guard let row = rows.first else { return false }
        // A task run's end lets the task's next queued run start, on whichever daemon claims it first.
        let kind = try row[0].string()
        if state == .queued || kind == JobKind.task.rawValue { wakeup.needed = true }
        return true
    }

    func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime, whenRefused refused: @escaping () -> Void
    ) throws {
        try finishClaimedLater(
            Self.claimedEnd,
            Self.claimedEndParameters(
                jobID: jobID, node: node, claim: claim, to: state, attempts: attempts, notBefore: notBefore, reason: reason,
                detail: detail, at: now),
            jobID: jobID, to: state, at: now, whenRefused: refused)
    }

    func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime, endingAttempt: (result: AttemptResult, at: UnixTime),
        whenRefused refused: @escaping () -> Void
    ) throws {
        try finishClaimedLater(
            Self.claimedEndWithAttempt,
            Self.claimedEndParameters(
                jobID: jobID, node: node, claim: claim, to: state, attempts: attempts, notBefore: notBefore, reason: reason,
                detail: detail, at: now) + Self.parameters(endingAttempt.result, at: endingAttempt.at),
            jobID: jobID, to: state, at: now, whenRefused: refused)
    }

    private func finishClaimedLater(
        _ sql: String, _ parameters: [PostgresValue?], jobID: Int64, to state: JobState, at now: UnixTime,
        whenRefused refused: @escaping () -> Void
    ) throws {
        // Announced whether or not the claim holds (known only with the answer): at worst one wake-up for nothing.
        if state == .queued { wakeup.needed = true }
        try connection.executeLater(
            sql, parameters, replay: .init(Self.claimedEndReplay, [.int(jobID), .double(now), .text(state.rawValue)])
        ) { result in
            if result.rows.isEmpty { refused() }
        }
    }

    /// The guarded update and its transition, in the first part of one statement.
    private static let claimedEndUpdate = """
        WITH ended AS (
            UPDATE job SET state = $1, lease_until = NULL, attempts = COALESCE($9, attempts), not_before = $2,
                           reason = COALESCE($3, reason), updated_at = $4, finished_at = CASE WHEN $5 THEN $4 ELSE finished_at END
            WHERE id = $6 AND state = 'running' AND owner = $7 AND claims = $8
            RETURNING id, kind),
        noted AS (
            INSERT INTO transition (job_id, at, from_state, to_state, detail)
            SELECT id, $4, 'running', $1, $10 FROM ended)
        """

    static let claimedEnd = claimedEndUpdate + "\nSELECT kind FROM ended"

    /// `claimedEnd` that also ends the job's running attempt ($11-$20, `resultColumns` renumbered): the attempt is
    /// written only with the job's guarded update, on the row that update locked.
    static let claimedEndWithAttempt = claimedEndUpdate + """
        ,
        attempt_ended AS (
            UPDATE attempt SET outcome = $11, ended_at = $12, exit_code = $13, signal = $14, timed_out = $15, user_cpu = $16,
                               system_cpu = $17, max_rss_kib = $18, stderr_tail = $19, reason = $20
            FROM ended WHERE attempt.job_id = ended.id AND attempt.outcome = 'running')
        SELECT kind FROM ended
        """

    /// `claimedEnd`'s answer read again once its transaction is known applied: the transition it wrote says it held
    /// (transitions are only ever added, so whatever happened to the job since cannot hide it).
    static let claimedEndReplay = """
        SELECT kind FROM job WHERE id = $1
            AND EXISTS (SELECT FROM transition WHERE job_id = $1 AND at = $2 AND from_state = 'running' AND to_state = $3)
        """

    static func claimedEndParameters(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime
    ) -> [PostgresValue?] {
        [
            .text(state.rawValue), notBefore.map { .double($0) }, reason.map { .text($0) }, .double(now),
            .bool(state.isTerminal), .int(jobID), .text(node), .int(Int64(claim)), attempts.map { .int(Int64($0)) },
            (detail ?? reason).map { .text($0) },
        ]
    }

    func claimJob(id: Int64, node: String, lease: Double) throws -> JobRecord? {
        let rows = try connection.execute(Self.claimByID, [.text(node), .double(lease), .int(id)]).rows
        guard let row = rows.first else { return nil }
        return try JobRecord(postgres: row)
    }

    func claimJobAnswered(id: Int64, node: String, lease: Double) throws -> StoreAnswer<JobRecord?> {
        let answer = StoreAnswer<JobRecord?>()
        try connection.executeLater(
            Self.claimByID, [.text(node), .double(lease), .int(id)], replay: .init(Self.claimByIDReplay, [.int(id), .text(node)])
        ) { result in
            answer.give(try result.rows.first.map { try JobRecord(postgres: $0) })
        }
        return answer
    }

    static let claimByID = """
        WITH claimed AS (
            UPDATE job SET state = 'running', owner = $1, attempts = attempts + 1, claims = claims + 1,
                           lease_until = \(serverClock) + $2, updated_at = \(serverClock)
            WHERE id = $3 AND state = 'queued' AND (not_before IS NULL OR not_before <= \(serverClock))
            RETURNING *),
        noted AS (
            INSERT INTO transition (job_id, at, from_state, to_state, detail)
            SELECT id, updated_at, 'queued', 'running', 'claimed by ' || $1 FROM claimed)
        SELECT * FROM claimed
        """

    /// `claimByID`'s answer read again once its transaction is known applied: the job runs under this daemon only
    /// if that claim took it (the daemon never claims a job it holds), and nothing but this daemon changes it while
    /// its lease runs.
    static let claimByIDReplay = "SELECT * FROM job WHERE id = $1 AND state = 'running' AND owner = $2"

    func finishClaimedAttempt(jobID: Int64, node: String, claim: Int, _ result: AttemptResult, at now: UnixTime) throws -> Bool {
        let held = try connection.execute(
            Self.claimedAttemptEnd, Self.parameters(result, at: now) + [.int(jobID), .text(node), .int(Int64(claim))]
        ).scalar?.int64()
        return held == 1
    }

    func endClaimedAttempt(jobID: Int64, node: String, claim: Int, _ result: AttemptResult, at now: UnixTime) throws {
        try connection.executeLater(
            Self.claimedAttemptEnd, Self.parameters(result, at: now) + [.int(jobID), .text(node), .int(Int64(claim))])
    }

    /// The job row is locked while the attempt is written, so a rescue cannot slip in between the check and it.
    static let claimedAttemptEnd = """
        WITH held AS (SELECT id FROM job WHERE id = $11 AND state = 'running' AND owner = $12 AND claims = $13 FOR UPDATE),
        ended AS (
            UPDATE attempt SET \(resultColumns) FROM held WHERE attempt.job_id = held.id AND attempt.outcome = 'running'
            RETURNING attempt.id)
        SELECT count(*) FROM held
        """

    func adoptFile(
        name: RelativePath, handler: String, priority: Int, maxAttempts: Int, claim: (device: UInt64, inode: UInt64)?,
        at now: UnixTime
    ) throws -> Int64? {
        let rows = try connection.execute(
            """
            WITH adopted AS (
                INSERT INTO job (kind, name, handler, state, priority, max_attempts, created_at, updated_at, claim_device, claim_inode)
                VALUES ('file', $1, $2, 'queued', $3, $4, $5, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id)
            INSERT INTO transition (job_id, at, from_state, to_state, detail)
            SELECT id, $5, NULL, 'queued', 'adopted: found in the processing area with no job' FROM adopted RETURNING job_id
            """,
            [
                .bytes(name.bytes), .text(handler), .int(Int64(priority)), .int(Int64(maxAttempts)), .double(now),
                claim.map { .int(Int64(bitPattern: $0.device)) }, claim.map { .int(Int64(bitPattern: $0.inode)) },
            ]
        ).rows
        guard let id = try rows.first?[0].int64() else { return nil }
        wakeup.needed = true
        return id
    }

    func finishUnclaimed(
        jobID: Int64, to state: JobState, attempts: Int?, reason: String?, detail: String?, at now: UnixTime
    ) throws -> Bool {
        let rows = try connection.execute(
            """
            WITH before AS (SELECT id, state FROM job WHERE id = $1 AND state NOT IN ('running', 'done', 'failed') FOR UPDATE)
            UPDATE job SET state = $2, attempts = COALESCE($3, job.attempts), reason = COALESCE($4, job.reason), updated_at = $5,
                           finished_at = CASE WHEN $6 THEN $5 ELSE job.finished_at END
            FROM before WHERE job.id = before.id AND job.state NOT IN ('running', 'done', 'failed')
            RETURNING before.state
            """,
            [
                .int(jobID), .text(state.rawValue), attempts.map { .int(Int64($0)) }, reason.map { .text($0) }, .double(now),
                .bool(state.isTerminal),
            ]
        ).rows
        guard let row = rows.first else { return false }
        try addTransition(jobID: jobID, from: try row[0].string().flatMap(JobState.init(rawValue:)), to: state, detail: detail ?? reason, at: now)
        return true
    }
}

extension PostgresReader {
    func nextClaimable(kinds: [JobKind]) throws -> ClaimableTime? {
        // The clock read once: `at` for a job without `not_before` and `now` must be the same instant.
        let row = try connection.execute(
            """
            WITH clock AS (SELECT \(serverClock) AS now)
            SELECT LEAST(
                       (SELECT MIN(COALESCE(not_before, clock.now)) FROM job WHERE state = 'queued' AND kind = ANY($1::text[])
                        AND NOT (kind = 'task' AND \(postgresTaskRunRunning))
                        AND NOT EXISTS (SELECT FROM handler_state h WHERE h.name = job.handler AND h.paused)),
                       (SELECT MIN(lease_until) FROM job WHERE state = 'running')),
                   clock.now
            FROM clock
            """, [.text(Self.textArray(kinds.map(\.rawValue)))]
        ).rows.first
        guard let row, let at = try row[0].double(), let now = try row[1].double() else { return nil }
        return ClaimableTime(at: at, now: now)
    }
}
