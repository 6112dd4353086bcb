import Foundation
import OrchestratorCore
import OrchestratorPostgres
import OrchestratorPostgresStore
import OrchestratorStore
import Testing

/// A connection lost while COMMIT was on its way (a server crash, a cut network): the writer's `commit_mark` row
/// tells once the server answers whether it was applied. Not applied, the write fails as for a server that went away,
/// and the daemon sends it again; applied, the answers the connection lost are read again. Nothing is applied twice,
/// and the daemon need not stop.
@Suite(.serialized) struct PostgresLostCommitTests {
    @Test func aCommitLostAndNotAppliedIsAnUnreachableServerNotAnUnknownOutcome() throws {
        guard StoreEngine.all.contains(where: { $0.name == "postgres" }) else { return }
        let url = try #require(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"])
        let schema = "orch_lost_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let store = try PostgresStore(url: url, schema: schema)
        let admin = try PostgresConnection(url: url)
        defer { _ = try? admin.execute("DROP SCHEMA \"\(schema)\" CASCADE") }
        let key = Int64.random(in: 1...Int64.max)
        // At COMMIT, an insert of a job named "slow" takes a session lock (which names its backend to others) and waits.
        try admin.executeScript("""
            SET search_path TO "\(schema)";
            CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.name = 'slow'::bytea THEN PERFORM pg_advisory_lock(\(key)); PERFORM pg_sleep(30); END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON job DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION hold_commit();
            """)
        let ended = DispatchSemaphore(value: 0)
        let ender = Thread {
            defer { ended.signal() }
            guard let watcher = try? PostgresConnection(url: url) else { return }
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let holder = try? watcher.execute(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = $1",
                    [.int(key)]
                ).scalar?.int64()
                if let holder {
                    _ = try? watcher.execute("SELECT pg_terminate_backend($1::int, 5000)", [.int(holder)])
                    return
                }
                usleep(10_000)
            }
        }
        ender.start()
        #expect {
            try store.write {
                try Self.queueFile($0, "slow", at: 1)
            }
        } throws: { error in
            StoreFailure.classify(error) == .unreachable && "\(error)".contains("the server did not apply it")
        }
        ended.wait()
        // Nothing of it was applied, and the next write goes through on a new session.
        #expect(try store.read { try $0.latestJob(kind: .file, name: RelativePath(Array("slow".utf8))) } == nil)
        let id = try store.write {
            try Self.queueFile($0, "fast", at: 2)
        }
        #expect(try store.read { try $0.job(id: id) }?.state == .queued)
    }

    /// A server that crashes before anything commits after a write that was not applied loses that write's advance of
    /// the job id sequence, and hands the same ids out again. Ids the store had taken ahead of need in that write are
    /// therefore not used: before, the next block fetched after the restart collided with them ("duplicate key value
    /// violates unique constraint job_pkey", and the daemon stopped). The crash's loss is played here by `setval`.
    @Test func idsTakenInAWriteThatWasNotAppliedAreNotUsedAgain() throws {
        guard StoreEngine.all.contains(where: { $0.name == "postgres" }) else { return }
        let url = try #require(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"])
        let schema = "orch_ids_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let store = try PostgresStore(url: url, schema: schema)
        let admin = try PostgresConnection(url: url)
        defer { _ = try? admin.execute("DROP SCHEMA \"\(schema)\" CASCADE") }
        let first = try store.write { try Self.queueFile($0, "first", at: 1) }
        struct NotApplied: Error {}
        // Past the end of the block `first` came from, so that this write fetches the next block itself.
        #expect(throws: NotApplied.self) {
            try store.write { transaction in
                for index in 0..<40 { _ = try Self.queueFile(transaction, "lost\(index)", at: 2) }
                throw NotApplied()
            }
        }
        let durable = try #require(try admin.execute("SELECT max(id) FROM \"\(schema)\".job").scalar?.int64())
        #expect(durable == first)
        _ = try admin.execute("SELECT setval(pg_get_serial_sequence('\"\(schema)\".job', 'id'), $1)", [.int(durable)])
        let ids = try store.write { transaction in
            try (0..<60).map { try Self.queueFile(transaction, "after\($0)", at: 3) }
        }
        #expect(Set(ids).count == 60 && ids.allSatisfy { $0 > first })
        #expect(try store.read { try $0.job(id: ids[59]) }?.state == .queued)
    }

    /// The COMMIT is applied but the connection is cut before its answers come back (`CommitCuttingProxy`): what the
    /// transaction's statements would have answered (a claim, a guarded end held or refused) is read again from what
    /// it left, and the write returns as if nothing had happened. Before, the daemon had to stop.
    @Test func aCommitAppliedWhoseAnswersWereLostAnswersFromWhatItLeft() throws {
        guard let proxied = try Proxied("lostanswer") else { return }
        defer { withExtendedLifetime(proxied) {} }  // Its schema is dropped when it goes.
        let (url, proxy, schema, store) = (proxied.url, proxied.proxy, proxied.schema, proxied.store)
        let name = { (text: String) in RelativePath(Array(text.utf8)) }
        let id = try store.write { try Self.queueFile($0, "a", at: 1) }

        /// `body` in one write whose COMMIT is applied and whose answers are lost; a marker job says it was applied.
        func writeLosingTheAnswers<T>(_ marker: String, _ body: @escaping (any StoreTransaction) throws -> T) throws -> T {
            let cutsBefore = proxy.cutCount
            proxy.loseTheNextCommitsAnswer {
                let seen = try? PostgresConnection(url: url).execute(
                    "SELECT count(*) FROM \"\(schema)\".job WHERE name = $1", [.bytes(Array(marker.utf8))]
                ).scalar?.int64()
                return seen == 1
            }
            let value = try store.write { transaction in
                _ = try transaction.insertJob(kind: .file, name: name(marker), handler: "h", state: .done, priority: 5, maxAttempts: 1, at: 2)
                return try body(transaction)
            }
            #expect(proxy.cutCount == cutsBefore + 1, "the COMMIT's answers were cut off")
            return value
        }

        let claimed = try writeLosingTheAnswers("m1") { try $0.claimJobAnswered(id: id, node: "n1", lease: 30) }
        let record = try #require(claimed.value ?? nil, "the claim's answer was read again")
        #expect(record.id == id && record.state == .running && record.owner == "n1" && record.claims == 1)

        // A claim that did not take the job (it runs already) still answers nil.
        let notClaimed = try writeLosingTheAnswers("m2") { try $0.claimJobAnswered(id: id, node: "n2", lease: 30) }
        #expect(notClaimed.value != nil && notClaimed.value! == nil)

        let refusals = Refusals()
        try writeLosingTheAnswers("m3") {
            try $0.finishClaimed(
                jobID: id, node: "n1", claim: 2, to: .done, attempts: nil, notBefore: nil, reason: nil, detail: nil, at: 3,
                whenRefused: { refusals.count += 1 })
        }
        #expect(refusals.count == 1, "an end under a claim that is not this daemon's is refused")
        try writeLosingTheAnswers("m4") {
            try $0.finishClaimed(
                jobID: id, node: "n1", claim: 1, to: .done, attempts: nil, notBefore: nil, reason: nil, detail: nil, at: 4,
                whenRefused: { refusals.count += 1 })
        }
        #expect(refusals.count == 1, "the end under the daemon's own claim held")
        #expect(try store.read { try $0.job(id: id) }?.state == .done)
    }

    /// The server stays away well past the 20 s a write used to wait for a lost COMMIT's outcome: the daemon's write
    /// waits as long as it takes, saying so once and telling its hooks it is alive (the watchdog), and returns as if
    /// nothing had happened once the server answers. Before, the write gave up after 20 s, and the daemon stopped
    /// (exit 1) when the server came back and said the COMMIT had been applied.
    @Test func aCommitLostWhileTheServerStaysAwayLongIsSettledWhenItAnswers() throws {
        guard let proxied = try Proxied("lostlong") else { return }
        defer { withExtendedLifetime(proxied) {} }  // Its schema is dropped when it goes.
        let (url, proxy, schema, store) = (proxied.url, proxied.proxy, proxied.schema, proxied.store)
        let heard = Heard()
        // Alive every second rather than every 10 s, so that a few seconds away show several: the wait past the 20 s a
        // write used to wait is the daemon's integration test (aCommitLostInALongOutageIsWaitedOutHoweverLong).
        store.handLongWaits(LongWaitHooks(
            notice: { heard.add(notice: $0) }, stillWaiting: { heard.add(alive: 1) }, givesUp: { _ in false }, aliveEvery: .seconds(1)))
        let id = try store.write {
            try Self.queueFile($0, "a", at: 1)
        }
        let away: TimeInterval = 5
        proxy.loseTheNextCommitsAnswer(away: away) {
            let state = try? PostgresConnection(url: url).execute(
                "SELECT state FROM \"\(schema)\".job WHERE id = $1", [.int(id)]
            ).scalar?.text
            return state == Array("running".utf8)
        }
        let started = Date()
        let claimed = try store.write { try $0.claimJobAnswered(id: id, node: "n1", lease: 30) }
        let waited = Date().timeIntervalSince(started)
        #expect(proxy.cutCount == 1)
        #expect(waited >= away, "it waited until the server answered: \(waited) s")
        #expect((claimed.value ?? nil)?.owner == "n1", "the claim's lost answer was read again")
        #expect(heard.notices.count == 1 && heard.notices[0].contains("as long as it is away"), "\(heard.notices)")
        #expect(heard.alive >= 3, "alive every second while waiting: \(heard.alive)")
        // The next write has nothing left to settle.
        let next = try store.write {
            try Self.queueFile($0, "b", at: 2)
        }
        #expect(try store.read { try $0.job(id: next) }?.state == .queued)
    }

    /// A wait given up (a stop signal) leaves the outcome open: that write fails as for a server out of reach, and the
    /// next, once the server answers and says the COMMIT was applied, fails as an unknown outcome (the stopping
    /// daemon's next start recovers from the store).
    @Test func aWaitGivenUpLeavesTheOutcomeForTheNextWrite() throws {
        guard let proxied = try Proxied("lostgiveup") else { return }
        defer { withExtendedLifetime(proxied) {} }  // Its schema is dropped when it goes.
        let (url, proxy, schema, store) = (proxied.url, proxied.proxy, proxied.schema, proxied.store)
        store.handLongWaits(LongWaitHooks(notice: { _ in }, stillWaiting: {}, givesUp: { $0 >= .seconds(1) }))
        // The writer's first write registers it in a COMMIT of its own: that one is not the one to lose.
        _ = try store.write {
            try Self.queueFile($0, "first", at: 0)
        }
        let name = RelativePath(Array("given-up".utf8))
        proxy.loseTheNextCommitsAnswer(away: 3) {
            let seen = try? PostgresConnection(url: url).execute(
                "SELECT count(*) FROM \"\(schema)\".job WHERE name = $1", [.bytes(Array("given-up".utf8))]
            ).scalar?.int64()
            return seen == 1
        }
        #expect {
            try store.write { try $0.insertJob(kind: .file, name: name, handler: "h", state: .queued, priority: 5, maxAttempts: 1, at: 1) }
        } throws: { StoreFailure.classify($0) == .unreachable }
        // The server is back once a new session can be opened through the proxy; the given-up COMMIT was applied.
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline, (try? PostgresConnection(url: proxied.proxiedURL)) == nil { usleep(100_000) }
        #expect(try store.read { try $0.latestJob(kind: .file, name: name) } != nil)
        #expect {
            try store.write { try Self.queueFile($0, "x", at: 2) }
        } throws: { error in
            (error as? PostgresError)?.kind == .commitOutcomeUnknown
        }
    }

    /// A store whose connections go through a `CommitCuttingProxy`, in a schema of its own dropped at the end; nil
    /// without a PostgreSQL engine.
    final class Proxied {
        let url: String
        let proxiedURL: String
        let proxy: CommitCuttingProxy
        let schema: String
        let store: PostgresStore
        private let admin: PostgresConnection

        init?(_ label: String) throws {
            guard StoreEngine.all.contains(where: { $0.name == "postgres" }) else { return nil }
            url = try #require(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"])
            let port = try #require(try PostgresURL(url).port)
            proxy = try CommitCuttingProxy(serverPort: UInt16(port))
            proxiedURL = url.replacingOccurrences(of: ":\(port)/", with: ":\(proxy.port)/")
            schema = "orch_\(label)_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
            store = try PostgresStore(url: proxiedURL, schema: schema)
            admin = try PostgresConnection(url: url)
        }

        deinit { _ = try? admin.execute("DROP SCHEMA \"\(schema)\" CASCADE") }
    }

    /// A queued file job: what these tests write when only its being there counts.
    @discardableResult
    static func queueFile(_ transaction: any StoreTransaction, _ name: String, at time: Double) throws -> Int64 {
        try transaction.insertJob(
            kind: .file, name: RelativePath(Array(name.utf8)), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: time)
    }

    final class Refusals: @unchecked Sendable {
        var count = 0
    }

    final class Heard: @unchecked Sendable {
        private let lock = NSLock()
        private var noticesSaid: [String] = []
        private var aliveSaid = 0
        var notices: [String] { lock.withLock { noticesSaid } }
        var alive: Int { lock.withLock { aliveSaid } }
        func add(notice: String) { lock.withLock { noticesSaid.append(notice) } }
        func add(alive: Int) { lock.withLock { aliveSaid += alive } }
    }
}
