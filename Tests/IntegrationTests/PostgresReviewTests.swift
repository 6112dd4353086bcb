#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// What an adversarial review of the PostgreSQL store found: the daemon's words while its server is away, and a
/// store it can reach but not use. Against the server scripts/test starts (scripts/postgres), as PostgresStoreTests.
@Suite(.serialized, .timeLimit(.minutes(3))) struct PostgresReviewTests {
    typealias Server = PostgresStoreTests.Server

    @Test func whileTheServerIsAwayTheWatchdogAndTheTasksNameTheServerNotADisk() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let instance = try TestInstance(config: testConfig(handler: PostgresStoreTests.recordingWorker, extra: """

            [sweeps]
            watchdog = "1s"

            [[task]]
            name = "tick"
            every = "1s"
            command = ["/bin/true"]
            """))
        defer { try? server.start() }  // Never leave the other tests without their server.
        // At debug level the store hold's retries show, so the test can wait for them.
        try instance.startDaemon(extraArguments: ["--store", store], environment: ["ORCH_LOG_LEVEL": "debug"])
        try instance.waitUntil("the task has run", timeout: 20) { instance.log.contains("task=tick") }
        // The task's runs commit every second, and a crash can land while one's COMMIT is on its way. The daemon then
        // waits for that COMMIT's outcome (PostgresStoreTests' subject) and its watchdog waits with it; such a crash
        // is undone, and tried again once the daemon goes on.
        var since = 0
        for attempt in 1...3 {
            since = instance.log.utf8.count
            try server.crash()
            var lostCommit = false
            try instance.waitUntil("the watchdog reports the pause", timeout: 30) {
                let log = instance.log.utf8.dropFirst(since)
                lostCommit = String(decoding: log, as: UTF8.self).contains("for it to answer whether that COMMIT was applied")
                return lostCommit || String(decoding: log, as: UTF8.self).contains("unhealthy problems=\"paused: the store's server cannot be reached\"")
            }
            guard lostCommit, attempt < 3 else { break }
            try server.start()
            let settled = instance.log.utf8.count
            try instance.waitUntil("the daemon goes on after the lost COMMIT", timeout: 30) {
                String(decoding: instance.log.utf8.dropFirst(settled), as: UTF8.self).contains("task=tick")
            }
        }
        var sinceCrash: String { String(decoding: instance.log.utf8.dropFirst(since), as: UTF8.self) }
        // A run the crash caught before its end was written still counts as running, and the slots skip it instead.
        try instance.waitUntil("a slot comes due during the pause", timeout: 30) {
            sinceCrash.contains("due while paused (the store's server cannot be reached); it runs when that changes")
                || sinceCrash.contains("not run: the previous run has not finished overlap=skip task=tick")
        }
        #expect(!instance.log.contains("no space"), "\(instance.log)")
        #expect(!instance.log.contains("disk is full"), "\(instance.log)")
        // `status --json` cannot read the store meanwhile: it says so, and does not call the daemon healthy.
        let json = try instance.run(["status", "--json", "--store", store])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(json.status == 0 && object?["healthy"] as? Bool == false, "\(json.stdout)")
        #expect((object?["cannot_read"] as? [String])?.isEmpty == false, "\(json.stdout)")
        let retry = "the session holding the store ended and its server is away; taking it again when it is back"
        try instance.waitUntil("the store's hold has been retried three times", timeout: 10) {
            sinceCrash.components(separatedBy: retry).count - 1 >= 3
        }
        try server.start()
        try instance.waitUntil("the daemon resumes", timeout: 60) {
            sinceCrash.contains("the store can be written again; resuming")
        }
        // Those retries are said once (a warning), not once a second; the others are debug lines.
        let warned = sinceCrash.components(separatedBy: "WARNING " + retry).count - 1
        #expect(warned == 1, "warned \(warned) times")
        #expect(instance.stopDaemon() == 0)
    }

    /// A server that answers "no" (here: no such database, no such role) is not waited for as if it were away: the
    /// daemon says why and exits 1 at once, and so does a one-shot command.
    @Test func aDatabaseOrRoleTheServerRefusesIsAClearErrorNotAnEndlessWait() throws {
        let server = try Server()
        guard let slash = server.url.lastIndex(of: "/"), let at = server.url.firstIndex(of: "@") else {
            throw TimedOut(description: "unexpected test URL \(server.url)")
        }
        let missingDatabase = String(server.url[..<slash]) + "/orch_review_missing_\(getpid())"
        let missingRole = "postgres://orch_review_nobody_\(getpid())" + String(server.url[at...])
        let instance = try TestInstance(config: testConfig(handler: PostgresStoreTests.recordingWorker))
        for (url, words): (String, String) in [(missingDatabase, "database \"orch_review_missing_"), (missingRole, "role \"orch_review_nobody_")] {
            let daemon = try instance.run(["watch", "--store", url], timeout: 20)
            #expect(daemon.status == 1, "\(daemon.stderr)")
            #expect(daemon.stderr.contains("error: cannot open the store at") && daemon.stderr.contains(words), "\(daemon.stderr)")
            #expect(!daemon.stderr.contains("waiting for it"), "\(daemon.stderr)")
            let sweep = try instance.run(["sweep", "--mode", "ingest", "--store", url], timeout: 20)
            #expect(sweep.status == 1 && sweep.stderr.contains(words), "\(sweep.stderr)")
        }
    }

    /// A daemon started with `--store`: a command run without it (from another shell, or a worker's hook) would read
    /// and write a SQLite ledger in the state dir that the daemon never reads; `trigger` said "recorded" and the
    /// event was lost. It is refused instead, `status` says why, and with the daemon's store everything works.
    @Test func aCommandGivenAnotherStoreThanTheRunningDaemonsIsRefused() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let instance = try TestInstance(config: testConfig(handler: PostgresStoreTests.recordingWorker, extra: """

            [[task]]
            name = "hook"
            on = "review.event"
            command = ["/bin/sh", "-c", "echo hook >> ../hooks.log"]
            """))
        try instance.startDaemon(extraArguments: ["--store", store])
        let lost = try instance.run(["trigger", "review.event"])
        #expect(lost.status == 1, "\(lost.stdout)")
        #expect(lost.stderr.contains("uses the store postgres://"), "\(lost.stderr)")
        #expect(lost.stderr.contains("this command SQLite in the state dir"), "\(lost.stderr)")
        #expect(!FileManager.default.fileExists(atPath: instance.root.path + "/.orchestrator/orchestrator.sqlite"))
        let history = try instance.run(["history"])
        #expect(history.status == 1 && history.stderr.contains("uses the store postgres://"), "\(history.stderr)")
        let status = try instance.run(["status"])
        #expect(status.status == 0 && status.stdout.contains("uses the store postgres://"), "\(status.stdout)")

        let recorded = try instance.run(["trigger", "review.event", "--store", store])
        #expect(recorded.status == 0, "\(recorded.stderr)")
        try instance.waitUntil("the hook ran", timeout: 20) { instance.lines(of: "hooks.log").count == 1 }
        #expect(instance.stopDaemon() == 0)
        // Without a daemon, a command uses the store it is given.
        #expect(try instance.run(["history"]).status == 0)
    }

    /// A reload that drops `[store]` is refused like a change of it, and the file it names has no line 0.
    @Test func aReloadWithoutTheStoreSectionIsRefusedAndNamesNoLineZero() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let base = testConfig(handler: PostgresStoreTests.recordingWorker)
        let instance = try TestInstance(config: base + "\n[store]\nurl = \"\(store)\"\n")
        try instance.startDaemon()
        try base.write(to: instance.configURL, atomically: true, encoding: .utf8)
        let daemon = try #require(instance.daemon)
        kill(daemon.processIdentifier, SIGHUP)
        try instance.waitUntil("the reload is refused", timeout: 20) { instance.log.contains("restart to apply") }
        #expect(instance.log.contains("orchestrator.toml: error: [store] changed; restart to apply"), "\(instance.log)")
        #expect(!instance.log.contains(":0: error"), "\(instance.log)")
        // Still on the server's store.
        try instance.drop("kept.txt")
        try instance.waitUntil("the file is done", timeout: 20) { instance.count(in: "Done") == 1 }
        #expect(try Server.psql(store, "SELECT count(*) FROM job WHERE state = 'done'") == "1")
        #expect(instance.stopDaemon() == 0)
    }

    /// A role that may only read a store made by another (a monitoring account) can run the reports beside the
    /// daemon: opening an up to date store creates nothing, and the same server and database is the daemon's store
    /// whoever logs in.
    @Test func aRoleThatMayOnlyReadCanRunTheReports() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let instance = try TestInstance(config: testConfig(handler: PostgresStoreTests.recordingWorker))
        try instance.startDaemon(extraArguments: ["--store", store])
        try instance.drop("seen.txt")
        try instance.waitUntil("the file is done", timeout: 20) { instance.count(in: "Done") == 1 }
        let role = "orch_review_reader_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        _ = try Server.psql(store, "CREATE ROLE \(role) LOGIN")
        _ = try Server.psql(store, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        _ = try Server.psql(store, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(role)")
        guard let scheme = store.range(of: "://"), let at = store.firstIndex(of: "@") else {
            throw TimedOut(description: "unexpected test URL \(store)")
        }
        let asReader = String(store[..<scheme.upperBound]) + role + String(store[at...])
        let history = try instance.run(["history", "--store", asReader])
        #expect(history.status == 0 && history.stdout.contains("seen.txt"), "\(history.stderr)")
        let status = try instance.run(["status", "--store", asReader])
        #expect(status.stdout.contains("finished: 1 done, 0 failed") && !status.stdout.contains("warning"), "\(status.stdout)")
        #expect(instance.stopDaemon() == 0)
    }

    /// With the store's server away and no daemon, `status` says the queue is unknown rather than showing zeros
    /// that look like an empty queue.
    @Test func statusWithTheServerAwaySaysTheQueueIsUnknownNotEmpty() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let instance = try TestInstance(config: testConfig(handler: PostgresStoreTests.recordingWorker))
        defer { try? server.start() }  // Never leave the other tests without their server.
        try instance.startDaemon(extraArguments: ["--store", store])
        try instance.drop("one.txt")
        try instance.waitUntil("the file is done", timeout: 20) { instance.count(in: "Done") == 1 }
        #expect(instance.stopDaemon() == 0)
        try server.crash()
        let status = try instance.run(["status", "--store", store])
        #expect(status.status == 0, "status answers whatever the store's state")
        #expect(status.stdout.contains("warning:  cannot open the store at"), "\(status.stdout)")
        #expect(status.stdout.contains("queue:    unknown (the store cannot be read)"), "\(status.stdout)")
        #expect(!status.stdout.contains("finished: 0 done"), "\(status.stdout)")
        try server.start()
        let back = try instance.run(["status", "--store", store])
        #expect(back.stdout.contains("finished: 1 done, 0 failed"), "\(back.stdout)")
    }

    /// The store's database stops taking writes (a primary demoted in a failover, a URL that reaches a standby,
    /// `default_transaction_read_only` set): the daemon pauses as for a server away, and goes on once writes are
    /// taken again, on a new session (a session keeps the read-only default it started with). A start on such a
    /// database waits for it. Before, the daemon stopped with exit 1 at its next write, and a start exited 1.
    @Test func aDatabaseThatTakesNoWritesPausesTheDaemonUntilItDoes() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let database = try Server.psql(store, "SELECT current_database()")
        func takesWrites(_ yes: Bool) throws {
            _ = try Server.psql(
                store, "BEGIN READ WRITE; ALTER DATABASE \(database) SET default_transaction_read_only = \(yes ? "off" : "on"); COMMIT")
        }
        defer { try? takesWrites(true) }
        let instance = try TestInstance(config: testConfig(handler: PostgresStoreTests.recordingWorker))
        // At debug level a retry that failed again says so.
        let debug = ["ORCH_LOG_LEVEL": "debug"]
        try instance.startDaemon(extraArguments: ["--store", store], environment: debug)
        try instance.drop("before.txt")
        try instance.waitUntil("the first file is done", timeout: 20) { instance.count(in: "Done") == 1 }
        try takesWrites(false)
        // As a failover ends them (and waiting for their end); new sessions start read-only.
        _ = try Server.psql(store, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        try instance.drop("during.txt")
        // Paused, and retries against the read-only database failed again without stopping the daemon (the first may
        // have met the ended session); or, if the sessions ended while a COMMIT was on its way, waiting to learn
        // whether it was applied, which only a server that takes writes can tell for sure (a standby may lag behind).
        try instance.waitUntil("the daemon pauses and retries", timeout: 20) {
            instance.log.components(separatedBy: "still paused: the store's server cannot be reached").count > 2
                || instance.log.contains("for it to answer whether that COMMIT was applied")
        }
        #expect(instance.daemon?.isRunning == true, "\(instance.log.suffix(1500))")
        try takesWrites(true)
        try instance.waitUntil("the file dropped meanwhile is done", timeout: 40) { instance.count(in: "Done") == 2 }
        if instance.log.contains("paused: the store's server cannot be reached") {
            #expect(instance.log.contains("the store can be written again; resuming"))
        }
        #expect(instance.stopDaemon() == 0)

        try takesWrites(false)
        let before = instance.log.utf8.count
        let waiting = try instance.launchDaemon(extraArguments: ["--store", store], environment: debug)
        try instance.waitUntil("the start waits for the database", timeout: 20) {
            String(decoding: instance.log.utf8.dropFirst(before), as: UTF8.self).contains("waiting for it, not exiting")
        }
        #expect(waiting.isRunning)
        try instance.drop("after.txt")
        try takesWrites(true)
        try instance.waitUntil("the start goes on once writes are taken", timeout: 40) { instance.count(in: "Done") == 3 }
        #expect(instance.lines(of: "runs.log").sorted() == ["after.txt", "before.txt", "during.txt"])
        #expect(instance.stopDaemon() == 0)
    }

    /// Session timeouts a DBA may set for a whole database (`idle_session_timeout`, `statement_timeout`) change
    /// nothing for the daemon: its sessions turn them off. Before, the session holding the store was ended at every
    /// idle half second (taken again at once, with a line each time), and a 1 ms statement_timeout failed the first
    /// migration.
    @Test func aDatabasesSessionTimeoutsDoNotEndTheDaemonsSessions() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let database = try Server.psql(store, "SELECT current_database()")
        _ = try Server.psql(store, "ALTER DATABASE \(database) SET idle_session_timeout = '500ms'")
        _ = try Server.psql(store, "ALTER DATABASE \(database) SET statement_timeout = '1ms'")
        let instance = try TestInstance(config: testConfig(handler: PostgresStoreTests.recordingWorker))
        try instance.startDaemon(extraArguments: ["--store", store])
        for index in 1...20 { try instance.drop("t\(index).txt") }
        try instance.waitUntil("every file is done", timeout: 30) { instance.count(in: "Done") == 20 }
        expectQuiet(for: 2, "the session holding the store ends") { instance.log.contains("the session holding the store ended") }
        #expect(instance.daemon?.isRunning == true, "\(instance.log.suffix(1500))")
        #expect(instance.stopDaemon() == 0)
        #expect(Set(instance.lines(of: "runs.log")).count == 20)
    }
}
