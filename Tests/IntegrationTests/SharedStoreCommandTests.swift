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
            #expect(!refused.stderr.contains("waiting for another one-shot run"), "\(refused.stderr)")
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
        // On a shared store a paused handler's jobs stay queued for whichever daemon may run them; each daemon that
        // claims one gives it back.
        try cluster.waitUntil("the files are registered and held back", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE state = 'queued'") == "5"
                && running.allSatisfy { $0.log.contains("giving it back") && $0.log.contains("reason=\"handler test is paused\"") }
        }
        #expect(cluster.runs().isEmpty, "a paused handler's file ran: \(cluster.runs())")
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

    /// A queued file is held in the queue of the daemon that registered it (the store names no owner until a claim):
    /// a cancel through another daemon's config is refused with that daemon's name, and through its config it goes.
    @Test func aCancelOfAQueuedFileNamesTheDaemonThatRegisteredIt() throws {
        let cluster = try Cluster(count: 2, workerSeconds: "30", maxConcurrent: 1)
        try cluster.start()
        for index in 1...4 { try cluster.first.drop("q\(index).txt") }
        try cluster.waitUntil("two run and two wait", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FILTER (WHERE state = 'running') || '|' || count(*) FILTER (WHERE state = 'queued') FROM job") == "2|2"
        }
        let row = try Server.psql(
            cluster.store,
            """
            SELECT j.id || '|' || t.detail FROM job j JOIN transition t ON t.job_id = j.id
            WHERE j.state = 'queued' AND t.from_state IS NULL ORDER BY j.id LIMIT 1
            """
        ).split(separator: "|").map(String.init)
        #expect(row.count == 2 && row[1].hasPrefix("claimed by lister n"), "\(row)")
        guard row.count == 2, let registrar = row[1].split(separator: " ").last.map(String.init) else { return }
        let (holder, other) = registrar == "n1" ? (cluster.daemons[0], cluster.daemons[1]) : (cluster.daemons[1], cluster.daemons[0])
        let refused = try other.run(["cancel", row[0]])
        #expect(refused.status == 65 && refused.stderr.contains("daemon \(registrar) holds it"), "\(refused.stderr)")
        let cancelled = try holder.run(["cancel", row[0]])
        #expect(cancelled.status == 0 && cancelled.stdout.contains("cancelled before it ran"), "\(cancelled.stdout) \(cancelled.stderr)")
        for daemon in cluster.daemons { daemon.killDaemon() }
    }
}
