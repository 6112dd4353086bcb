#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// The daemon on a PostgreSQL store (`--store`, `[store] url`, `$ORCHESTRATOR_STORE`): the same guarantees as on
/// SQLite, across a SIGKILL of the daemon and a crash of the server. Against the server scripts/test starts
/// (scripts/postgres); each test has a database of its own. Under `CI=true` a missing server fails these tests.
@Suite(.serialized, .timeLimit(.minutes(3))) struct PostgresStoreTests {
    /// Records each run in runs.log, then takes a moment, so that a kill finds files in flight.
    static let recordingWorker = """
        command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> ../runs.log; sleep 0.05']
        max_attempts = 1
        """

    struct Server {
        let url: String
        let environment: [String: String]

        init() throws {
            environment = ProcessInfo.processInfo.environment
            guard let url = environment["ORCH_TEST_POSTGRES_URL"], !url.isEmpty else {
                throw TimedOut(description: "ORCH_TEST_POSTGRES_URL is unset: run scripts/test (it starts a PostgreSQL)")
            }
            self.url = url
        }

        /// A new, empty database on the server; its URL.
        func freshDatabase() throws -> String {
            let name = "orch_it_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
            _ = try Self.psql(url, "CREATE DATABASE \(name)")
            guard let slash = url.lastIndex(of: "/") else { throw TimedOut(description: "no database in \(url)") }
            return url[..<slash] + "/" + name
        }

        /// `pg_ctl ARGS` on the test server, as the user that runs it.
        func pgctl(_ arguments: [String]) throws {
            guard let data = environment["ORCH_TEST_POSTGRES_DATA"], let bin = environment["ORCH_TEST_POSTGRES_BIN"] else {
                throw TimedOut(description: "scripts/postgres did not say where the server's data is")
            }
            var command = [bin + "/pg_ctl", "-D", data] + arguments
            if let user = environment["ORCH_TEST_POSTGRES_USER"], !user.isEmpty { command = ["/usr/sbin/runuser", "-u", user, "--"] + command }
            // Not Foundation's Process: the server pg_ctl leaves running inherits what Process watches for its
            // child's end, so Process would wait for the server. posix_spawn and waitpid see pg_ctl's own exit.
            var pid: pid_t = 0
            let argv = command.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            guard posix_spawn(&pid, command[0], &actions, nil, argv, environ) == 0 else {
                throw TimedOut(description: "cannot start pg_ctl")
            }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            guard status == 0 else { throw TimedOut(description: "pg_ctl \(arguments) failed (wait status \(status))") }
        }

        func crash() throws { try pgctl(["-m", "immediate", "-w", "stop"]) }

        func start() throws {
            let sockets = environment["ORCH_TEST_POSTGRES_SOCKETS"] ?? "/tmp"
            let port = environment["ORCH_TEST_POSTGRES_PORT"] ?? "5432"
            try pgctl([
                "-w", "-l", sockets + "/server.log", "start", "-o", "-p \(port) -k \(sockets) -c listen_addresses=127.0.0.1",
            ])
        }
    }

    @Test func filesReachDoneExactlyOnceAcrossASIGKILLOfTheDaemon() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let instance = try TestInstance(config: testConfig(handler: Self.recordingWorker))
        try instance.startDaemon(extraArguments: ["--store", store])
        let names = (1...60).map { "f\($0).txt" }
        for name in names { try instance.drop(name) }
        try instance.waitUntil("a third is done", timeout: 30) { instance.count(in: "Done") >= 20 }
        instance.killDaemon()
        let interrupted = Set(instance.lines(of: "runs.log")).subtracting(instance.names(in: "Done").map { String(decoding: $0, as: UTF8.self) })

        try instance.startDaemon(environment: ["ORCHESTRATOR_STORE": store])
        try instance.waitUntil("every file is done", timeout: 60) { instance.count(in: "Done") == 60 }
        #expect(instance.count(in: "Failed") == 0 && instance.count(in: "Inbox") == 0)
        #expect(instance.count(in: "Inbox/.processing") == 0)
        // Only a run the kill cut short ran again (at most max_concurrent of them).
        let runs = instance.lines(of: "runs.log")
        var perFile: [String: Int] = [:]
        for run in runs { perFile[run, default: 0] += 1 }
        let repeated = Set(perFile.filter { $0.value > 1 }.keys)
        #expect(Set(perFile.keys) == Set(names))
        #expect(repeated.count <= 2 && repeated.isSubset(of: interrupted), "repeated \(repeated), in flight at the kill \(interrupted)")
        #expect(perFile.values.allSatisfy { $0 <= 2 })
        // The store agrees: one job per file, each done with one succeeded attempt.
        let rows = try Server.psql(
            store, "SELECT count(*), count(DISTINCT name), count(*) FILTER (WHERE state = 'done') FROM job")
        #expect(rows == "60|60|60")
        let succeeded = try Server.psql(store, "SELECT count(*) FROM attempt WHERE outcome = 'succeeded'")
        #expect(succeeded == "60")
        let status = try instance.run(["status", "--store", store])
        #expect(status.status == 0 && status.stdout.contains("finished: 60 done, 0 failed"), "\(status.stdout)")
        instance.stopDaemon()
    }

    @Test func aServerCrashPausesTheDaemonAndNothingIsLostOrRunTwice() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let instance = try TestInstance(config: testConfig(handler: Self.recordingWorker))
        defer { try? server.start() }  // Never leave the other tests without their server.
        try instance.startDaemon(extraArguments: ["--store", store])
        for index in 1...80 { try instance.drop("g\(index).txt") }
        try instance.waitUntil("some are done", timeout: 30) { instance.count(in: "Done") >= 5 }
        try server.crash()
        // A paused daemon, or one whose COMMIT the crash cut off, waiting to learn its outcome.
        try instance.waitUntil("the daemon pauses", timeout: 30) {
            instance.log.contains("paused: the store's server cannot be reached")
                || instance.log.contains("for it to answer whether that COMMIT was applied")
        }
        if instance.log.contains("paused: the store's server cannot be reached") {
            let paused = try instance.run(["status", "--store", store])
            #expect(paused.stdout.contains("PAUSED:   the store's server cannot be reached"), "\(paused.stdout)")
        }
        try server.start()
        try instance.waitUntil("every file is done", timeout: 60) { instance.count(in: "Done") == 80 }
        #expect(instance.log.contains("the store can be written again; resuming"))
        #expect(instance.daemon?.isRunning == true, "the daemon never exits for a server that went away")
        #expect(instance.count(in: "Failed") == 0)
        let runs = instance.lines(of: "runs.log")
        #expect(runs.count == 80 && Set(runs).count == 80, "every file ran once: \(runs.count) runs")
        #expect(try Server.psql(store, "SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM job") == "80|80")
        #expect(instance.stopDaemon() == 0)
    }

    /// The server crashes while a COMMIT is on its way: the daemon says it waits to learn whether the COMMIT was
    /// applied (before, it sat silent), and once the server answers it learns it was not, sends it again and goes on.
    /// Nothing is lost or run twice. The server stays away longer than the 20 s a write used to wait for the outcome
    /// (past which the daemon paused, and stopped with exit 1 if the COMMIT turned out applied): the daemon goes on
    /// waiting, and the write completes once the server is back. (An outage that ends at once takes the same path up
    /// to the server's return, and this test checks all that a test of one would: it has no test of its own.)
    @Test func aCommitLostInALongOutageIsWaitedOutHoweverLong() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let instance = try TestInstance(config: testConfig(handler: Self.recordingWorker))
        defer { try? server.start() }  // Never leave the other tests without their server.
        try instance.startDaemon(extraArguments: ["--store", store])
        try instance.drop("first.txt")
        try instance.waitUntil("the first file is done", timeout: 30) { instance.count(in: "Done") == 1 }
        // At COMMIT, the registration of slow.txt takes a lock (which names its session) and waits, but only on the
        // server as it runs now: after the restart the same registration goes through.
        let key = Int64.random(in: 1...Int64.max)
        _ = try Server.psql(store, """
            CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.name = convert_to('slow.txt', 'UTF8') AND pg_postmaster_start_time() < '\(Self.serverClockNow(store))'::timestamptz THEN
                    PERFORM pg_advisory_lock(\(key)); PERFORM pg_sleep(60);
                END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON job DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION hold_commit();
            """)
        try instance.drop("slow.txt")
        try instance.waitUntil("the registration's COMMIT is under way", timeout: 20) {
            try !Server.psql(store, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = \(UInt32(truncatingIfNeeded: key))").isEmpty
        }
        try server.crash()
        try instance.waitUntil("the daemon says it waits for the COMMIT's outcome", timeout: 30) {
            instance.log.contains("for it to answer whether that COMMIT was applied")
        }
        let noticed = Date()
        try instance.waitUntil("past the 20 s a write used to wait", timeout: 40) { Date().timeIntervalSince(noticed) > 22 }
        #expect(!instance.log.contains("paused: the store's server cannot be reached"), "\(instance.log.suffix(2000))")
        #expect(!instance.log.contains("whether it was applied is settled once it does"), "\(instance.log.suffix(2000))")
        #expect(instance.daemon?.isRunning == true)
        try server.start()
        try instance.drop("after.txt")
        try instance.waitUntil("every file is done", timeout: 60) { instance.count(in: "Done") == 3 }
        #expect(instance.daemon?.isRunning == true, "the daemon never exits for a server that went away")
        #expect(instance.count(in: "Failed") == 0)
        #expect(instance.lines(of: "runs.log").sorted() == ["after.txt", "first.txt", "slow.txt"])
        #expect(try Server.psql(store, "SELECT count(*), count(DISTINCT name), count(*) FILTER (WHERE state = 'done') FROM job") == "3|3|3")
        #expect(instance.stopDaemon() == 0)
    }

    static func serverClockNow(_ store: String) throws -> String {
        try Server.psql(store, "SELECT now()::text")
    }

    /// Daemons share a store under names of their own; a one-shot run, whose recovery would take their running
    /// jobs as its own, needs the store alone.
    @Test func aSecondDaemonUnderTheSameNameAndAOneShotRunAreRefusedWith69() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let first = try TestInstance(config: testConfig(handler: Self.recordingWorker))
        try first.startDaemon(extraArguments: ["--store", store])
        let second = try TestInstance(config: testConfig(handler: Self.recordingWorker))
        let refused = try second.run(["watch", "--store", store], timeout: 30)
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("is in use by the daemon at") && refused.stderr.contains("give each daemon its own [node] name"), "\(refused.stderr)")
        let sweep = try second.run(["sweep", "--mode", "ingest", "--store", store], timeout: 30)
        #expect(sweep.status == 69, "a one-shot run is refused: \(sweep.stderr)")
        #expect(sweep.stderr.contains("a one-shot run needs it alone"), "\(sweep.stderr)")
        // The first goes on working, and once it stops the store is free for a one-shot run.
        try first.drop("a.txt")
        try first.waitUntil("the first daemon's file is done", timeout: 20) { first.count(in: "Done") == 1 }
        #expect(first.stopDaemon() == 0)
        try second.drop("b.txt")
        let alone = try second.run(["sweep", "--mode", "ingest", "--store", store], timeout: 30)
        #expect(alone.status == 0 && second.count(in: "Done") == 1, "\(alone.stderr)")
    }

    /// The server ends the session that holds the store's lock (an administrator's `pg_terminate_backend`): the
    /// daemon notices at once and takes the lock again, so a one-shot run started right after finds it held.
    @Test func aDaemonWhoseLockSessionIsEndedHoldsTheStoreAgainAtOnce() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let first = try TestInstance(config: testConfig(handler: Self.recordingWorker))
        try first.startDaemon(extraArguments: ["--store", store])
        let holding = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        let before = try Server.psql(store, holding)
        #expect(!before.isEmpty, "the daemon holds the store's lock")
        _ = try Server.psql(store, "SELECT pg_terminate_backend(\(before), 5000)")
        try first.waitUntil("the daemon holds the store again", timeout: 5) {
            let now = try Server.psql(store, holding)
            return !now.isEmpty && now != before
        }
        #expect(first.log.contains("the session holding the store ended; the store is held again"), "\(first.log.suffix(2000))")
        let second = try TestInstance(config: testConfig(handler: Self.recordingWorker))
        let refused = try second.run(["sweep", "--mode", "ingest", "--store", store], timeout: 30)
        #expect(refused.status == 69 && refused.stderr.contains("a one-shot run needs it alone"), "\(refused.stderr)")
        try first.drop("a.txt")
        try first.waitUntil("the first daemon still works", timeout: 20) { first.count(in: "Done") == 1 }
        #expect(first.stopDaemon() == 0)
    }

    @Test func aBadStoreURLIsRefusedWhereverItComesFrom() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.recordingWorker, extra: """

            [store]
            url = "postgres://someone@localhost:0/db"
            """))
        let fromFile = try instance.run(["config", "check"])
        #expect(fromFile.status == 78)
        #expect(fromFile.stderr.contains("orchestrator.toml:14: error: [store] url: the port \"0\" is not a number from 1 to 65535"), "\(fromFile.stderr)")
        let instance2 = try TestInstance(config: testConfig(handler: Self.recordingWorker))
        let flag = try instance2.run(["status", "--store", "mysql://root@localhost/db"])
        #expect(flag.status == 64 && flag.stderr.contains("error: --store: \"mysql://root@localhost/db\" is not a store URL"), "\(flag.stderr)")
        var environment = ProcessInfo.processInfo.environment
        environment["ORCHESTRATOR_STORE"] = "postgres://someone@[::1/db"
        let variable = try instance2.run(["watch"], environment: environment, timeout: 10)
        #expect(variable.status == 78 && variable.stderr.hasPrefix("error: ORCHESTRATOR_STORE: "), "\(variable.stderr)")
        // `config check` fails as the start would: it passed over a bad override and said "ok" (exit 0).
        let checked = try instance2.run(["config", "check"], environment: environment, timeout: 10)
        #expect(checked.status == 78 && checked.stderr.hasPrefix("error: ORCHESTRATOR_STORE: "), "\(checked.stderr)")
        let checkedFlag = try instance2.run(["config", "check", "--store", "mysql://root@localhost/db"])
        #expect(checkedFlag.status == 64 && checkedFlag.stderr.hasPrefix("error: --store: "), "\(checkedFlag.stderr)")
        // A value libpq refuses only as it connects: the daemon waited for a store it could never reach.
        let sslmode = try instance2.run(["watch", "--store", "postgres://someone@localhost:5432/db?sslmode=requir"], timeout: 10)
        #expect(sslmode.status == 64 && sslmode.stderr.contains("sslmode=requir is not a value libpq takes"), "\(sslmode.stderr)")
    }
}

extension PostgresStoreTests.Server {
    /// Runs SQL with psql and returns its unaligned output.
    static func psql(_ url: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = [url, "-v", "ON_ERROR_STOP=1", "-XAtqc", sql]
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("psql-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        process.standardOutput = try FileHandle(forWritingTo: output)
        try process.run()
        guard waitForExit(process, within: 30, "psql") else { throw TimedOut(description: "psql hung on \(sql)") }
        guard process.terminationStatus == 0 else { throw TimedOut(description: "psql failed on \(sql)") }
        return ((try? String(contentsOf: output, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
