import Foundation
import GRDB

/// Jobs that ended in one minute: how many, and how long their last attempt ran. The dashboard's chart of the
/// last hour is drawn from these.
public struct MinuteActivity: Sendable, Equatable {
    /// The minute's first second, in Unix time.
    public let minute: UnixTime
    public let done: Int
    public let failed: Int
    /// Of the jobs that ran (a file refused before any attempt has no duration).
    public let averageSeconds: Double?
    public let maxSeconds: Double?

    public init(minute: UnixTime, done: Int, failed: Int, averageSeconds: Double?, maxSeconds: Double?) {
        self.minute = minute
        self.done = done
        self.failed = failed
        self.averageSeconds = averageSeconds
        self.maxSeconds = maxSeconds
    }
}

extension SQLiteReader {
    /// Per minute from `since` on, the jobs that ended (done or failed), oldest minute first; minutes with
    /// none are left out. Read through the index on `finished_at`, so its cost follows the jobs in the window,
    /// not the table.
    public func activityPerMinute(since: UnixTime) throws -> [MinuteActivity] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT CAST(j.finished_at / 60 AS INTEGER) * 60 AS minute,
                       SUM(j.state = 'done') AS done, SUM(j.state = 'failed') AS failed,
                       AVG(a.ended_at - a.started_at) AS average, MAX(a.ended_at - a.started_at) AS longest
                FROM job j
                LEFT JOIN attempt a ON a.id = (SELECT MAX(id) FROM attempt WHERE job_id = j.id AND ended_at IS NOT NULL)
                WHERE j.finished_at >= ? AND j.state IN ('done', 'failed')
                GROUP BY minute
                ORDER BY minute
                """,
            arguments: [since])
        return rows.map { row in
            MinuteActivity(
                minute: row["minute"], done: row["done"], failed: row["failed"], averageSeconds: row["average"],
                maxSeconds: row["longest"])
        }
    }

    /// How long each job's last ended attempt ran, by job (jobs without one are left out): the job list's run time.
    public func lastRunDurations(jobIDs: [Int64]) throws -> [Int64: Double] {
        guard !jobIDs.isEmpty else { return [:] }
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT job_id, ended_at - started_at AS seconds FROM attempt
                WHERE id IN (SELECT MAX(id) FROM attempt WHERE job_id IN (\(jobIDs.map { _ in "?" }.joined(separator: ",")))
                             AND ended_at IS NOT NULL GROUP BY job_id)
                """,
            arguments: StatementArguments(jobIDs))
        return Dictionary(rows.map { ($0["job_id"] as Int64, $0["seconds"] as Double) }, uniquingKeysWith: { first, _ in first })
    }
}
