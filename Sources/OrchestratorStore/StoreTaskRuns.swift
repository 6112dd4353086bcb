import Foundation
import GRDB
import OrchestratorCore

/// A task's runs on a store that several daemons may share: the store, not one daemon's memory, decides whether a
/// firing overlaps a live run and whether a run may start. SQLite has one writer at a time, so a check and the write
/// it guards, in one transaction, need no lock.

/// A running task run other than `job.id` of the same task, as an SQL condition on `job`.
let sqliteTaskRunRunning = """
    EXISTS (SELECT 1 FROM job AS sibling WHERE sibling.kind = 'task' AND sibling.name = job.name
            AND sibling.state = 'running' AND sibling.id <> job.id)
    """

extension SQLiteTransaction {
    public func fireTaskSlot(
        task: String, priority: Int, maxAttempts: Int, cause: TaskCause, slot: Int64, liveLimit: Int, detail: String,
        at now: UnixTime
    ) throws -> TaskFiring {
        let name = Array(task.utf8).data
        let taken = try Bool.fetchOne(
            db, sql: "SELECT 1 FROM job WHERE kind = 'task' AND name = ? AND slot_ms = ?", arguments: [name, slot]) ?? false
        if taken { return .slotTaken }
        let live = try Int.fetchOne(
            db, sql: "SELECT count(*) FROM job WHERE kind = 'task' AND name = ? AND state NOT IN ('done', 'failed')",
            arguments: [name]) ?? 0
        if live >= liveLimit { return .overlapping(live: live) }
        guard let id = try insertTaskRun(
            task: task, priority: priority, maxAttempts: maxAttempts, cause: cause, slot: slot, eventID: nil, detail: detail,
            at: now)
        else { return .slotTaken }
        return .queued(id)
    }

    public func claimTaskRun(id: Int64, node: String, lease: Double) throws -> JobRecord? {
        let busy = try Bool.fetchOne(
            db, sql: "SELECT 1 FROM job WHERE id = ? AND kind = 'task' AND \(sqliteTaskRunRunning)", arguments: [id]) ?? false
        return busy ? nil : try claimJob(id: id, node: node, lease: lease)
    }

    public func claimNextTaskRun(node: String, lease: Double, agingStep: Double) throws -> JobRecord? {
        guard let id = try Int64.fetchOne(
            db,
            sql: """
                SELECT id FROM job
                WHERE state = 'queued' AND kind = 'task' AND (not_before IS NULL OR not_before <= \(sqliteClock))
                  AND NOT \(sqliteTaskRunRunning)
                ORDER BY CASE WHEN priority >= 10 THEN priority
                              ELSE MIN(10, priority + CASE WHEN ? > 0 THEN CAST((\(sqliteClock) - updated_at) / ? AS INTEGER) ELSE 0 END)
                         END DESC, id
                LIMIT 1
                """,
            arguments: [agingStep, agingStep])
        else { return nil }
        return try claimJob(id: id, node: node, lease: lease)
    }
}
