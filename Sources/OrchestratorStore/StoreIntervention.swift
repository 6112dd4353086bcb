import Foundation
import GRDB
import OrchestratorCore

/// The store's side of `cancel`, `priority` and `handler pause|resume`.
func registerInterventionSchema(_ db: Database) throws {
    try db.execute(sql: """
        -- Handlers paused by `orchestrator handler pause`: their jobs wait (state 'paused') across restarts.
        CREATE TABLE handler_state (
            name TEXT PRIMARY KEY,
            paused INTEGER NOT NULL,
            updated_at REAL NOT NULL
        );
        -- What the daemon did with a request that needs an answer (`cancel`, `priority`): the command waits for it.
        ALTER TABLE request ADD COLUMN result TEXT;
        -- When `orchestrator priority` set the job's priority: a restart keeps it instead of the handler's.
        ALTER TABLE job ADD COLUMN priority_set_at REAL;
        """)
}

/// A request as the command that made it sees it come back.
public struct RequestAnswer: Sendable, Equatable {
    public var handled: Bool
    public var result: String?

    public init(handled: Bool, result: String?) {
        self.handled = handled
        self.result = result
    }
}

extension SQLiteReader {
    /// Handlers paused by `orchestrator handler pause`.
    public func pausedHandlers() throws -> Set<String> {
        Set(try String.fetchAll(db, sql: "SELECT name FROM handler_state WHERE paused = 1"))
    }

    public func requestAnswer(id: Int64) throws -> RequestAnswer? {
        try Row.fetchOne(db, sql: "SELECT handled_at, result FROM request WHERE id = ?", arguments: [id]).map {
            RequestAnswer(handled: ($0["handled_at"] as Double?) != nil, result: $0["result"])
        }
    }

    /// The job's running attempt, if one is recorded.
    public func runningAttempt(jobID: Int64) throws -> AttemptRecord? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM attempt WHERE job_id = ? AND outcome = 'running' ORDER BY id DESC LIMIT 1",
            arguments: [jobID]
        ).map(AttemptRecord.init(row:))
    }
}

extension SQLiteTransaction {
    public func setHandlerPaused(_ name: String, _ paused: Bool, at now: UnixTime) throws {
        try db.execute(
            sql: """
                INSERT INTO handler_state (name, paused, updated_at) VALUES (?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at
                """,
            arguments: [name, paused, now])
    }

    /// The daemon's answer to a request, with its handled mark.
    public func answerRequest(id: Int64, result: String, at now: UnixTime) throws {
        try db.execute(sql: "UPDATE request SET handled_at = ?, result = ? WHERE id = ?", arguments: [now, result, id])
    }

    /// Sets a waiting job's base priority, noted in its transitions (`show`).
    public func setPriority(jobID: Int64, state: JobState, priority: Int, at now: UnixTime) throws {
        try db.execute(
            sql: "UPDATE job SET priority = ?, priority_set_at = ?, updated_at = ? WHERE id = ?",
            arguments: [priority, now, now, jobID])
        try addNote(jobID: jobID, state: state, detail: "priority set to \(priority)", at: now)
    }
}
