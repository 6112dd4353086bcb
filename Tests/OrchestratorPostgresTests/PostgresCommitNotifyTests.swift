import OrchestratorPostgres
import Testing

/// `commit(notifying:)`: the store's wake-up rides in the COMMIT's round trip.
@Suite(.enabled(if: TestServer.shouldRun, TestServer.skipReason))
struct PostgresCommitNotifyTests {
    @Test func aCommitThatNotifiesCommitsAndDeliversOnce() throws {
        let listener = try TestServer.connect()
        let sender = try TestServer.connect()
        let table = TestServer.uniqueName("committed")
        let channel = TestServer.uniqueName("it's here")  // a quote, to be escaped in the literal
        try listener.listen(channel)
        try sender.execute("CREATE TABLE \(table) (id INT)")
        defer { _ = try? sender.execute("DROP TABLE \(table)") }

        try sender.begin()
        try sender.execute("INSERT INTO \(table) VALUES (1)")
        try sender.commit(notifying: channel)
        #expect(try TestServer.notifications(on: listener) == [PostgresNotification(channel: channel, payload: "", senderPID: sender.backendPID)])
        #expect(try sender.execute("SELECT COUNT(*) FROM \(table)").scalar?.int64() == 1, "committed")
    }

    /// A notification the server refuses (here a channel name over 63 bytes) fails the commit, and leaves no
    /// transaction open behind it: the next one begins as usual.
    @Test func aNotificationThatFailsRollsTheTransactionBack() throws {
        let sender = try TestServer.connect()
        let table = TestServer.uniqueName("rolled_back")
        try sender.execute("CREATE TABLE \(table) (id INT)")
        defer { _ = try? sender.execute("DROP TABLE \(table)") }

        try sender.begin()
        try sender.execute("INSERT INTO \(table) VALUES (1)")
        #expect(throws: PostgresError.self) { try sender.commit(notifying: String(repeating: "c", count: 64)) }
        try sender.transaction { _ = try $0.execute("INSERT INTO \(table) VALUES (2)") }
        #expect(try sender.execute("SELECT array_agg(id)::text FROM \(table)").scalar?.string() == "{2}")
    }

    /// A transaction a failed statement spoiled is refused at COMMIT with the same error whether or not it notifies,
    /// and notifies nobody.
    @Test func aSpoiledTransactionIsRefusedAtCommitAndNotifiesNobody() throws {
        let listener = try TestServer.connect()
        let sender = try TestServer.connect()
        let channel = TestServer.uniqueName("spoiled")
        try listener.listen(channel)
        try sender.begin()
        _ = try? sender.execute("SELECT 1/0")
        do {
            try sender.commit(notifying: channel)
            Issue.record("a spoiled transaction committed")
        } catch let error as PostgresError {
            #expect(error.kind == .server && error.message.contains("rolled back at COMMIT"), "\(error)")
        }
        try sender.notify(channel, payload: "fence")
        #expect(try TestServer.notifications(on: listener).map(\.payload) == ["fence"])
    }
}
