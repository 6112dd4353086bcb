import Foundation
import Testing

/// Commands given the config of a daemon that is not running, while other daemons of its shared store run.
extension SharedStoreTests {
    /// A one-shot `sweep` or `task run` needs the store alone: it exits 69 at once, naming the daemons that own the
    /// Inbox. Before, it read the shared lock as another one-shot run's and waited for it forever.
    @Test func aOneShotRunBesideRunningDaemonsOfItsStoreExits69AtOnce() throws {
        let cluster = try Cluster(count: 3, extra: """

            [[task]]
            name = "tidy"
            every = "1h"
            command = ["/bin/true"]
            """)
        for daemon in cluster.daemons.prefix(2) { try daemon.startDaemon() }
        let idle = cluster.daemons[2]
        for arguments in [["sweep", "--mode", "ingest"], ["task", "run", "tidy"]] {
            let started = Date()
            let refused = try idle.run(arguments, timeout: 20)
            #expect(refused.status == 69, "\(arguments): \(refused.stderr)")
            #expect(refused.stderr.contains("the orchestrator daemons of a shared store (one of them pid "), "\(refused.stderr)")
            #expect(!refused.stderr.contains("waiting for `orchestrator"), "\(refused.stderr)")
            #expect(Date().timeIntervalSince(started) < 10)
        }
        // A daemon on SQLite is refused the Inbox, and told who owns it.
        let loner = try TestInstance(config: testConfig(handler: "command = [\"/bin/true\"]", extra: """

            [paths]
            inbox = "\(cluster.first.path("Inbox"))"
            done = "\(cluster.first.path("Done"))"
            failed = "\(cluster.first.path("Failed"))"
            """))
        let refused = try loner.run(["watch"], timeout: 20)
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("the orchestrator daemons of a shared store"), "\(refused.stderr)")
        for daemon in cluster.daemons.prefix(2) { #expect(daemon.stopDaemon() == 0) }
    }

    /// `handler pause|resume`, `task disable` and `trigger` given the config of a daemon that is not running reach
    /// the daemons of the store that are: they are announced on the store's wake-up channel. Before, only the
    /// config's own daemon heard them, so paused work went on running and the event waited for that daemon's start.
    @Test func aPauseADisableAndAnEventGivenAnIdleDaemonsConfigReachTheRunningDaemons() throws {
        let marks = try TestInstance(config: "")
        let cluster = try Cluster(count: 3, extra: """

            [[task]]
            name = "hook"
            on = "poke"
            command = ["/bin/sh", "-c", "echo hook >> \(marks.path("hook.log"))"]

            [[task]]
            name = "tick"
            every = "1h"
            command = ["/bin/true"]
            """)
        let running = Array(cluster.daemons.prefix(2))
        for daemon in running { try daemon.startDaemon() }
        let idle = cluster.daemons[2]

        let paused = try idle.run(["handler", "pause", "test"])
        #expect(paused.status == 0, "\(paused.stderr)")
        try cluster.waitUntil("both running daemons hold the handler's jobs back", timeout: 10) {
            running.allSatisfy { $0.log.contains("handler paused: its jobs wait") }
        }
        let names = (1...5).map { "p\($0).txt" }
        for name in names { try cluster.first.drop(name) }
        // On a shared store a paused handler's jobs stay queued for whichever daemon may run them once it is resumed;
        // meanwhile no daemon claims them.
        try cluster.waitUntil("the files are registered and held back", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE state = 'queued'") == "5"
        }
        #expect(cluster.runs().isEmpty, "a paused handler's file ran: \(cluster.runs())")
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM transition WHERE to_state = 'running'") == "0")
        #expect(try idle.run(["handler", "resume", "test"]).status == 0)
        try cluster.waitUntil("every file is done", timeout: 30) { cluster.first.count(in: "Done") == 5 }

        #expect(try idle.run(["task", "disable", "tick"]).status == 0)
        try cluster.waitUntil("both running daemons disable the task", timeout: 10) {
            running.allSatisfy { $0.log.contains("disabled") && $0.log.contains("task=tick") }
        }

        let triggered = try idle.run(["trigger", "poke"])
        #expect(triggered.status == 0 && triggered.stdout.contains("a running daemon of the store queues: hook"), "\(triggered.stdout)")
        try cluster.waitUntil("the event's task ran", timeout: 20) { marks.lines(of: "hook.log") == ["hook"] }
        for daemon in running { #expect(daemon.stopDaemon() == 0) }
    }

    /// A daemon whose store URL names another database (a typo) on the store's Inbox is refused with 69, and the
    /// message names both stores, so the typo shows.
    @Test func aDaemonOfAnotherStoreOnTheInboxIsToldBothStores() throws {
        let cluster = try Cluster(count: 2)
        try cluster.daemons[0].startDaemon()
        let stray = cluster.daemons[1]
        guard let slash = cluster.store.lastIndex(of: "/") else { throw TimedOut(description: "no database in \(cluster.store)") }
        let typo = cluster.store[..<slash] + "/orch_nosuch_\(getpid())"
        var config = try String(contentsOf: stray.configURL, encoding: .utf8)
        config = config.replacingOccurrences(of: "url = \"\(cluster.store)\"", with: "url = \"\(typo)\"")
        try config.write(to: stray.configURL, atomically: true, encoding: .utf8)
        let refused = try stray.run(["watch"], timeout: 20)
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("own Inbox") && refused.stderr.contains("this config's store is") && refused.stderr.contains("orch_nosuch_"), "\(refused.stderr)")
        #expect(cluster.daemons[0].stopDaemon() == 0)
    }

    /// A one-shot watchdog given the config of a daemon that is not running leaves the store's runs to their daemons:
    /// it re-queued every run marked running whose worker was not alive on this host, which on a store shared by
    /// several hosts is every other host's run (here: a run whose pid is no process of this host). It says whose
    /// daemon is not running, not that none is.
    @Test func aOneShotWatchdogLeavesTheStoresRunsToItsDaemons() throws {
        // The 30 s worker still runs at the stop: a short grace ends it at once rather than after 5 s.
        let cluster = try Cluster(count: 2, workerSeconds: "30", maxConcurrent: 1, grace: "500ms")
        try cluster.first.startDaemon()
        let idle = cluster.daemons[1]
        try cluster.first.drop("long.txt")
        try cluster.waitUntil("it runs", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FROM attempt WHERE outcome = 'running' AND pid IS NOT NULL") == "1"
        }
        // As if its worker ran on another host: no process of this one.
        _ = try Server.psql(cluster.store, "UPDATE attempt SET pid = 999999, start_time = 1 WHERE outcome = 'running'")
        let sweep = try idle.run(["sweep", "--mode", "watchdog"])
        #expect(sweep.status == 0, "\(sweep.stderr)")
        #expect(sweep.stdout.contains("node n2) is not running") && !sweep.stdout.contains("re-queued"), "\(sweep.stdout)")
        #expect(try Server.psql(cluster.store, "SELECT state FROM job") == "running")
        #expect(try Server.psql(cluster.store, "SELECT string_agg(outcome, ',') FROM attempt") == "running")
        #expect(cluster.first.stopDaemon() == 0)
    }

    /// `cancel` and `priority` given any daemon's config reach the daemon that holds the job: the one that runs it, or
    /// the one that registered a queued file and has it in its queue (the store names no owner until a claim). Every
    /// daemon hears of the request on the store's wake-up channel and the holder answers. Before, the config's own
    /// daemon answered that another daemon held the job, and a daemon that was not running could not be given.
    @Test func aCancelOrPriorityThroughAnyDaemonsConfigReachesTheJobsHolder() throws {
        let cluster = try Cluster(count: 3, workerSeconds: "30", maxConcurrent: 1)
        let running = Array(cluster.daemons.prefix(2))
        for daemon in running { try daemon.startDaemon() }
        let idle = cluster.daemons[2]
        for index in 1...4 { try cluster.first.drop("q\(index).txt") }
        try cluster.waitUntil("two run and two wait", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FILTER (WHERE state = 'running') || '|' || count(*) FILTER (WHERE state = 'queued') FROM job") == "2|2"
        }
        func rows(_ query: String) throws -> [[String]] {
            try Server.psql(cluster.store, query).split(separator: "\n").map { $0.split(separator: "|").map(String.init) }
        }
        let queued = try rows(
            """
            SELECT j.id || '|' || t.detail FROM job j JOIN transition t ON t.job_id = j.id
            WHERE j.state = 'queued' AND t.from_state IS NULL ORDER BY j.id
            """)
        let claimedByName = try rows("SELECT id || '|' || owner FROM job WHERE state = 'running' ORDER BY id")
        #expect(queued.count == 2 && queued.allSatisfy { $0.count == 2 && $0[1].hasPrefix("claimed by lister n") }, "\(queued)")
        #expect(claimedByName.count == 2, "\(claimedByName)")
        guard queued.count == 2, claimedByName.count == 2, let registrar = queued[0][1].split(separator: " ").last else { return }
        func daemon(named name: String) -> TestInstance { name == "n1" ? running[0] : running[1] }
        func other(than name: String) -> TestInstance { name == "n1" ? running[1] : running[0] }

        // A queued file, through the config of the daemon that did not register it.
        let cancelled = try other(than: String(registrar)).run(["cancel", queued[0][0]])
        #expect(cancelled.status == 0 && cancelled.stdout.contains("cancelled before it ran"), "\(cancelled.stdout) \(cancelled.stderr)")
        // Another queued file's priority, through the config of a daemon that is not running.
        let raised = try idle.run(["priority", queued[1][0], "9"])
        #expect(raised.status == 0 && raised.stdout.contains("priority set to 9"), "\(raised.stdout) \(raised.stderr)")
        #expect(try Server.psql(cluster.store, "SELECT priority FROM job WHERE id = \(queued[1][0])") == "9")
        // A running file, through the idle config again: its runner ends its worker.
        let (runningID, runner) = (claimedByName[0][0], claimedByName[0][1])
        let ended = try idle.run(["cancel", runningID, "--reason", "not needed"])
        #expect(ended.status == 0 && ended.stdout.contains("its worker group got SIGTERM"), "\(ended.stdout) \(ended.stderr)")
        try cluster.waitUntil("both cancelled files are in Failed", timeout: 20) { cluster.first.count(in: "Failed") == 2 }
        #expect(try Server.psql(cluster.store, "SELECT state || ' ' || owner FROM job WHERE id = \(runningID)") == "failed \(runner)")
        #expect(try Server.psql(cluster.store, "SELECT state FROM job WHERE id = \(queued[0][0])") == "failed")
        #expect(daemon(named: runner).log.contains("cancelled while running"), "\(daemon(named: runner).log.suffix(1500))")
        // What nobody holds any more is answered from the store by whichever daemon reads it first.
        let again = try idle.run(["cancel", queued[0][0]])
        #expect(again.status != 0 && again.stderr.contains("finished"), "\(again.stdout) \(again.stderr)")
        for daemon in running { daemon.killDaemon() }
    }
}
