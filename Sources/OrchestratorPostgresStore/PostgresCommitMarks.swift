import Foundation
import OrchestratorPostgres

/// A writer session's numbering of its write transactions in `commit_mark` (see `PostgresStore.write`): each write
/// transaction sets the writer's row to its own number, so the row says which was the last applied. Used only under
/// the writer connection's lock.
final class CommitMarks {
    /// This store object's writer, across its sessions (a renewed session goes on with the same numbering).
    let writer = UUID().uuidString
    private(set) var registered = false
    private var last: Int64 = 0

    /// Creates the writer's row, committed on its own, and deletes the rows of writers silent for a week.
    func register(_ connection: PostgresConnection) throws {
        try connection.execute(
            "INSERT INTO commit_mark (writer, number, at) VALUES ($1, 0, \(serverClock)) ON CONFLICT (writer) DO NOTHING",
            [.text(writer)])
        try connection.execute("DELETE FROM commit_mark WHERE at < \(serverClock) - $1", [.double(Self.forgottenAfter)])
        registered = true
    }

    static let forgottenAfter: Double = 7 * 86_400

    /// Numbers the open transaction (sent with its COMMIT); returns its number. An upsert: a writer silent past
    /// `forgottenAfter` (paused that long) has lost its row to another writer's clean-up, and an update would then
    /// mark nothing, leaving a lost COMMIT to be settled as not applied whatever became of it.
    func mark(_ connection: PostgresConnection) throws -> Int64 {
        last += 1
        try connection.executeLater(
            """
            INSERT INTO commit_mark (writer, number, at) VALUES ($1, $2, \(serverClock))
            ON CONFLICT (writer) DO UPDATE SET number = excluded.number, at = excluded.at
            """, [.text(writer), .int(last)])
        return last
    }

    /// Whether transaction `number` was applied; throws while the server cannot be asked. A transaction of the lost
    /// session still finishing on the server (a cut network) holds the row: the read waits for it, up to a
    /// `lock_timeout` after which the answer is still unknown (an error).
    func applied(_ number: Int64, on connection: PostgresConnection, renewing owner: LockedConnection) throws -> Bool {
        if !connection.isConnected { try owner.renew(connection) }
        do {
            return try connection.transaction { session in
                try session.execute("SET LOCAL lock_timeout = '2s'")
                let stored = try session.execute(
                    "SELECT number FROM commit_mark WHERE writer = $1 FOR UPDATE", [.text(writer)]
                ).scalar?.int64() ?? 0
                return stored >= number
            }
        } catch let error as PostgresError where error.kind == .connection && connection.isConnected {
            // A server that takes no writes (a standby, a database set read-only) refuses FOR UPDATE: the outcome
            // stays unknown until it takes them again, which a new session sees (a session keeps the read-only
            // default it started with). A standby's copy may also lag behind what its primary applied.
            connection.abandon()
            throw error
        }
    }
}
