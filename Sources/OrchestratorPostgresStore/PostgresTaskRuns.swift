import OrchestratorCore
import OrchestratorPostgres
import OrchestratorStore

/// A running task run other than `job.id` of the same task, as an SQL condition on `job`.
let postgresTaskRunRunning = """
    EXISTS (SELECT 1 FROM job AS sibling WHERE sibling.kind = 'task' AND sibling.name = job.name
            AND sibling.state = 'running' AND sibling.id <> job.id)
    """

/// A task's runs when several daemons share the store: whether a firing overlaps a live run, and whether a run may
/// start, is decided here, under a transaction-scoped advisory lock of the task. Transactions are READ COMMITTED, so
/// each statement after the lock sees what the lock's previous holder committed: two daemons cannot both find
/// nothing live (or nothing running) and both go on.
extension PostgresTransaction {
    /// The first key of a task's two-key advisory lock ("orta"); one-key locks (migrations, holds) are another space.
    static let taskLockClass: Int32 = 0x6F72_7461

    private func lockTask(_ name: [UInt8]) throws {
        try connection.execute(
            "SELECT pg_advisory_xact_lock(\(Self.taskLockClass), hashtext(encode($1, 'hex')))", [.bytes(name)])
    }

    /// False when another transaction holds the task: a claim then looks elsewhere rather than wait, so that a
    /// transaction never waits for one lock while it holds another.
    private func tryLockTask(_ name: [UInt8]) throws -> Bool {
        try connection.execute(
            "SELECT pg_try_advisory_xact_lock(\(Self.taskLockClass), hashtext(encode($1, 'hex')))", [.bytes(name)]
        ).scalar?.bool() ?? false
    }

    func fireTaskSlot(
        task: String, priority: Int, maxAttempts: Int, cause: TaskCause, slot: Int64, liveLimit: Int, detail: String,
        at now: UnixTime
    ) throws -> TaskFiring {
        let name = Array(task.utf8)
        try lockTask(name)
        let row = try connection.execute(
            """
            SELECT EXISTS (SELECT 1 FROM job WHERE kind = 'task' AND name = $1 AND slot_ms = $2),
                   (SELECT count(*) FROM job WHERE kind = 'task' AND name = $1 AND state NOT IN ('done', 'failed'))
            """, [.bytes(name), .int(slot)]
        ).rows.first
        if try row?[0].bool() == true { return .slotTaken }
        let live = Int(try row?[1].int64() ?? 0)
        if live >= liveLimit {
            // Every scheduler fires each slot: the first to find it overlapping notes the slot as skipped and says
            // so, the others find it taken, so a skipped slot is one line in the logs, not one per daemon.
            let first = try connection.execute(
                """
                INSERT INTO daemon_note (key, value, updated_at) VALUES ($1, $2, \(serverClock))
                ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    WHERE daemon_note.value IS DISTINCT FROM excluded.value
                RETURNING 1
                """, [.text(Self.skippedSlotNote + task), .text(String(slot))]
            ).rows.isEmpty == false
            return first ? .overlapping(live: live) : .slotTaken
        }
        guard let id = try insertTaskRun(
            task: task, priority: priority, maxAttempts: maxAttempts, cause: cause, slot: slot, eventID: nil, detail: detail,
            at: now)
        else { return .slotTaken }
        return .queued(id)
    }

    /// `daemon_note` key (and the task's name): the last slot of the task skipped for overlap.
    static let skippedSlotNote = "task.skipped_slot."

    func claimTaskRun(id: Int64, node: String, lease: Double) throws -> JobRecord? {
        guard let name = try connection.execute("SELECT name FROM job WHERE id = $1 AND kind = 'task'", [.int(id)]).scalar?.bytes()
        else { return nil }
        try lockTask(name)
        let busy = try connection.execute(
            "SELECT 1 FROM job WHERE id = $1 AND \(postgresTaskRunRunning)", [.int(id)]).rows.isEmpty == false
        return busy ? nil : try claimJob(id: id, node: node, lease: lease)
    }

    func claimNextTaskRun(node: String, lease: Double, agingStep: Double) throws -> JobRecord? {
        // A few candidates, best first, their rows locked without waiting: one whose task another transaction holds
        // gives way to the next. Nothing here waits for a lock, so it cannot take part in a deadlock.
        let candidates = try connection.execute(
            """
            SELECT id, name FROM job
            WHERE state = 'queued' AND kind = 'task' AND (not_before IS NULL OR not_before <= \(serverClock))
              AND NOT \(postgresTaskRunRunning)
            ORDER BY CASE WHEN priority >= 10 THEN priority
                          ELSE LEAST(10, priority + CASE WHEN $1 > 0 THEN floor((\(serverClock) - updated_at) / $1)::int ELSE 0 END)
                     END DESC, id
            LIMIT 8
            FOR UPDATE OF job SKIP LOCKED
            """, [.double(agingStep)]
        ).rows
        var tried: Set<[UInt8]> = []
        for candidate in candidates {
            guard let id = try candidate[0].int64(), let name = try candidate[1].bytes(), tried.insert(name).inserted,
                try tryLockTask(name)
            else { continue }
            let busy = try connection.execute(
                "SELECT 1 FROM job WHERE id = $1 AND \(postgresTaskRunRunning)", [.int(id)]).rows.isEmpty == false
            if busy { continue }
            if let claimed = try claimJob(id: id, node: node, lease: lease) { return claimed }
        }
        return nil
    }
}
