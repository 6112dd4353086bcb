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
    /// Statements whose answers were awaited (`executeLater(answered:)`) in a pipeline that broke off before they
    /// came: whoever settles a lost COMMIT takes them (`takeLostAnswers`). Cleared by `begin`.
    private var lostAnswers: [Statement] = []
    /// Statements `executeLater` queued in the open transaction, not sent yet.
    private var queued: [Statement] = []
    /// Statements prepared in this session, by text and parameter types; a new session (`reconnect`) has none.
    private var prepared: [PreparedKey: String] = [:]
    /// Names are never reused within a session, even after the cache is dropped, since the old ones may still exist.
    private var preparedCount = 0

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
        try execute(Self.longLivedSession)
    }

    /// A server's or database's `idle_session_timeout` (PostgreSQL 14) would end a daemon's hold every few idle
    /// seconds (a reconnect each time, and a gap in which a one-shot run could take the store): off for this session
    /// where the server has it (see `PostgresURL.sessionTimeoutsOff` for the other timeouts).
    static let longLivedSession = """
        SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout'
        """

    deinit { orch_PQfinish(connection) }

    /// Whether the connection was usable at its last operation. libpq learns of a dead server only when it next
    /// reads or writes; a LISTEN socket in an epoll set becomes readable when the server closes it.
    public var isConnected: Bool { !abandoned && orch_PQstatus(connection) == CONNECTION_OK }

    /// A pipeline broke off on this session (see `abandonPipeline`): it counts as lost until `reconnect()`.
    private var abandoned = false

    /// The server process serving this connection (what `pg_terminate_backend` and `pg_locks.pid` name).
    public var backendPID: Int32 { orch_PQbackendPID(connection) }

    /// The socket to wait on for notifications (epoll or poll, readable). It changes with `reconnect()`: take the
    /// old one out of the set before and add the new one after. -1 while there is no connection.
    public var socketDescriptor: Int32 { orch_PQsocket(connection) }

    // MARK: Statements

    /// Runs one statement with `$1, $2, ...` bound to `parameters` (never spliced into the SQL text). Statements
    /// queued by `executeLater` go first, in the same round trip.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue?] = []) throws -> PostgresResult {
        guard queued.isEmpty else {
            let statements = queued + [Statement(sql: sql, parameters: parameters)]
            queued = []
            return try pipeline(statements)
        }
        let encoded = try EncodedParameters(parameters)
        let statement = try preparedStatement(sql, types: encoded.types)
        let result = encoded.values.withUnsafeBufferPointer { values in
            if let statement {
                orch_PQexecPrepared(
                    connection, statement, encoded.count, values.baseAddress, encoded.lengths, encoded.formats, 0)
            } else {
                orch_PQexecParams(
                    connection, sql, encoded.count, encoded.types, values.baseAddress, encoded.lengths, encoded.formats, 0)
            }
        }
        return try consumeStatement(result)
    }

    /// Queues a statement inside the open transaction whose answer the caller does not wait for; it is sent with the
    /// next statement that is waited for, or with COMMIT, in one round trip (pipeline mode). An error it meets
    /// surfaces there and fails the transaction as a whole, so only statements whose errors nobody handles one by
    /// one belong here. Without a transaction, or with a libpq older than 14, it runs at once.
    ///
    /// `answered`: given the statement's result when it arrives (before `execute` or `commit` returns).
    /// `replay`: a read that returns what the statement returned, once its transaction is known to have been
    /// applied; for a connection lost after COMMIT was sent, when the answer never came (`takeLostAnswers`).
    public func executeLater(
        _ sql: String, _ parameters: [PostgresValue?] = [], replay: Replay? = nil,
        answered: ((PostgresResult) throws -> Void)? = nil
    ) throws {
        guard inTransaction, Self.hasPipeline else {
            let result = try execute(sql, parameters)
            try answered?(result)
            return
        }
        queued.append(Statement(sql: sql, parameters: parameters, replay: replay, answered: answered))
        // A long pipeline could fill both sockets' buffers (the server waiting to send results, this side to send
        // statements); the daemon's transactions stay far below this.
        if queued.count >= Self.queueLimit {
            let statements = queued
            queued = []
            _ = try pipeline(statements)
        }
    }

    static let hasPipeline = orch_pq_has_pipeline() == 1
    static let queueLimit = 64

    struct Statement {
        let sql: String
        let parameters: [PostgresValue?]
        var replay: Replay? = nil
        var answered: ((PostgresResult) throws -> Void)? = nil
    }

    /// A read standing in for a statement's lost answer (see `executeLater`).
    public struct Replay {
        let sql: String
        let parameters: [PostgresValue?]

        public init(_ sql: String, _ parameters: [PostgresValue?]) {
            self.sql = sql
            self.parameters = parameters
        }
    }

    /// The answers a broken pipeline took with it, taken off the connection (a later `begin` would forget them).
    public func takeLostAnswers() -> LostAnswers {
        defer { lostAnswers = [] }
        return LostAnswers(statements: lostAnswers)
    }

    /// Answers of a transaction's statements that the connection lost (see `takeLostAnswers`).
    public struct LostAnswers {
        let statements: [Statement]

        /// Whether every one of them can be read again (`replay`): otherwise they are gone for good.
        public var replayable: Bool { statements.allSatisfy { $0.replay != nil } }

        /// Once the transaction is known to have been applied: reads each answer again on `connection` (a new
        /// session) and hands it to its statement's handler, as the pipeline would have.
        public func replay(on connection: PostgresConnection) throws {
            for statement in statements {
                guard let replay = statement.replay else {
                    throw PostgresError(kind: .client, message: "a statement's answer was lost and cannot be read again")
                }
                try statement.answered?(try connection.execute(replay.sql, replay.parameters))
            }
        }
    }

    /// Parameters as libpq takes them: types (0: let the server infer it), text or binary formats, lengths and
    /// NUL-terminated buffers (nil: NULL), freed with this value.
    private final class EncodedParameters {
        var types: [UInt32] = []
        var formats: [Int32] = []
        var lengths: [Int32] = []
        var values: [UnsafePointer<CChar>?] = []
        var count: Int32 { Int32(types.count) }

        init(_ parameters: [PostgresValue?]) throws {
            for (index, parameter) in parameters.enumerated() {
                let (type, binary, bytes) = try PostgresConnection.encode(parameter, number: index + 1)
                types.append(type)
                formats.append(binary ? 1 : 0)
                lengths.append(Int32(bytes?.count ?? 0))
                values.append(bytes.map { bytes in
                    // Text parameters are read up to a NUL, so each buffer ends with one; bytea's length is explicit.
                    let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
                    bytes.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                    buffer[bytes.count] = 0
                    return UnsafePointer(buffer)
                })
            }
        }

        deinit { values.forEach { $0?.deallocate() } }
    }

    /// Sends `statements` (and the preparation of those not yet prepared) in one pipeline with one sync, then reads
    /// every answer. Returns the last statement's result; throws the first error (the server skips what follows it).
    private func pipeline(_ statements: [Statement]) throws -> PostgresResult {
        let encoded = try statements.map { try EncodedParameters($0.parameters) }
        guard orch_PQenterPipelineMode(connection) == 1 else { throw connectionError() }
        // Answers come in order: a pipeline that breaks off loses those of the statements after the last one read.
        var answered = 0
        var readToTheEnd = false
        defer { if !readToTheEnd { lostAnswers = statements[answered...].filter { $0.answered != nil } } }
        enum Sent {
            case preparation(PreparedKey)
            case statement(Int)
        }
        var sent: [Sent] = []
        for (index, statement) in statements.enumerated() {
            let parameters = encoded[index]
            let key = PreparedKey(sql: statement.sql, types: parameters.types)
            var name = prepared[key]
            if name == nil, prepared.count < Self.preparedLimit, Self.isPreparable(statement.sql) {
                let made = "orch_\(preparedCount)"
                preparedCount += 1
                guard orch_PQsendPrepare(connection, made, statement.sql, parameters.count, parameters.types) == 1 else {
                    throw abandonPipeline()
                }
                prepared[key] = made  // Taken back below should the server refuse it.
                sent.append(.preparation(key))
                name = made
            }
            let queuedOK = parameters.values.withUnsafeBufferPointer { values in
                if let name {
                    orch_PQsendQueryPrepared(
                        connection, name, parameters.count, values.baseAddress, parameters.lengths, parameters.formats, 0)
                } else {
                    orch_PQsendQueryParams(
                        connection, statement.sql, parameters.count, parameters.types, values.baseAddress,
                        parameters.lengths, parameters.formats, 0)
                }
            }
            guard queuedOK == 1 else { throw abandonPipeline() }
            sent.append(.statement(index))
        }
        guard orch_PQpipelineSync(connection) == 1 else { throw abandonPipeline() }
        // Any error, an answer's handler's included, waits until the pipeline has been read to its end.
        var firstError: (any Error)?
        var last: PostgresResult?
        for item in sent {
            guard let result = orch_PQgetResult(connection) else { throw abandonPipeline() }
            if orch_PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                orch_PQclear(result)
                if case .preparation(let key) = item { prepared[key] = nil }
            } else {
                do {
                    let copied = try consumeStatement(result)
                    if case .statement(let index) = item {
                        answered = index + 1
                        try statements[index].answered?(copied)
                        if index == statements.count - 1 { last = copied }
                    }
                } catch {
                    if case .preparation(let key) = item { prepared[key] = nil }
                    if firstError == nil { firstError = error }
                    if (error as? PostgresError)?.kind == .connection { throw abandonPipeline() }
                }
            }
            // Each command's results end with a null result.
            while let extra = orch_PQgetResult(connection) { orch_PQclear(extra) }
        }
        guard let sync = orch_PQgetResult(connection) else { throw abandonPipeline() }
        let synced = orch_PQresultStatus(sync) == PGRES_PIPELINE_SYNC
        orch_PQclear(sync)
        guard synced, orch_PQexitPipelineMode(connection) == 1 else { throw abandonPipeline() }
        readToTheEnd = true
        lostAnswers = []
        if let firstError { throw firstError }
        guard let last else { throw PostgresError(kind: .client, message: "the server sent no result for a statement") }
        return last
    }

    /// A pipeline that broke off (the connection failed while it was sent or read): its answers are not coming, so
    /// the session is not reused as it is; the error says so as a lost connection, and `isConnected` turns false,
    /// so the store renews it.
    private func abandonPipeline() -> PostgresError {
        let message = Self.errorMessage(of: connection)
        // Reset by the session's owner, who also sets the session up again (`reconnect()` and what follows it).
        abandoned = true
        prepared.removeAll()
        inTransaction = false
        return PostgresError(kind: .connection, message: message)
    }

    /// `consume`, and a statement error that invalidates the prepared statements drops them.
    private func consumeStatement(_ result: OpaquePointer?) throws -> PostgresResult {
        do {
            return try consume(result)
        } catch let error as PostgresError where Self.invalidatesPreparedStatements(error) {
            // The session lost them (a pooler reset it) or a schema change altered a result's columns: prepared
            // again from the next statement on. This statement's transaction has failed either way.
            prepared.removeAll()
            throw error
        }
    }

    /// The daemon sends the same few dozen statements thousands of times: prepared once per session, the server
    /// parses and plans each only once (measured: most of the server's CPU per file). Utility statements (BEGIN,
    /// LISTEN, DDL) and statements past `preparedLimit` (text built from data) go unnamed, as before.
    private func preparedStatement(_ sql: String, types: [UInt32]) throws -> String? {
        let key = PreparedKey(sql: sql, types: types)
        if let name = prepared[key] { return name }
        guard prepared.count < Self.preparedLimit, Self.isPreparable(sql) else { return nil }
        let name = "orch_\(preparedCount)"
        _ = try consume(orch_PQprepare(connection, name, sql, Int32(types.count), types))
        preparedCount += 1
        prepared[key] = name
        return name
    }

    private struct PreparedKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    static let preparedLimit = 256

    static func isPreparable(_ sql: String) -> Bool {
        let word = sql.drop(while: \.isWhitespace).prefix(while: \.isLetter).uppercased()
        return ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES"].contains(word)
    }

    /// 26000: the named statement is not in the session; 0A000 "cached plan must not change result type": the
    /// schema under it changed.
    static func invalidatesPreparedStatements(_ error: PostgresError) -> Bool {
        error.sqlState == "26000" || (error.sqlState == "0A000" && error.message.contains("cached plan"))
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
    ///
    /// `sendingLater`: BEGIN goes with the transaction's first statement (or COMMIT) instead, saving a round trip. A
    /// session found dead then fails that statement, not the BEGIN, so only a session known alive a moment ago should
    /// (`answeredWithin`).
    public func begin(isolation: IsolationLevel = .readCommitted, sendingLater: Bool = false) throws {
        guard !inTransaction else {
            throw PostgresError(kind: .client, message: "a transaction is already open on this connection (they do not nest)")
        }
        lostAnswers = []
        let statement = "BEGIN ISOLATION LEVEL \(isolation.rawValue)"
        if sendingLater, Self.hasPipeline {
            queued.append(Statement(sql: statement, parameters: []))
        } else {
            try execute(statement)
        }
        inTransaction = true
    }

    /// Whether the server answered on this session within `interval`: a session that did is very likely alive.
    public func answeredWithin(_ interval: Duration) -> Bool {
        lastAnswer.map { ContinuousClock.now - $0 < interval } ?? false
    }

    private var lastAnswer: ContinuousClock.Instant?

    /// Ends the open transaction without applying it. A broken connection has no transaction left to end.
    public func rollback() {
        inTransaction = false
        queued = []
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
        var statements = queued
        queued = []
        let result: PostgresResult
        do {
            if !statements.isEmpty {
                // The statements still queued, the notification and COMMIT in one round trip. After an error the
                // server skips the rest of the pipeline, COMMIT included.
                if let channel { statements.append(Statement(sql: "SELECT pg_notify($1, '')", parameters: [.text(channel)])) }
                statements.append(Statement(sql: "COMMIT", parameters: []))
                do {
                    result = try pipeline(statements)
                } catch let error as PostgresError where error.kind != .connection {
                    rollback()
                    guard error.sqlState == "25P02" else { throw error }
                    throw Self.rolledBackAtCommit
                }
            } else if let channel {
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

    /// Marks the session as not to be used again: `isConnected` turns false, so its owner opens a new one.
    public func abandon() {
        abandoned = true
        prepared.removeAll()
        inTransaction = false
    }

    /// Closes the connection and opens it again with the same parameters (`PQreset`), then LISTENs again on the
    /// channels it listened on. Session state is gone: advisory locks, prepared statements, an open transaction.
    /// Notifications sent while it was down are lost, so the caller catches up by reading the tables.
    public func reconnect() throws {
        inTransaction = false
        queued = []
        prepared.removeAll()
        _ = orch_PQexitPipelineMode(connection)
        orch_PQreset(connection)
        abandoned = false
        guard isConnected else {
            let message = Self.errorMessage(of: connection)
            throw PostgresError(kind: Self.connectFailureKind(message), message: "cannot reconnect to \(url.redacted): \(message)")
        }
        silenceNotices()
        try execute(Self.longLivedSession)
        for channel in channels { try execute("LISTEN \(try Self.quoteIdentifier(channel))") }
    }

    // MARK: Internals

    /// A server that answered and refused this login (a wrong password, a database or role that does not exist, no
    /// pg_hba.conf entry, an `sslmode` it cannot meet) gives the same answer on every retry, so it is `.server`, not a server out of reach to wait
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
        // The URL's TLS demands that this server cannot meet (libpq's own messages).
        "server does not support SSL, but SSL was required",
        "certificate verify failed",
        "does not match host name",
    ]

    /// Copies a result out of libpq and clears it, or turns it into a classified error.
    private func consume(_ result: OpaquePointer?) throws -> PostgresResult {
        guard let result else { throw connectionError() }
        defer { orch_PQclear(result) }
        switch orch_PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            lastAnswer = .now
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
