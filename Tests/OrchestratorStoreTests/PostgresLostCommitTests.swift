import Foundation
import OrchestratorCore
import OrchestratorPostgres
import OrchestratorPostgresStore
import OrchestratorStore
import Testing

/// A connection lost while COMMIT was on its way (a server crash, a cut network): the transaction's id, taken with
/// BEGIN, tells once the server answers whether it was applied. Not applied, the write fails as for a server that
/// went away, and the daemon sends it again; nothing is applied twice, and the daemon need not stop.
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
                try $0.insertJob(kind: .file, name: RelativePath(Array("slow".utf8)), handler: "h", state: .queued, priority: 5, maxAttempts: 1, at: 1)
            }
        } throws: { error in
            StoreFailure.classify(error) == .unreachable && "\(error)".contains("the server did not apply it")
        }
        ended.wait()
        // Nothing of it was applied, and the next write goes through on a new session.
        #expect(try store.read { try $0.latestJob(kind: .file, name: RelativePath(Array("slow".utf8))) } == nil)
        let id = try store.write {
            try $0.insertJob(kind: .file, name: RelativePath(Array("fast".utf8)), handler: "h", state: .queued, priority: 5, maxAttempts: 1, at: 2)
        }
        #expect(try store.read { try $0.job(id: id) }?.state == .queued)
    }
}
