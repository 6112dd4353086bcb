import Foundation
import GRDB
import OrchestratorCore

/// Rows a prune deleted (or, for a dry run, would delete).
public struct PruneCounts: Sendable, Equatable {
    public var jobs = 0
    public var attempts = 0
    public var transitions = 0
    public var events = 0
    public var requests = 0
    /// Daemons whose rows were forgotten (`forgetDaemons`).
    public var daemons = 0

    public init(jobs: Int = 0, attempts: Int = 0, transitions: Int = 0, events: Int = 0, requests: Int = 0, daemons: Int = 0) {
        self.jobs = jobs
        self.attempts = attempts
        self.transitions = transitions
        self.events = events
        self.requests = requests
        self.daemons = daemons
    }

    public static func + (lhs: PruneCounts, rhs: PruneCounts) -> PruneCounts {
        PruneCounts(
            jobs: lhs.jobs + rhs.jobs, attempts: lhs.attempts + rhs.attempts,
            transitions: lhs.transitions + rhs.transitions, events: lhs.events + rhs.events,
            requests: lhs.requests + rhs.requests, daemons: lhs.daemons + rhs.daemons)
    }
}

/// What reclaiming the freed pages did.
public struct ReclaimResult: Sendable, Equatable {
    /// The database was still without auto_vacuum and was rewritten once (VACUUM) to switch it on.
    public var switchedToIncremental: Bool
    /// Pages handed back to the filesystem.
    public var pagesFreed: Int
    /// The store's server reclaims deleted rows itself (PostgreSQL's autovacuum): nothing was done, nor measured.
    public var byTheServer: Bool

    public init(switchedToIncremental: Bool, pagesFreed: Int, byTheServer: Bool = false) {
        self.switchedToIncremental = switchedToIncremental
        self.pagesFreed = pagesFreed
        self.byTheServer = byTheServer
    }
}

/// What the prune sweep may delete, and what it must keep.
///
/// Kept whatever their age: live jobs; finished file jobs whose file has not left the processing area
/// (no final path yet: the next start finishes their move); per task, the runs the scheduler reads
/// (`taskRunsToKeep`); task runs of an event not yet handled (a restart replays the event, and their
/// (task, event) key is what stops the replay from running them twice); the newest row of `job`,
/// `event` and `request`, because SQLite gives a new row the highest id + 1, and an id must never be
/// reused (log files and the (task, event) keys name rows by id).
extension SQLiteReader {
    /// Per task, the runs the scheduler still reads: its latest finished run (`latestTaskRuns`, for
    /// dependency gates and `tasks`), the run with its highest recorded slot (`lastScheduledSlot`: catch-up
    /// runs only slots after it, so with that row gone a slot that ran could run again), and the run that
    /// started last (`lastTaskStart`).
    public func taskRunsToKeep() throws -> Set<Int64> {
        var keep: Set<Int64> = []
        let names = try Data.fetchAll(db, sql: "SELECT DISTINCT name FROM job WHERE kind = 'task'")
        for name in names {
            let queries = [
                """
                SELECT id FROM job WHERE kind = 'task' AND name = ? AND state IN ('done', 'failed')
                ORDER BY finished_at DESC, id DESC LIMIT 1
                """,
                """
                SELECT id FROM job WHERE kind = 'task' AND name = ? AND slot_ms IS NOT NULL
                  AND cause IN ('schedule', 'catch_up')
                ORDER BY slot_ms DESC LIMIT 1
                """,
                """
                SELECT a.job_id FROM attempt a JOIN job j ON j.id = a.job_id WHERE j.kind = 'task' AND j.name = ?
                ORDER BY a.started_at DESC, a.id DESC LIMIT 1
                """,
            ]
            for sql in queries {
                if let id = try Int64.fetchOne(db, sql: sql, arguments: [name]) { keep.insert(id) }
            }
        }
        return keep
    }

    /// Up to `limit` finished jobs that finished before `cutoff` and may go, oldest first.
    public func prunableJobs(finishedBefore cutoff: UnixTime, keeping: Set<Int64>, limit: Int) throws -> [Int64] {
        try Int64.fetchAll(db, sql: Self.prunableJobsSQL(keeping: keeping) + " ORDER BY finished_at LIMIT ?", arguments: [cutoff, limit])
    }

    /// What a prune with this cutoff would delete, counted without deleting (`sweep --dry-run`).
    public func pruneCounts(finishedBefore cutoff: UnixTime) throws -> PruneCounts {
        let jobs = "SELECT id FROM (" + Self.prunableJobsSQL(keeping: try taskRunsToKeep()) + ")"
        let count = { (sql: String) in try Int.fetchOne(db, sql: sql, arguments: [cutoff]) ?? 0 }
        return PruneCounts(
            jobs: try count("SELECT COUNT(*) FROM (\(jobs))"),
            attempts: try count("SELECT COUNT(*) FROM attempt WHERE job_id IN (\(jobs))"),
            transitions: try count("SELECT COUNT(*) FROM transition WHERE job_id IN (\(jobs))"),
            events: try count("SELECT COUNT(*) FROM (\(Self.prunableEventsSQL))"),
            requests: try count("SELECT COUNT(*) FROM (\(Self.prunableRequestsSQL))"))
    }

    /// One argument: the cutoff. The index by finish time is named: left to itself the planner took the one by state,
    /// read every finished job and sorted them, 0.5 s per batch on a store of 2,000,000 jobs (0.1 ms with it).
    static func prunableJobsSQL(keeping: Set<Int64>) -> String {
        let kept = keeping.isEmpty ? "" : "AND id NOT IN (\(keeping.sorted().map(String.init).joined(separator: ",")))"
        return """
            SELECT id FROM job INDEXED BY job_finished
            WHERE state IN ('done', 'failed') AND finished_at < ?
              AND (kind != 'file' OR final_path IS NOT NULL)
              AND id < (SELECT MAX(id) FROM job)
              AND (event_id IS NULL OR event_id NOT IN (SELECT id FROM event WHERE handled_at IS NULL))
              \(kept)
            """
    }

    static let liveStates = JobState.allCases.filter { !$0.isTerminal }.map { "'\($0.rawValue)'" }.joined(separator: ", ")

    /// One argument: the cutoff. A live task run still names its event (a restart reads its name).
    static let prunableEventsSQL = """
        SELECT id FROM event
        WHERE handled_at IS NOT NULL AND handled_at < ?
          AND id < (SELECT MAX(id) FROM event)
          AND id NOT IN (SELECT event_id FROM job WHERE state IN (\(liveStates)) AND event_id IS NOT NULL)
        """

    /// One argument: the cutoff.
    static let prunableRequestsSQL = """
        SELECT id FROM request WHERE handled_at IS NOT NULL AND handled_at < ? AND id < (SELECT MAX(id) FROM request)
        """
}

extension SQLiteReader {
    public func daemonsToForget(lastHeardBefore cutoff: UnixTime, silentFor: Double, keeping node: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(forgettableDaemons))", arguments: [cutoff, silentFor, node]) ?? 0
    }
}

/// Names of the daemons `forgetDaemons` deletes: arguments the cutoff, the silence, the name kept.
let forgettableDaemons = """
    SELECT name FROM node AS n
    WHERE heartbeat_at < ? AND heartbeat_at < \(sqliteClock) - ? AND name != ?
      AND NOT EXISTS (SELECT 1 FROM job WHERE job.owner = n.name AND job.state = 'running')
    """

extension SQLiteTransaction {
    public func forgetDaemons(lastHeardBefore cutoff: UnixTime, silentFor: Double, keeping node: String) throws -> Int {
        let gone = forgettableDaemons
        let arguments: StatementArguments = [cutoff, silentFor, node]
        try db.execute(sql: "DELETE FROM node_note WHERE node IN (\(gone))", arguments: arguments)
        try db.execute(sql: "DELETE FROM breaker WHERE node IN (\(gone))", arguments: arguments)
        try db.execute(sql: "DELETE FROM node WHERE name IN (\(gone))", arguments: arguments)
        return db.changesCount
    }

    /// Deletes these jobs with their attempts and transitions.
    public func deleteJobs(_ ids: [Int64]) throws -> PruneCounts {
        guard !ids.isEmpty else { return PruneCounts() }
        let list = ids.map(String.init).joined(separator: ",")
        var counts = PruneCounts()
        try db.execute(sql: "DELETE FROM transition WHERE job_id IN (\(list))")
        counts.transitions = db.changesCount
        try db.execute(sql: "DELETE FROM attempt WHERE job_id IN (\(list))")
        counts.attempts = db.changesCount
        try db.execute(sql: "DELETE FROM job WHERE id IN (\(list))")
        counts.jobs = db.changesCount
        return counts
    }

    /// Deletes up to `limit` handled events and handled requests older than `cutoff`.
    public func deleteHandledEventsAndRequests(before cutoff: UnixTime, limit: Int) throws -> PruneCounts {
        var counts = PruneCounts()
        // Bodies go first: a crash in between leaves an old handled event without its body, never a body
        // file that no row names.
        let bodies = try Data.fetchAll(
            db, sql: "SELECT body_path FROM event WHERE body_path IS NOT NULL AND id IN (\(SQLiteReader.prunableEventsSQL) LIMIT ?)",
            arguments: [cutoff, limit])
        for body in bodies { unlink(String(decoding: body, as: UTF8.self)) }
        try db.execute(
            sql: "DELETE FROM event WHERE id IN (\(SQLiteReader.prunableEventsSQL) LIMIT ?)", arguments: [cutoff, limit])
        counts.events = db.changesCount
        try db.execute(
            sql: "DELETE FROM request WHERE id IN (\(SQLiteReader.prunableRequestsSQL) LIMIT ?)", arguments: [cutoff, limit])
        counts.requests = db.changesCount
        return counts
    }

    /// Records that the log file of an attempt of this job was deleted, so `show` says so.
    public func markLogPruned(jobID: Int64, logPath: [UInt8], at now: UnixTime) throws {
        try db.cachedStatement(sql: "UPDATE attempt SET log_pruned_at = ? WHERE job_id = ? AND log_path = ?")
            .execute(arguments: [now, jobID, logPath.data])
    }
}

extension Store {
    /// Deletes what `finishedBefore` makes old (see `StoreReader.prunableJobs`), `batchSize` jobs per
    /// transaction so that other writers (the dispatcher's commits) wait at most one batch.
    /// `shouldContinue` is asked between batches; `rest` is given how long the batch that just ended took, and may
    /// pause before the next one, so that the other writers' commits get through.
    public func prune(
        finishedBefore cutoff: UnixTime, batchSize: Int = 1000, shouldContinue: () -> Bool = { true },
        rest: (Duration) -> Void = { _ in }
    ) throws -> PruneCounts {
        let keep = try read { try $0.taskRunsToKeep() }
        var total = PruneCounts()
        let clock = ContinuousClock()
        while shouldContinue() {
            var batch = PruneCounts()
            let took = try clock.measure {
                batch = try write { transaction in
                    let ids = try transaction.reader.prunableJobs(finishedBefore: cutoff, keeping: keep, limit: batchSize)
                    return try transaction.deleteJobs(ids)
                }
            }
            total = total + batch
            if batch.jobs < batchSize { break }
            rest(took)
        }
        while shouldContinue() {
            var batch = PruneCounts()
            let took = try clock.measure { batch = try write { try $0.deleteHandledEventsAndRequests(before: cutoff, limit: batchSize) } }
            total = total + batch
            if batch.events < batchSize && batch.requests < batchSize { break }
            rest(took)
        }
        return total
    }
}

extension SQLiteStore {
    /// Hands the pages freed by deletes back to the filesystem, `pagesPerStep` pages per transaction. A
    /// database created before auto_vacuum was switched on is rewritten once (VACUUM, which blocks other
    /// writers while it runs); from then on incremental vacuum is enough. Then the WAL is truncated if no
    /// reader holds it, so the file pair shrinks too.
    public func reclaimFreePages(pagesPerStep: Int = 2048) throws -> ReclaimResult {
        let mode = try pool.read { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") ?? 0 }
        var result = ReclaimResult(switchedToIncremental: false, pagesFreed: 0)
        if mode != 2 {
            let before = try pool.read { try Int.fetchOne($0, sql: "PRAGMA page_count") ?? 0 }
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                try db.execute(sql: "VACUUM")
            }
            let after = try pool.read { try Int.fetchOne($0, sql: "PRAGMA page_count") ?? 0 }
            result = ReclaimResult(switchedToIncremental: true, pagesFreed: max(0, before - after))
        } else {
            while true {
                let freed = try pool.write { db -> Int in
                    let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                    guard free > 0 else { return 0 }
                    let step = min(free, pagesPerStep)
                    try db.execute(sql: "PRAGMA incremental_vacuum(\(step))")
                    return step
                }
                result.pagesFreed += freed
                if freed < pagesPerStep { break }
            }
        }
        reclaimLogSpace()
        return result
    }

    /// The database and its WAL, in bytes: what the store takes on disk.
    public var bytesOnDisk: Int64 {
        [path, path + "-wal"].reduce(0) { total, file in
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            return total + ((attributes?[.size] as? NSNumber)?.int64Value ?? 0)
        }
    }
}
