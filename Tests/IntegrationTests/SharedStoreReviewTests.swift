#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// What a review of several daemons on one store found broken, each as the guarantee it must keep. Against the
/// server scripts/postgres starts.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SharedStoreReviewTests {
    typealias Server = PostgresStoreTests.Server
    typealias Cluster = SharedStoreTests.Cluster

    /// A daemon killed between its claiming rename and the claim's commit leaves a file in the shared processing area
    /// with no job (here placed directly). A lister adopts it once it has seen it so at two watchdog sweeps.
    @Test func aFileClaimedButNeverRecordedStillEndsInDone() throws {
        let cluster = try Cluster(count: 2, extra: "\n[sweeps]\nwatchdog = \"1s\"\n")
        try cluster.start()
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
        try cluster.first.drop("orphan.txt", into: "Inbox/.processing")
        try cluster.start()
        try cluster.first.waitUntil("the orphan is processed", timeout: 20) { cluster.first.count(in: "Done") == 1 }
        #expect(cluster.first.names(in: "Done") == [Array("orphan.txt".utf8)])
        #expect(cluster.runs() == ["orphan.txt": 1])
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE state = 'done'") == "1")
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }

    /// `cancel` given to one daemon's config for a job another daemon runs reaches that daemon, which ends the
    /// worker; the daemon asked first leaves the request to it and never answers for it.
    @Test func cancelThroughOneDaemonReachesTheDaemonThatRunsTheJob() throws {
        let cluster = try Cluster(count: 2, workerSeconds: "20")
        let (asked, runner) = (cluster.daemons[0], cluster.daemons[1])
        try runner.startDaemon()
        try cluster.first.drop("long.txt")
        try runner.waitUntil("n2 runs it", timeout: 20) { try Server.psql(cluster.store, "SELECT owner FROM job WHERE state = 'running'") == "n2" }
        try asked.startDaemon()
        let id = try Server.psql(cluster.store, "SELECT id FROM job")
        let answer = try asked.run(["cancel", id])
        #expect(answer.status == 0 && answer.stdout.contains("its worker group got SIGTERM"), "\(answer.stdout) \(answer.stderr)")
        try cluster.first.waitUntil("the job is cancelled", timeout: 15) { cluster.first.count(in: "Failed") == 1 }
        #expect(runner.log.contains("cancelled while running"), "\(runner.log.suffix(1500))")
        #expect(!asked.log.contains("cancelled"), "\(asked.log.suffix(1500))")
        let again = try runner.run(["cancel", id])
        #expect(again.status == 65 && again.stderr.contains("already finished"), "\(again.stderr)")
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }

    /// `handler pause` (given to every daemon): nothing of the handler starts on any daemon, and no daemon claims its
    /// jobs meanwhile. Before, every look of a daemon with a free slot claimed one and gave it back for 5 s: a
    /// claim, a give-back and a transition row per paused job every 5 s for as long as the pause lasted, and after the
    /// resume the files waited out what was left of their 5 s.
    @Test func aPausedHandlerRunsNothingOnAnyDaemon() throws {
        let cluster = try Cluster(count: 2)
        try cluster.start()
        for daemon in cluster.daemons { #expect(try daemon.run(["handler", "pause", "test"]).status == 0) }
        for index in 1...4 { try cluster.first.drop("p\(index).txt") }
        try cluster.waitUntil("the four are registered", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE state = 'queued'") == "4"
        }
        // Longer than the give-back delay (5 s): each daemon was woken for them and found them due again.
        try expectQuiet(for: 6, "a paused handler's job claimed or run") {
            if !cluster.runs().isEmpty { return true }
            return try Server.psql(cluster.store, "SELECT count(*) FROM transition WHERE to_state = 'running'") != "0"
        }
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM transition WHERE detail LIKE 'given back%'") == "0")
        let resumed = Date()
        for daemon in cluster.daemons { #expect(try daemon.run(["handler", "resume", "test"]).status == 0) }
        try cluster.first.waitUntil("they run once resumed", timeout: 30) { cluster.first.count(in: "Done") == 4 }
        #expect(Date().timeIntervalSince(resumed) < 4, "done \(Date().timeIntervalSince(resumed)) s after the resume")
        #expect(cluster.runs().values.allSatisfy { $0 == 1 } && cluster.runs().count == 4)
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }

    /// Daemons of one store with different handlers say so in their logs, not only in `status`: a file one daemon's
    /// handlers would take can fail as "no handler" where another registers it. Said again when they agree.
    @Test func daemonsWhoseConfigsDifferSayItInTheirLogs() throws {
        let cluster = try Cluster(count: 2)
        let second = cluster.daemons[1]
        let original = try String(contentsOf: second.configURL, encoding: .utf8)
        try original.replacingOccurrences(of: "max_attempts = 3", with: "max_attempts = 1")
            .write(to: second.configURL, atomically: true, encoding: .utf8)
        try cluster.start()
        try second.waitUntil("the second daemon says the configs differ", timeout: 10) {
            second.log.contains("the running daemons' configs differ (n1 ") && second.log.contains("give every daemon of the store the same handlers")
        }
        let status = try second.run(["status"])
        #expect(status.stdout.contains("warning:  the running daemons' configs differ (n1 "), "\(status.stdout)")
        try original.write(to: second.configURL, atomically: true, encoding: .utf8)
        kill(try #require(second.daemon?.processIdentifier), SIGHUP)
        try second.waitUntil("the second daemon says they agree again", timeout: 10) {
            second.log.contains("the running daemons' configs agree again")
        }
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }

    /// Only a lister runs: its files are registered and wait, and `status` says why (it said "3 queued", health ok).
    @Test func statusSaysWhenNoRunningDaemonMayRunTheQueue() throws {
        let cluster = try Cluster(count: 1)
        let lister = cluster.first
        var config = try String(contentsOf: lister.configURL, encoding: .utf8)
        config = config.replacingOccurrences(of: "[node]\n", with: "[node]\nroles = [\"lister\"]\n")
        try config.write(to: lister.configURL, atomically: true, encoding: .utf8)
        try cluster.start()
        for index in 1...3 { try lister.drop("w\(index).txt") }
        try cluster.waitUntil("the three are registered", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE state = 'queued'") == "3"
        }
        let text = try lister.run(["status"])
        #expect(text.stdout.contains("waiting:  no running daemon of the store has the worker role: the 3 queued jobs wait for one"), "\(text.stdout)")
        let object = try #require(try lister.json(["status"]) as? [String: Any])
        #expect((object["queue_waits_because"] as? String)?.hasPrefix("no running daemon of the store has the worker role") == true, "\(object)")
        #expect(lister.stopDaemon() == 0)
    }

    /// On a shared store a running job's pid is one on its daemon's host: `status` names the daemon beside it.
    @Test func statusNamesTheDaemonOfEachRunningJob() throws {
        let cluster = try Cluster(count: 2, workerSeconds: "30", grace: "200ms")
        try cluster.start()
        for index in 1...2 { try cluster.first.drop("r\(index).txt") }
        var running: [[String: Any]] = []
        try cluster.waitUntil("both run", timeout: 20) {
            running = (try cluster.first.json(["status"]) as? [String: Any])?["running"] as? [[String: Any]] ?? []
            return running.count == 2
        }
        let owners = try Server.psql(cluster.store, "SELECT string_agg(id || '=' || owner, ' ' ORDER BY id) FROM job WHERE state = 'running'")
        let shown = running.sorted { ($0["job"] as? Int ?? 0) < ($1["job"] as? Int ?? 0) }
            .map { "\($0["job"] as? Int ?? 0)=\($0["node"] as? String ?? "?")" }
        #expect(shown.joined(separator: " ") == owners, "\(running) against \(owners)")
        let text = try cluster.first.run(["status"])
        #expect(text.stdout.split(separator: "\n").filter { $0.contains("running job") && ($0.contains(" on n1 ") || $0.contains(" on n2 ")) }.count == 2, "\(text.stdout)")
        #expect(TestInstance.stopTogether(cluster.daemons).allSatisfy { $0 == 0 })
    }

    /// The server restarts and stays away longer than the lease while two daemons run healthy workers: their leases
    /// ran out by the server's clock while nobody could renew, but nothing was interrupted, so nothing runs twice.
    @Test func aServerOutageLongerThanTheLeaseRerunsNothing() throws {
        let server = try Server()
        // The workers outlast the outage and still run for about 10 s after the server is back, when a daemon that
        // took the other's runs for lost would take them back and run them again.
        let cluster = try Cluster(count: 2, lease: "3s", workerSeconds: "17")
        defer { try? server.start() }
        try cluster.start()
        for index in 1...4 { try cluster.first.drop("o\(index).txt") }
        try cluster.first.waitUntil("four run, two on each", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(DISTINCT owner) || '|' || count(*) FROM job WHERE state = 'running'") == "2|4"
        }
        try server.pgctl(["-m", "fast", "-w", "stop"])
        // The outage itself, longer than the 3 s lease: a window the test sizes, not a wait for a condition. No lease
        // was renewed after the stop, so 5 s puts every one at least 2 s past its end by the time the server is back
        // (the outage only lengthens under load); a longer one proves nothing more.
        usleep(5_000_000)
        try server.start()
        try cluster.first.waitUntil("every file is done", timeout: 90) { cluster.first.count(in: "Done") == 4 }
        let runs = cluster.runs()
        #expect(runs.count == 4 && runs.values.allSatisfy { $0 == 1 }, "ran again: \(runs.filter { $0.value > 1 }.keys.sorted())")
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }
}
