import CLibPQ

#if canImport(Glibc)
import Glibc
#endif

/// One connection to a PostgreSQL server through libpq, used synchronously: every call blocks until the server has
/// answered, except `consumeNotifications`, which only reads what has already arrived.
///
/// Confinement: a connection is not Sendable. It belongs to the one queue or thread that made it (the store's
/// queue, or the event loop for the LISTEN connection); libpq allows no two calls on one connection at a time.
public final class PostgresConnection {
    private let connection: OpaquePointer
    public let url: PostgresURL
    /// Channels to LISTEN on again after `reconnect()`, since a new session starts with none.
    private var channels: [String] = []
    private var inTransaction = false

    /// Connects, or throws a `.connection` error naming why not, with the defaults of `PostgresURL.sessionParameters`
    /// (a connection attempt gives up after 10 s, a dead peer is noticed within 30 s).
    public convenience init(url text: String) throws {
        try self.init(url: PostgresURL(text))
    }

    public init(url: PostgresURL) throws {
        self.url = url
        let pairs = url.sessionParameters
        let keywords = pairs.map { strdup($0.keyword) }
        let values = pairs.map { strdup($0.value) }
        defer { (keywords + values).forEach { free($0) } }
        if let problem = orch_pq_load_error() { throw PostgresError(kind: .client, message: String(cString: problem)) }
        let made = (keywords.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { keywordList in
            (values.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { valueList in
                orch_PQconnectdbParams(keywordList.baseAddress, valueList.baseAddress, 0)
            }
        }
        guard let made else { throw PostgresError(kind: .client, message: "libpq could not allocate a connection") }
        guard orch_PQstatus(made) == CONNECTION_OK else {
            let message = Self.errorMessage(of: made)
            orch_PQfinish(made)
            throw PostgresError(kind: Self.connectFailureKind(message), message: "cannot connect to \(url.redacted): \(message)")
        }
        connection = made
        silenceNotices()
    }

    deinit { orch_PQfinish(connection) }

    /// Whether the connection was usable at its last operation. libpq learns of a dead server only when it next
    /// reads or writes; a LISTEN socket in an epoll set becomes readable when the server closes it.
    public var isConnected: Bool { orch_PQstatus(connection) == CONNECTION_OK }

    /// The server process serving this connection (what `pg_terminate_backend` and `pg_locks.pid` name).
    public var backendPID: Int32 { orch_PQbackendPID(connection) }

    /// The socket to wait on for notifications (epoll or poll, readable). It changes with `reconnect()`: take the
    /// old one out of the set before and add the new one after. -1 while there is no connection.
    public var socketDescriptor: Int32 { orch_PQsocket(connection) }

    // MARK: Statements

    /// Runs one statement with `$1, $2, ...` bound to `parameters` (never spliced into the SQL text).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue?] = []) throws -> PostgresResult {
        var types: [UInt32] = []
        var formats: [Int32] = []
        var lengths: [Int32] = []
        var buffers: [UnsafeMutablePointer<CChar>?] = []
        defer { buffers.forEach { $0?.deallocate() } }
        for (index, parameter) in parameters.enumerated() {
            let (type, binary, bytes) = try Self.encode(parameter, number: index + 1)
            types.append(type)
            formats.append(binary ? 1 : 0)
            lengths.append(Int32(bytes?.count ?? 0))
            buffers.append(bytes.map { bytes in
                // Text parameters are read up to a NUL, so each buffer ends with one; bytea's length is explicit.
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
                bytes.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                buffer[bytes.count] = 0
                return buffer
            })
        }
        let result = buffers.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            orch_PQexecParams(connection, sql, Int32(parameters.count), types, values.baseAddress, lengths, formats, 0)
        }
        return try consume(result)
    }

    /// Runs several `;`-separated statements without parameters (a migration), in one implicit transaction unless
    /// the script has its own BEGIN/COMMIT. Returns the last statement's result.
    @discardableResult
    public func executeScript(_ sql: String) throws -> PostgresResult {
        try consume(orch_PQexec(connection, sql))
    }

    /// Runs `body` between BEGIN and COMMIT. If `body` throws, the transaction is rolled back and the error
    /// rethrown; if the COMMIT fails (or the server turns it into a rollback because a statement in it failed),
    /// that is the error (see `commit`). Transactions do not nest.
    public func transaction<T>(
        isolation: IsolationLevel = .readCommitted, _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        try begin(isolation: isolation)
        let value: T
        do {
            value = try body(self)
        } catch {
            rollback()
            throw error
        }
        try commit()
        return value
    }

    /// BEGIN, for a caller that runs the steps of `transaction` itself (to retry a BEGIN on a new session).
    public func begin(isolation: IsolationLevel = .readCommitted) throws {
        guard !inTransaction else {
            throw PostgresError(kind: .client, message: "a transaction is already open on this connection (they do not nest)")
        }
        try execute("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        inTransaction = true
    }

    /// BEGIN, and the transaction's id in the same round trip: with it, a COMMIT whose outcome was lost can be
    /// looked up once the server answers again (`transactionStatus`).
    public func beginIdentified(isolation: IsolationLevel = .readCommitted) throws -> Int64 {
        guard !inTransaction else {
            throw PostgresError(kind: .client, message: "a transaction is already open on this connection (they do not nest)")
        }
        let result = try executeScript("BEGIN ISOLATION LEVEL \(isolation.rawValue); SELECT txid_current()")
        inTransaction = true
        guard let id = try result.scalar?.int64() else {
            rollback()
            throw PostgresError(kind: .client, message: "the server gave no transaction id")
        }
        return id
    }

    public enum TransactionStatus: String, Sendable {
        case committed, aborted
        case inProgress = "in progress"
    }

    /// What became of a transaction `beginIdentified` named (`txid_status`); nil when the server no longer knows.
    public func transactionStatus(_ id: Int64) throws -> TransactionStatus? {
        try execute("SELECT txid_status($1)", [.int(id)]).scalar?.string().flatMap(TransactionStatus.init(rawValue:))
    }

    /// Ends the open transaction without applying it. A broken connection has no transaction left to end.
    public func rollback() {
        inTransaction = false
        if isConnected { _ = try? execute("ROLLBACK") }
    }

    /// COMMIT of the open transaction. A COMMIT the server answers with ROLLBACK (a statement in the transaction
    /// had failed and its error was caught) is an error, not a silent success. A connection lost while COMMIT was
    /// on its way is `.commitOutcomeUnknown`: the server may or may not have applied it, so whatever the
    /// transaction did must not simply be sent again.
    ///
    /// `notifying`: a notification (empty payload) on that channel, sent in the same round trip as the COMMIT and so
    /// delivered with it. Should it fail, the transaction is rolled back and that is the error.
    public func commit(notifying channel: String? = nil) throws {
        inTransaction = false
        let result: PostgresResult
        do {
            if let channel {
                let literal = "'" + channel.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
                do {
                    // One simple query: the server stops at the first statement that fails, COMMIT included.
                    result = try executeScript("SELECT pg_notify(\(literal), ''); COMMIT")
                } catch let error as PostgresError where error.kind != .connection {
                    rollback()
                    // 25P02: the transaction had failed before; say so as a plain COMMIT would.
                    guard error.sqlState == "25P02" else { throw error }
                    throw Self.rolledBackAtCommit
                }
            } else {
                result = try execute("COMMIT")
            }
        } catch let error as PostgresError where error.kind == .connection {
            throw PostgresError(
                kind: .commitOutcomeUnknown, sqlState: error.sqlState,
                message: "the connection was lost during COMMIT, so whether the transaction was applied is unknown: \(error.message)")
        }
        guard result.command == "COMMIT" else { throw Self.rolledBackAtCommit }
    }

    private static let rolledBackAtCommit = PostgresError(
        kind: .server, message: "the transaction was rolled back at COMMIT because a statement in it had failed")

    public enum IsolationLevel: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    // MARK: LISTEN / NOTIFY

    /// Starts receiving notifications on `channel` (the name is quoted, so it is taken exactly as given).
    public func listen(_ channel: String) throws {
        try execute("LISTEN \(try Self.quoteIdentifier(channel))")
        if !channels.contains(channel) { channels.append(channel) }
    }

    public func unlisten(_ channel: String) throws {
        try execute("UNLISTEN \(try Self.quoteIdentifier(channel))")
        channels.removeAll { $0 == channel }
    }

    /// Sends a notification; inside a transaction it is delivered at COMMIT, and not at all on rollback.
    public func notify(_ channel: String, payload: String = "") throws {
        try execute("SELECT pg_notify($1, $2)", [.text(channel), .text(payload)])
    }

    /// The notifications that have arrived, without waiting for more: call it when `socketDescriptor` is readable.
    /// Throws a `.connection` error when the server has closed the connection.
    public func consumeNotifications() throws -> [PostgresNotification] {
        guard orch_PQconsumeInput(connection) == 1 else { throw connectionError() }
        var notifications: [PostgresNotification] = []
        while let notify = orch_PQnotifies(connection) {
            defer { orch_PQfreemem(notify) }
            notifications.append(
                PostgresNotification(
                    channel: String(cString: notify.pointee.relname),
                    payload: notify.pointee.extra.map { String(cString: $0) } ?? "",
                    senderPID: notify.pointee.be_pid))
        }
        return notifications
    }

    // MARK: Advisory locks (session level: held until unlocked or the connection ends)

    /// Waits until the lock is held.
    public func advisoryLock(_ key: Int64) throws {
        try execute("SELECT pg_advisory_lock($1)", [.int(key)])
    }

    /// Takes the lock if no other session holds it (`shared`: if no other session holds it exclusively; shared
    /// holders coexist); true when taken.
    public func tryAdvisoryLock(_ key: Int64, shared: Bool = false) throws -> Bool {
        let function = shared ? "pg_try_advisory_lock_shared" : "pg_try_advisory_lock"
        return try execute("SELECT \(function)($1)", [.int(key)]).scalar?.bool() ?? false
    }

    /// Releases one hold of the lock; false when this session did not hold it.
    @discardableResult
    public func advisoryUnlock(_ key: Int64) throws -> Bool {
        try execute("SELECT pg_advisory_unlock($1)", [.int(key)]).scalar?.bool() ?? false
    }

    // MARK: Reconnecting

    /// Closes the connection and opens it again with the same parameters (`PQreset`), then LISTENs again on the
    /// channels it listened on. Session state is gone: advisory locks, prepared statements, an open transaction.
    /// Notifications sent while it was down are lost, so the caller catches up by reading the tables.
    public func reconnect() throws {
        inTransaction = false
        orch_PQreset(connection)
        guard isConnected else {
            let message = Self.errorMessage(of: connection)
            throw PostgresError(kind: Self.connectFailureKind(message), message: "cannot reconnect to \(url.redacted): \(message)")
        }
        silenceNotices()
        for channel in channels { try execute("LISTEN \(try Self.quoteIdentifier(channel))") }
    }

    // MARK: Internals

    /// A server that answered and refused this login (a wrong password, a database or role that does not exist, no
    /// pg_hba.conf entry) gives the same answer on every retry, so it is `.server`, not a server out of reach to wait
    /// for. libpq gives no SQLSTATE for a failed connect, so this goes by the server's (English) messages; one it
    /// does not recognise, a translated one included, is waited for as before.
    public static func connectFailureKind(_ message: String) -> PostgresError.Kind {
        rejectedLoginPhrases.contains { message.contains($0) } ? .server : .connection
    }

    static let rejectedLoginPhrases = [
        "authentication failed for user",  // password, md5, scram, peer, ident, cert
        "no password supplied",
        "no pg_hba.conf entry for",
        "pg_hba.conf rejects connection",
        "is not permitted to log in",
        "permission denied for database",
        "does not exist",  // the database, or the role
        "is not currently accepting connections",  // ALTER DATABASE ... ALLOW_CONNECTIONS false
    ]

    /// Copies a result out of libpq and clears it, or turns it into a classified error.
    private func consume(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else { throw connectionError() }
        defer { orch_PQclear(result) }
        switch orch_PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.copy(result)
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            throw PostgresError(kind: .client, message: "COPY is not supported by this client")
        default:
            let sqlState = Self.field(result, "C")
            throw PostgresError(
                kind: PostgresError.kind(sqlState: sqlState, connectionBroken: !isConnected), sqlState: sqlState,
                message: Self.field(result, "M") ?? Self.errorMessage(of: connection), detail: Self.field(result, "D"),
                constraint: Self.field(result, "n"))
        }
    }

    private func connectionError() -> PostgresError {
        PostgresError(
            kind: isConnected ? .server : .connection, message: Self.errorMessage(of: connection))
    }

    private static func copy(_ result: OpaquePointer) -> PostgresResult {
        let columnCount = orch_PQnfields(result)
        let columns = (0..<columnCount).map { index in
            PostgresColumn(name: String(cString: orch_PQfname(result, index)), typeOID: orch_PQftype(result, index))
        }
        let rows = (0..<orch_PQntuples(result)).map { row in
            PostgresRow(
                columns: columns,
                cells: (0..<columnCount).map { column -> [UInt8]? in
                    guard orch_PQgetisnull(result, row, column) == 0 else { return nil }
                    let length = Int(orch_PQgetlength(result, row, column))
                    return orch_PQgetvalue(result, row, column).withMemoryRebound(to: UInt8.self, capacity: length) {
                        Array(UnsafeBufferPointer(start: $0, count: length))
                    }
                })
        }
        return PostgresResult(
            columns: columns, rows: rows, command: String(cString: orch_PQcmdStatus(result)),
            affectedRows: Int(String(cString: orch_PQcmdTuples(result))) ?? 0)
    }

    /// A parameter's type OID (0: let the server infer it), whether it is sent in binary, and its bytes (nil: NULL).
    static func encode(_ value: PostgresValue?, number: Int) throws(PostgresError) -> (UInt32, Bool, [UInt8]?) {
        switch value {
        case nil: return (0, false, nil)
        case .int(let value): return (PostgresType.int8, false, Array(String(value).utf8))
        case .double(let value):
            let text =
                value.isNaN ? "NaN" : value == .infinity ? "Infinity" : value == -.infinity ? "-Infinity" : "\(value)"
            return (PostgresType.float8, false, Array(text.utf8))
        case .bool(let value): return (PostgresType.bool, false, Array((value ? "true" : "false").utf8))
        case .text(let value):
            guard !value.utf8.contains(0) else {
                throw PostgresError(
                    kind: .client, message: "parameter $\(number) is text with a NUL character, which PostgreSQL text cannot hold (send it as bytes)")
            }
            return (0, false, Array(value.utf8))
        case .bytes(let value): return (PostgresType.bytea, true, value)
        }
    }

    static func quoteIdentifier(_ name: String) throws(PostgresError) -> String {
        guard !name.isEmpty, !name.utf8.contains(0) else {
            throw PostgresError(kind: .client, message: "a channel name must be non-empty text without NUL")
        }
        return "\"" + name.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }

    private static func field(_ result: OpaquePointer, _ code: Character) -> String? {
        orch_PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
    }

    /// libpq's message on one line: its own messages continue on tab-indented lines, and each server message
    /// starts with a severity we drop.
    private static func errorMessage(of connection: OpaquePointer) -> String {
        var sentences: [String] = []
        for line in String(cString: orch_PQerrorMessage(connection)).split(whereSeparator: \.isNewline) {
            let text = String(line.trimmingPrefix("FATAL:  ").trimmingPrefix("ERROR:  ")).trimmingPrefix(while: \.isWhitespace)
            if line.first?.isWhitespace == true, let last = sentences.popLast() {
                sentences.append(last + " " + text)
            } else if !text.isEmpty {
                sentences.append(String(text))
            }
        }
        return sentences.isEmpty ? "unknown error" : sentences.joined(separator: "; ")
    }

    /// Server notices (e.g. "there is no transaction in progress") would go to stderr by default; the return values
    /// of these calls already say what the notices would.
    private func silenceNotices() {
        orch_PQsetNoticeProcessor(connection, { _, _ in }, nil)
    }
}

/// A notification received on a channel this connection LISTENs on.
public struct PostgresNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String
    public let senderPID: Int32

    public init(channel: String, payload: String, senderPID: Int32) {
        self.channel = channel
        self.payload = payload
        self.senderPID = senderPID
    }
}
