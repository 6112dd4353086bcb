/// A failed PostgreSQL operation, classified by what the caller should do about it.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The server could not be reached, or the connection broke (SQLSTATE class 08, an administrator or crash
        /// shutdown, or libpq finding the socket closed). Reconnect, with backoff, and retry; a COMMIT in flight may
        /// or may not have happened, so what is retried must be safe to repeat.
        case connection
        /// A serialization failure (40001) or a deadlock (40P01): the server rolled the transaction back; run it
        /// again from the start.
        case serialization
        /// An integrity constraint (class 23: unique, foreign key, not null, check, exclusion). Retrying gives the
        /// same answer.
        case constraint
        /// Any other error the server reported (syntax, permissions, a lock not available, ...).
        case server
        /// An error of this client: a value that cannot be sent or read as asked, or a misuse of the API.
        case client
        /// The connection was lost while COMMIT was on its way: the transaction may or may not have been applied.
        case commitOutcomeUnknown
    }

    public let kind: Kind
    /// The server's five-character SQLSTATE code, when the server sent one.
    public let sqlState: String?
    public let message: String
    /// The server's DETAIL, if any (e.g. which key a unique violation was about).
    public let detail: String?
    /// The constraint a `.constraint` error names, if the server said.
    public let constraint: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, constraint: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.constraint = constraint
    }

    /// The kind of a server error from its SQLSTATE; `connectionBroken` is libpq's own view of the socket, which
    /// wins because a broken connection often reports no code at all.
    public static func kind(sqlState: String?, connectionBroken: Bool) -> Kind {
        if connectionBroken { return .connection }
        guard let sqlState else { return .server }
        switch sqlState {
        case "40001", "40P01": return .serialization
        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections; and read_only_sql_transaction:
        // a standby, or a primary demoted in a failover (or a database set read-only), takes no writes until that
        // changes or a new session reaches the new primary (a host name or address the failover moves).
        case "57P01", "57P02", "57P03", "53300", "25006": return .connection
        default:
            if sqlState.hasPrefix("08") { return .connection }
            if sqlState.hasPrefix("23") { return .constraint }
            return .server
        }
    }

    public var description: String {
        var text = sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message
        if let detail { text += ": \(detail)" }
        return text
    }
}
