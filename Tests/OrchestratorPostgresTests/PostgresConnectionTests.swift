import Foundation
import Glibc
import OrchestratorPostgres
import Testing

/// The client against a real server: what the job-store engine relies on (exact values, bound parameters,
/// transactions, classified errors, SKIP LOCKED claims, advisory locks, LISTEN/NOTIFY through a pollable socket).
@Suite(.enabled(if: TestServer.shouldRun, TestServer.skipReason))
struct PostgresConnectionTests {
    @Test func everyValueTypeRoundTripsExactlyAsAParameterAndThroughATable() throws {
        let db = try TestServer.connect()
        let values: [PostgresValue?] = [
            .int(.min), .int(.max), .int(0), .double(0.1), .double(-1.5e300), .double(.leastNonzeroMagnitude), .double(.infinity),
            .double(-.infinity), .bool(true), .bool(false), .text(""), .text("héllo ✓ 日本"),
            .bytes([0, 0xFF, 0x00, 0x27, 0x5C, 0x80, 0xFE]), .bytes([]), nil,
        ]
        let placeholders = values.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
        let direct = try db.execute("SELECT \(placeholders)", values)
        #expect(direct.rows.count == 1)
        for (index, value) in values.enumerated() {
            #expect(try direct.rows[0][index].value() == value, "parameter $\(index + 1)")
        }
        let nan = try db.execute("SELECT $1", [.double(.nan)]).scalar?.double()
        #expect(nan?.isNaN == true)

        try db.execute(
            "CREATE TEMP TABLE kinds (i bigint, d double precision, b boolean, t text, y bytea, n text)")
        let row: [PostgresValue?] = [.int(-42), .double(2.5), .bool(true), .text("it's"), .bytes([0, 0xFF, 0]), nil]
        let inserted = try db.execute("INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6)", row)
        #expect(inserted.affectedRows == 1)
        let read = try db.execute("SELECT i, d, b, t, y, n FROM kinds")
        #expect(read.rows.count == 1)
        let cells = read.rows[0]
        #expect(try cells.cell("i").int64() == -42)
        #expect(try cells.cell("d").double() == 2.5)
        #expect(try cells.cell("b").bool() == true)
        #expect(try cells.cell("t").string() == "it's")
        #expect(try cells.cell("y").bytes() == [0, 0xFF, 0])
        #expect(try cells.cell("n").isNull)
        #expect(try cells.cell("n").string() == nil)
        #expect(try cells.cell("n").int64() == nil)
        #expect(read.columns.map(\.typeOID) == [20, 701, 16, 25, 17, 25])
    }

    @Test func aValueReadAsTheWrongTypeIsAClientErrorNamingTheColumn() throws {
        let db = try TestServer.connect()
        let row = try #require(try db.execute("SELECT 'abc'::text AS word, 7 AS seven").rows.first)
        #expect {
            try row.cell("word").int64()
        } throws: { error in
            (error as? PostgresError).map { $0.kind == .client && $0.message.contains("\"word\"") } ?? false
        }
        #expect(throws: PostgresError.self) { try row.cell("seven").bytes() }
        #expect(throws: PostgresError.self) { try row.cell("missing") }
    }

    @Test func parametersThatWouldBreakStringBuiltSQLAreStoredVerbatim() throws {
        let db = try TestServer.connect()
        try db.execute("CREATE TEMP TABLE names (name text)")
        let hostile = [
            "O'Brien", "'; DROP TABLE names; --", "back\\slash", "\\x00ff", "E'\\\\'", "$1", "\"quoted\"", "--", "/* c */",
        ]
        for name in hostile { try db.execute("INSERT INTO names (name) VALUES ($1)", [.text(name)]) }
        let stored = try db.execute("SELECT name FROM names ORDER BY name").rows.map { try $0[0].string() }
        #expect(stored.sorted { ($0 ?? "") < ($1 ?? "") } == hostile.sorted())
        let found = try db.execute("SELECT count(*) FROM names WHERE name = $1", [.text("'; DROP TABLE names; --")])
        #expect(try found.scalar?.int64() == 1)
        #expect {
            try db.execute("SELECT $1", [.text("nul\u{0}inside")])
        } throws: { error in
            (error as? PostgresError)?.kind == .client
        }
    }

    @Test func aThrowingTransactionIsRolledBackAndItsErrorRethrown() throws {
        struct Abandon: Error {}
        let db = try TestServer.connect()
        try db.execute("CREATE TEMP TABLE ledger (id bigint PRIMARY KEY)")
        #expect(throws: Abandon.self) {
            try db.transaction { tx in
                try tx.execute("INSERT INTO ledger VALUES ($1)", [.int(1)])
                throw Abandon()
            }
        }
        #expect(try db.execute("SELECT count(*) FROM ledger").scalar?.int64() == 0)

        let committed = try db.transaction { tx in
            try tx.execute("INSERT INTO ledger VALUES ($1)", [.int(2)]).affectedRows
        }
        #expect(committed == 1)
        #expect(try db.execute("SELECT id FROM ledger").rows.map { try $0[0].int64() } == [2])

        // A statement that failed inside (its error caught) dooms the transaction; COMMIT must not look like success.
        #expect(throws: PostgresError.self) {
            try db.transaction { tx in
                try tx.execute("INSERT INTO ledger VALUES ($1)", [.int(3)])
                _ = try? tx.execute("INSERT INTO ledger VALUES ($1)", [.int(2)])
            }
        }
        #expect(try db.execute("SELECT count(*) FROM ledger").scalar?.int64() == 1)
        #expect(throws: PostgresError.self) { try db.transaction { tx in try tx.transaction { _ in } } }
    }

    @Test func aScriptRunsItsStatementsInOneTransactionSoAFailedMigrationLeavesNothing() throws {
        let db = try TestServer.connect()
        #expect {
            try db.executeScript("CREATE TEMP TABLE half (x int); INSERT INTO half VALUES (1); INSERT INTO half VALUES ('x')")
        } throws: { error in
            (error as? PostgresError).map { $0.kind == .server && $0.sqlState == "22P02" } ?? false
        }
        #expect(try db.execute("SELECT to_regclass('pg_temp.half') IS NULL").scalar?.bool() == true)
        let last = try db.executeScript("CREATE TEMP TABLE whole (x int); INSERT INTO whole VALUES (1), (2)")
        #expect(last.command == "INSERT 0 2")
        #expect(try db.execute("SELECT sum(x) FROM whole").scalar?.int64() == 3)
    }

    @Test func aUniqueViolationIsAConstraintErrorWithItsSQLState() throws {
        let db = try TestServer.connect()
        try db.execute("CREATE TEMP TABLE slots (task text, slot bigint, CONSTRAINT one_firing UNIQUE (task, slot))")
        try db.execute("INSERT INTO slots VALUES ($1, $2)", [.text("backup"), .int(100)])
        #expect {
            try db.execute("INSERT INTO slots VALUES ($1, $2)", [.text("backup"), .int(100)])
        } throws: { error in
            guard let error = error as? PostgresError else { return false }
            return error.kind == .constraint && error.sqlState == "23505" && error.constraint == "one_firing"
                && error.detail?.contains("(backup, 100)") == true
        }
        #expect {
            try db.execute("SELEC 1")
        } throws: { error in
            (error as? PostgresError).map { $0.kind == .server && $0.sqlState == "42601" } ?? false
        }
        // The connection stays usable after a statement error.
        #expect(try db.execute("SELECT 1").scalar?.int64() == 1)
    }

    @Test func aTerminatedBackendIsAConnectionErrorAndReconnectRestoresTheConnection() throws {
        let victim = try TestServer.connect()
        let admin = try TestServer.connect()
        let channel = TestServer.uniqueName("after_reset")
        try victim.listen(channel)
        let oldPID = victim.backendPID
        // The timeout makes pg_terminate_backend wait until the backend has exited, so the next statement cannot
        // race it.
        let terminated = try admin.execute("SELECT pg_terminate_backend($1::int, 5000)", [.int(Int64(oldPID))])
        #expect(try terminated.scalar?.bool() == true)
        #expect {
            try victim.execute("SELECT 1")
        } throws: { error in
            guard let error = error as? PostgresError else { return false }
            // One line for the log, however many libpq wrote.
            return error.kind == .connection && !error.message.contains("\n") && !error.message.contains("\t")
        }
        #expect(!victim.isConnected)

        try victim.reconnect()
        #expect(victim.isConnected)
        #expect(victim.backendPID != oldPID)
        #expect(try victim.execute("SELECT 1").scalar?.int64() == 1)
        // The reconnected session listens again on its channels.
        try admin.notify(channel, payload: "after reconnect")
        #expect(try TestServer.notifications(on: victim).map(\.payload) == ["after reconnect"])
    }

    /// A connection lost while COMMIT was on its way is not a plain connection error: whether the server applied the
    /// transaction is unknown, so a caller must not send it again as it would after a lost BEGIN.
    @Test func aConnectionLostDuringCommitSaysTheOutcomeIsUnknown() throws {
        let victim = try TestServer.connect()
        let table = TestServer.uniqueName("slow_commit")
        // A deferred constraint trigger runs at COMMIT: this one holds the COMMIT until the backend is ended.
        try victim.executeScript("""
            CREATE TABLE \(table) (id int);
            CREATE FUNCTION \(table)_wait() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER \(table)_at_commit AFTER INSERT ON \(table) DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION \(table)_wait();
            """)
        let backend = victim.backendPID
        // Another session ends the victim's backend once it is seen running the COMMIT.
        let ended = DispatchSemaphore(value: 0)
        let ender = Thread {
            defer { ended.signal() }
            guard let admin = try? TestServer.connect() else { return }
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let running = try? admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int AND state = 'active' AND query = 'COMMIT'",
                    [.int(Int64(backend))]
                ).scalar?.int64()
                if running == 1 {
                    _ = try? admin.execute("SELECT pg_terminate_backend($1::int, 5000)", [.int(Int64(backend))])
                    return
                }
                _ = poll(nil, 0, 10)
            }
        }
        try victim.begin()
        try victim.execute("INSERT INTO \(table) VALUES (1)")
        ender.start()
        #expect {
            try victim.commit()
        } throws: { error in
            (error as? PostgresError)?.kind == .commitOutcomeUnknown
        }
        ended.wait()
        let admin = try TestServer.connect()
        try admin.executeScript("DROP TABLE \(table); DROP FUNCTION \(table)_wait()")
    }

    @Test func twoClaimersWithSkipLockedEachGetADifferentRow() throws {
        let first = try TestServer.connect()
        let second = try TestServer.connect()
        let third = try TestServer.connect()
        let table = TestServer.uniqueName("claims")
        try first.execute("CREATE TABLE \(table) (id bigint PRIMARY KEY, state text NOT NULL)")
        defer { _ = try? first.execute("DROP TABLE IF EXISTS \(table)") }
        try first.execute("INSERT INTO \(table) VALUES (1, 'queued'), (2, 'queued')")
        let claim = "SELECT id FROM \(table) WHERE state = 'queued' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1"

        let (firstRow, secondRow, thirdRow) = try first.transaction { a in
            let firstRow = try a.execute(claim).scalar?.int64()
            return try second.transaction { b in
                let secondRow = try b.execute(claim).scalar?.int64()
                let thirdRow = try third.transaction { c in try c.execute(claim).scalar?.int64() }
                return (firstRow, secondRow, thirdRow)
            }
        }
        #expect(firstRow == 1)
        #expect(secondRow == 2)
        #expect(thirdRow == nil)
    }

    @Test func anAdvisoryLockHeldByOneConnectionIsRefusedToAnother() throws {
        let holder = try TestServer.connect()
        let other = try TestServer.connect()
        let key = Int64.random(in: 1...Int64.max)
        try holder.advisoryLock(key)
        #expect(try other.tryAdvisoryLock(key) == false)
        #expect(try other.advisoryUnlock(key) == false)
        #expect(try holder.advisoryUnlock(key) == true)
        #expect(try other.tryAdvisoryLock(key) == true)
        #expect(try holder.tryAdvisoryLock(key) == false)
        #expect(try other.advisoryUnlock(key) == true)
    }

    @Test func aNotificationIsReadAfterTheListenersSocketBecomesReadable() throws {
        let listener = try TestServer.connect()
        let sender = try TestServer.connect()
        let channel = TestServer.uniqueName("Wake Up")  // quoted: case and spaces are kept
        try listener.listen(channel)
        #expect(listener.socketDescriptor >= 0)
        // Nothing sent yet: it returns at once with nothing rather than waiting.
        #expect(try listener.consumeNotifications().isEmpty)

        struct Abandon: Error {}
        _ = try? sender.transaction { tx in
            try tx.notify(channel, payload: "rolled back")
            throw Abandon()
        }
        try sender.transaction { tx in try tx.notify(channel, payload: "job 42") }
        let received = try TestServer.notifications(on: listener)
        // Notifications from one sender arrive in commit order, so the rolled-back one would have come first.
        #expect(received == [PostgresNotification(channel: channel, payload: "job 42", senderPID: sender.backendPID)])

        try listener.unlisten(channel)
        try sender.notify(channel, payload: "unheard")
        try listener.execute("SELECT 1")  // a round trip after which an unheard notification would have arrived
        #expect(try listener.consumeNotifications().isEmpty)
    }

    /// A server that answers and refuses the login gives the same answer on every retry: not a server out of reach.
    @Test func aRefusedLoginIsAServerErrorNotAConnectionToWaitFor() throws {
        let url = try #require(TestServer.url)
        let base = try PostgresURL(url)
        var noDatabase = base
        noDatabase.database = TestServer.uniqueName("missing")
        var noRole = base
        noRole.user = TestServer.uniqueName("nobody")
        for refused in [noDatabase, noRole] {
            #expect {
                try PostgresConnection(url: refused)
            } throws: { error in
                (error as? PostgresError)?.kind == .server && "\(error)".contains("does not exist")
            }
        }
        // The test server has no TLS: `sslmode=require` is refused the same way every time (it was waited for).
        var tls = base
        tls.parameters["sslmode"] = "require"
        #expect {
            try PostgresConnection(url: tls)
        } throws: { error in
            (error as? PostgresError)?.kind == .server && "\(error)".contains("server does not support SSL")
        }
        #expect(PostgresConnection.connectFailureKind(
            "connection to server at \"h\", port 5432 failed: FATAL:  password authentication failed for user \"u\"") == .server)
        #expect(PostgresConnection.connectFailureKind(
            "connection to server at \"h\", port 5432 failed: FATAL:  the database system is starting up") == .connection)
        #expect(PostgresConnection.connectFailureKind(
            "connection to server at \"h\", port 5432 failed: FATAL:  sorry, too many clients already") == .connection)
        #expect(PostgresConnection.connectFailureKind(
            "connection to server at \"h\", port 5432 failed: Connection refused") == .connection)
    }
}
