import OrchestratorPostgres
import Testing

/// Statements prepared once per session and statements queued to go with the next one (pipeline mode): the store
/// sends most of its writes this way, so what a queued statement's failure or a lost connection does to the
/// transaction must be exactly what it would have done sent alone.
@Suite(.enabled(if: TestServer.shouldRun, TestServer.skipReason))
struct PostgresPipelineTests {
    @Test func queuedStatementsRunInOrderBeforeTheNextStatementAndAreCommittedWithIt() throws {
        let db = try TestServer.connect()
        let table = TestServer.uniqueName("pipe")
        try db.execute("CREATE TABLE \(table) (id bigint PRIMARY KEY, word text)")
        defer { _ = try? db.execute("DROP TABLE \(table)") }
        try db.transaction { tx in
            try tx.executeLater("INSERT INTO \(table) VALUES ($1, $2)", [.int(1), .text("one")])
            try tx.executeLater("UPDATE \(table) SET word = $1 WHERE id = $2", [.text("first"), .int(1)])
            // Answered after the queued statements ran, in the same transaction.
            let seen = try tx.execute("SELECT word FROM \(table) WHERE id = $1", [.int(1)]).scalar?.string()
            #expect(seen == "first")
            try tx.executeLater("INSERT INTO \(table) VALUES ($1, $2)", [.int(2), .text("two")])
        }
        let other = try TestServer.connect()
        let rows = try other.execute("SELECT id, word FROM \(table) ORDER BY id").rows.map { [try $0[0].int64().map(String.init), try $0[1].string()] }
        #expect(rows == [["1", "first"], ["2", "two"]])
    }

    @Test func aQueuedStatementsErrorSurfacesAtTheNextStatementAndNothingOfTheTransactionIsApplied() throws {
        let db = try TestServer.connect()
        let table = TestServer.uniqueName("pipe")
        try db.execute("CREATE TABLE \(table) (id bigint PRIMARY KEY)")
        defer { _ = try? db.execute("DROP TABLE \(table)") }
        #expect {
            try db.transaction { tx in
                try tx.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(1)])
                try tx.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(1)])  // A duplicate key.
                try tx.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(2)])
                _ = try tx.execute("SELECT 1")
            }
        } throws: { error in
            (error as? PostgresError)?.sqlState == "23505"
        }
        #expect(try db.execute("SELECT count(*) FROM \(table)").scalar?.int64() == 0)
        // The session goes on as usual.
        try db.transaction { tx in try tx.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(3)]) }
        #expect(try db.execute("SELECT array_agg(id)::text FROM \(table)").scalar?.string() == "{3}")
    }

    @Test func aQueuedStatementsErrorFailsTheCommitItWentWithAndRollsBack() throws {
        let db = try TestServer.connect()
        let table = TestServer.uniqueName("pipe")
        try db.execute("CREATE TABLE \(table) (id bigint PRIMARY KEY)")
        defer { _ = try? db.execute("DROP TABLE \(table)") }
        for notifying in [nil, TestServer.uniqueName("chan")] {
            try db.begin()
            try db.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(7)])
            try db.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(7)])
            #expect {
                try db.commit(notifying: notifying)
            } throws: { error in
                (error as? PostgresError).map { $0.sqlState == "23505" && $0.kind != .commitOutcomeUnknown } ?? false
            }
            #expect(try db.execute("SELECT count(*) FROM \(table)").scalar?.int64() == 0)
        }
    }

    @Test func outsideATransactionAQueuedStatementRunsAtOnce() throws {
        let db = try TestServer.connect()
        let table = TestServer.uniqueName("pipe")
        try db.execute("CREATE TABLE \(table) (id bigint)")
        defer { _ = try? db.execute("DROP TABLE \(table)") }
        try db.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(1)])
        let other = try TestServer.connect()
        #expect(try other.execute("SELECT count(*) FROM \(table)").scalar?.int64() == 1)
    }

    @Test func moreQueuedStatementsThanOnePipelineHoldsAreAllApplied() throws {
        let db = try TestServer.connect()
        let table = TestServer.uniqueName("pipe")
        try db.execute("CREATE TABLE \(table) (id bigint PRIMARY KEY)")
        defer { _ = try? db.execute("DROP TABLE \(table)") }
        try db.transaction { tx in
            for id in 1...500 { try tx.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(Int64(id))]) }
        }
        #expect(try db.execute("SELECT count(*), sum(id) FROM \(table)").rows.first.map { [try $0[0].int64(), try $0[1].int64()] } == [500, 125_250])
    }

    @Test func aCommitWhoseConnectionDiesWithQueuedStatementsIsOfUnknownOutcomeAndTheSessionRecovers() throws {
        let db = try TestServer.connect()
        let killer = try TestServer.connect()
        let table = TestServer.uniqueName("pipe")
        try killer.execute("CREATE TABLE \(table) (id bigint PRIMARY KEY)")
        defer { _ = try? killer.execute("DROP TABLE \(table)") }
        try db.begin()
        try db.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(1)])
        try killer.execute("SELECT pg_terminate_backend($1::int)", [.int(Int64(db.backendPID))])
        #expect {
            try db.commit()
        } throws: { error in
            (error as? PostgresError)?.kind == .commitOutcomeUnknown
        }
        try db.reconnect()
        // Prepared statements of the old session are gone with it; the same text is prepared again.
        #expect(try db.execute("SELECT count(*) FROM \(table) WHERE id = $1", [.int(1)]).scalar?.int64() == 0)
        try db.transaction { tx in
            try tx.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(1)])
            _ = try tx.execute("SELECT count(*) FROM \(table) WHERE id = $1", [.int(1)])
        }
        #expect(try killer.execute("SELECT count(*) FROM \(table)").scalar?.int64() == 1)
    }

    @Test func aPreparedStatementWhoseTableChangedShapeIsPreparedAgainAfterOneFailure() throws {
        let db = try TestServer.connect()
        let table = TestServer.uniqueName("pipe")
        try db.execute("CREATE TABLE \(table) (id bigint)")
        defer { _ = try? db.execute("DROP TABLE \(table)") }
        try db.execute("INSERT INTO \(table) VALUES ($1)", [.int(1)])
        let query = "SELECT * FROM \(table) WHERE id = $1"
        #expect(try db.execute(query, [.int(1)]).columns.count == 1)
        // Another daemon's newer version migrates the schema under this session's prepared statement.
        let other = try TestServer.connect()
        try other.execute("ALTER TABLE \(table) ADD COLUMN extra text")
        let first = Result { try db.execute(query, [.int(1)]) }
        if case .failure(let error) = first {
            #expect((error as? PostgresError)?.sqlState == "0A000")
        }
        #expect(try db.execute(query, [.int(1)]).columns.count == 2)
    }

    @Test func sameTextWithOtherParameterTypesIsPreparedSeparately() throws {
        let db = try TestServer.connect()
        #expect(try db.execute("SELECT $1", [.int(5)]).scalar?.int64() == 5)
        #expect(try db.execute("SELECT $1", [.text("five")]).scalar?.string() == "five")
        #expect(try db.execute("SELECT $1", [nil]).scalar?.isNull == true)
        #expect(try db.execute("SELECT $1", [.int(6)]).scalar?.int64() == 6)
    }
    @Test func aBeginSentWithTheFirstStatementOpensTheTransactionAsOneSentAlone() throws {
        let db = try TestServer.connect()
        let other = try TestServer.connect()
        let table = TestServer.uniqueName("pipe")
        try other.execute("CREATE TABLE \(table) (id bigint PRIMARY KEY)")
        defer { _ = try? other.execute("DROP TABLE \(table)") }
        try db.begin(sendingLater: true)
        try db.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(1)])
        #expect(try db.execute("SELECT count(*) FROM \(table)").scalar?.int64() == 1)
        // Not visible to others before COMMIT: the statements ran in the transaction, not each on its own.
        #expect(try other.execute("SELECT count(*) FROM \(table)").scalar?.int64() == 0)
        try db.commit()
        #expect(try other.execute("SELECT count(*) FROM \(table)").scalar?.int64() == 1)

        try db.begin(sendingLater: true)
        try db.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(2)])
        db.rollback()
        try db.begin(sendingLater: true)
        try db.commit()  // Nothing but BEGIN and COMMIT.
        try db.begin(sendingLater: true)
        try db.executeLater("INSERT INTO \(table) VALUES ($1)", [.int(3)])
        try db.commit()
        #expect(try other.execute("SELECT array_agg(id ORDER BY id)::text FROM \(table)").scalar?.string() == "{1,3}")
    }
}
