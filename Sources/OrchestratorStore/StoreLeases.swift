import Foundation
import GRDB
import OrchestratorCore

/// The store's clock in SQL: Unix seconds with a fraction (`unixepoch('subsec')` needs SQLite 3.42).
let sqliteClock = "((julianday('now') - 2440587.5) * 86400.0)"

/// Claims under a lease, in SQLite: one writer at a time, so each statement is atomic without row locks.
func registerLeaseSchema(_ db: Database) throws {
    try db.execute(sql: """
        -- The node a running job is claimed by, and when its lease runs out (the store's clock, Unix seconds).
        ALTER TABLE job ADD COLUMN owner TEXT;
        ALTER TABLE job ADD COLUMN lease_until REAL;
        -- How many times the job was claimed: the claim a later step must still hold.
        ALTER TABLE job ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX job_lease ON job(lease_until) WHERE state = 'running';
        CREATE INDEX job_queued ON job(priority, id) WHERE state = 'queued';
        """)
}

extension SQLiteTransaction {
    public func claimNext(node: String, lease: Double, kinds: [JobKind], agingStep: Double) throws -> JobRecord? {
        guard !kinds.isEmpty else { return nil }
        let marks = kinds.map { _ in "?" }.joined(separator: ",")
        let arguments: [any DatabaseValueConvertible] = [node, lease] + kinds.map(\.rawValue) + [agingStep, agingStep]
        guard let row = try Row.fetchOne(
            db,
            sql: """
                UPDATE job SET state = 'running', owner = ?, attempts = attempts + 1, claims = claims + 1, lease_until = \(sqliteClock) + ?,
                               updated_at = \(sqliteClock)
                WHERE id = (
                    SELECT id FROM job
                    WHERE state = 'queued' AND kind IN (\(marks)) AND (not_before IS NULL OR not_before <= \(sqliteClock))
                      AND NOT EXISTS (SELECT 1 FROM handler_state h WHERE h.name = job.handler AND h.paused)
                    ORDER BY CASE WHEN priority >= 10 THEN priority
                                  ELSE MIN(10, priority + CASE WHEN ? > 0 THEN CAST((\(sqliteClock) - updated_at) / ? AS INTEGER) ELSE 0 END)
                             END DESC, id
                    LIMIT 1)
                RETURNING *
                """,
            arguments: StatementArguments(arguments))
        else { return nil }
        let job = JobRecord(row: row)
        try addTransition(jobID: job.id, from: .queued, to: .running, detail: "claimed by \(node)", at: job.updatedAt)
        return job
    }

    public func renewLeases(node: String, lease: Double) throws -> Int {
        try db.execute(
            sql: "UPDATE job SET lease_until = \(sqliteClock) + ? WHERE owner = ? AND state = 'running'", arguments: [lease, node])
        return db.changesCount
    }

    /// One SQLite file has no server to restart: `graceAfterRestart` does not apply.
    public func rescueExpiredLeases(at now: UnixTime, graceAfterRestart: Double) throws -> [Int64] {
        let expired = try Row.fetchAll(
            db, sql: "SELECT id, owner FROM job WHERE state = 'running' AND lease_until < \(sqliteClock)")
        var rescued: [Int64] = []
        for row in expired {
            let id: Int64 = row["id"]
            let owner: String = row["owner"] ?? "?"
            try db.execute(
                sql: """
                    UPDATE job SET state = 'queued', owner = NULL, lease_until = NULL, attempts = MAX(0, attempts - 1),
                                   updated_at = ?
                    WHERE id = ? AND state = 'running' AND lease_until < \(sqliteClock)
                    """,
                arguments: [now, id])
            guard db.changesCount == 1 else { continue }
            try finishRunningAttempt(
                jobID: id, AttemptResult(outcome: .interrupted, reason: "the lease of \(owner) ran out"), at: now)
            try addTransition(jobID: id, from: .running, to: .queued, detail: "rescued: the lease of \(owner) ran out", at: now)
            rescued.append(id)
        }
        return rescued
    }

    public func finishClaimed(
        jobID: Int64, node: String, claim: Int, to state: JobState, attempts: Int?, notBefore: UnixTime?, reason: String?,
        detail: String?, at now: UnixTime
    ) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE job SET state = ?, lease_until = NULL, attempts = COALESCE(?, attempts), not_before = ?,
                               reason = COALESCE(?, reason), updated_at = ?, finished_at = CASE WHEN ? THEN ? ELSE finished_at END
                WHERE id = ? AND state = 'running' AND owner = ? AND claims = ?
                """,
            arguments: [state.rawValue, attempts, notBefore, reason, now, state.isTerminal, now, jobID, node, claim])
        guard db.changesCount == 1 else { return false }
        try addTransition(jobID: jobID, from: .running, to: state, detail: detail ?? reason, at: now)
        return true
    }

    public func claimJob(id: Int64, node: String, lease: Double) throws -> JobRecord? {
        guard let row = try Row.fetchOne(
            db,
            sql: """
                UPDATE job SET state = 'running', owner = ?, attempts = attempts + 1, claims = claims + 1, lease_until = \(sqliteClock) + ?,
                               updated_at = \(sqliteClock)
                WHERE id = ? AND state = 'queued' AND (not_before IS NULL OR not_before <= \(sqliteClock))
                RETURNING *
                """,
            arguments: [node, lease, id])
        else { return nil }
        let job = JobRecord(row: row)
        try addTransition(jobID: job.id, from: .queued, to: .running, detail: "claimed by \(node)", at: job.updatedAt)
        return job
    }

    public func finishClaimedAttempt(jobID: Int64, node: String, claim: Int, _ result: AttemptResult, at now: UnixTime) throws -> Bool {
        let held = try Bool.fetchOne(
            db, sql: "SELECT 1 FROM job WHERE id = ? AND state = 'running' AND owner = ? AND claims = ?",
            arguments: [jobID, node, claim]) ?? false
        guard held else { return false }
        try finishRunningAttempt(jobID: jobID, result, at: now)
        return true
    }

    public func adoptFile(
        name: RelativePath, handler: String, priority: Int, maxAttempts: Int, claim: (device: UInt64, inode: UInt64)?,
        at now: UnixTime
    ) throws -> Int64? {
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO job (kind, name, handler, state, priority, max_attempts, created_at, updated_at,
                                           claim_device, claim_inode)
                VALUES ('file', ?, ?, 'queued', ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                name.bytes.data, handler, priority, maxAttempts, now, now, claim.map { Int64(bitPattern: $0.device) },
                claim.map { Int64(bitPattern: $0.inode) },
            ])
        guard db.changesCount > 0 else { return nil }
        let id = db.lastInsertedRowID
        try addTransition(jobID: id, from: nil, to: .queued, detail: "adopted: found in the processing area with no job", at: now)
        return id
    }

    public func finishUnclaimed(
        jobID: Int64, to state: JobState, attempts: Int?, reason: String?, detail: String?, at now: UnixTime
    ) throws -> Bool {
        // One writer at a time: what is read here is what the update changes.
        guard let text = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [jobID]),
            let previous = JobState(rawValue: text), previous != .running, !previous.isTerminal
        else { return false }
        try setState(jobID: jobID, from: previous, to: state, attempts: attempts, reason: reason, detail: detail, at: now)
        return true
    }
}

extension SQLiteReader {
    public func nextClaimable(kinds: [JobKind]) throws -> ClaimableTime? {
        // 'now' is one value for the whole statement, so `at` and `now` agree.
        let marks = kinds.map { _ in "?" }.joined(separator: ",")
        let queued = kinds.isEmpty
            ? "NULL" : "(SELECT MIN(COALESCE(not_before, \(sqliteClock))) FROM job WHERE state = 'queued' AND kind IN (\(marks))"
                + " AND NOT (kind = 'task' AND \(sqliteTaskRunRunning))"
                + " AND NOT EXISTS (SELECT 1 FROM handler_state h WHERE h.name = job.handler AND h.paused))"
        guard let row = try Row.fetchOne(
            db,
            sql: """
                SELECT \(queued), (SELECT MIN(lease_until) FROM job WHERE state = 'running'), \(sqliteClock)
                """,
            arguments: StatementArguments(kinds.map(\.rawValue)))
        else { return nil }
        let due: Double? = row[0]
        let leaseEnds: Double? = row[1]
        guard let at = [due, leaseEnds].compactMap({ $0 }).min() else { return nil }
        return ClaimableTime(at: at, now: row[2])
    }
}
