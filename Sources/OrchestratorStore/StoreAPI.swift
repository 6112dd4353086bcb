#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import OrchestratorCore

/// Which jobs `GET /api/v1/jobs` lists; every field narrows the list.
public struct JobFilter: Sendable, Equatable {
    public var state: JobState?
    /// File (and upload) jobs of this handler.
    public var handler: String?
    /// Runs of this task.
    public var task: String?
    /// Created at or after this instant.
    public var since: UnixTime?
    /// Only jobs older than this id: where the previous page ended.
    public var beforeID: Int64?

    public init(state: JobState? = nil, handler: String? = nil, task: String? = nil, since: UnixTime? = nil, beforeID: Int64? = nil) {
        self.state = state
        self.handler = handler
        self.task = task
        self.since = since
        self.beforeID = beforeID
    }
}

extension SQLiteReader {
    /// Newest first (by id, the order of creation), at most `limit`.
    public func jobs(_ filter: JobFilter, limit: Int) throws -> [JobRecord] {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let state = filter.state {
            conditions.append("state = ?")
            arguments.append(state.rawValue)
        }
        if let handler = filter.handler {
            conditions.append("kind != 'task' AND handler = ?")
            arguments.append(handler)
        }
        if let task = filter.task {
            conditions.append("kind = 'task' AND name = ?")
            arguments.append(Data(task.utf8))
        }
        if let since = filter.since {
            conditions.append("created_at >= ?")
            arguments.append(since)
        }
        if let before = filter.beforeID {
            conditions.append("id < ?")
            arguments.append(before)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        arguments.append(limit)
        return try Row.fetchAll(
            db, sql: "SELECT * FROM job \(whereClause) ORDER BY id DESC LIMIT ?", arguments: StatementArguments(arguments)
        ).map { JobRecord(row: $0) }
    }

    /// The file holding the body an event was fired with (`POST /api/v1/events/NAME`), if it had one.
    public func eventBodyPath(id: Int64) throws -> [UInt8]? {
        try (Data.fetchOne(db, sql: "SELECT body_path FROM event WHERE id = ?", arguments: [id])).map { [UInt8]($0) }
    }
}

extension SQLiteStore {
    static func registerEventBodySchema(_ db: Database) throws {
        try db.execute(sql: """
            -- The file holding the body of an event fired through the API (NULL: none). Deleted with the row
            -- by the prune sweep.
            ALTER TABLE event ADD COLUMN body_path BLOB;
            """)
    }
}

extension SQLiteTransaction {
    public func setEventBodyPath(id: Int64, _ path: [UInt8]) throws {
        try db.execute(sql: "UPDATE event SET body_path = ? WHERE id = ?", arguments: [Data(path), id])
    }
}
