#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// `cancel` and `priority` on a shared store for jobs no running daemon may have claimed: queued while their
/// handler is paused, or left queued by a daemon that died.
extension SharedStoreTests {
    /// A paused handler's jobs wait queued in the store, claimed by no daemon: the daemon that registered one (or
    /// whichever daemon answers) ends it in the store, and its file goes to Failed/.
    /// Before, every such cancel and priority exited 65, with the answering daemon naming itself as the holder.
    @Test func aCancelOrPriorityOfAJobHeldBackByAPausedHandlerGoesThrough() throws {
        let cluster = try Cluster(count: 3, workerSeconds: "0.1", maxConcurrent: 1)
        let running = Array(cluster.daemons.prefix(2))
        for daemon in running { try daemon.startDaemon() }
        let idle = cluster.daemons[2]
        let paused = try idle.run(["handler", "pause", "test"])
        #expect(paused.status == 0, "\(paused.stderr)")
        for name in ["p1.txt", "p2.txt", "p3.txt", "p4.txt"] { try cluster.first.drop(name) }
        try cluster.waitUntil("four jobs wait behind the pause", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE state = 'queued'") == "4"
        }
        let ids = try Server.psql(cluster.store, "SELECT string_agg(id::text, ' ' ORDER BY id) FROM job").split(separator: " ").map(String.init)
        #expect(ids.count == 4)
        guard ids.count == 4 else { return }
        // They wait for the pause, and say so as on a single store (they read as queued before).
        let status = try #require(try idle.json(["status"]) as? [String: Any])
        let counts = try #require(status["jobs"] as? [String: Any])
        #expect(counts["paused"] as? Int == 4 && counts["queued"] as? Int == 0, "\(counts)")
        let shown = try idle.run(["show", ids[0]])
        #expect(shown.stdout.contains("state:     paused"), "\(shown.stdout)")
        for (id, daemon) in zip(ids.prefix(3), [running[0], running[1], idle]) {
            let cancelled = try daemon.run(["cancel", id, "--reason", "paused"])
            #expect(cancelled.status == 0 && cancelled.stdout.contains("cancelled before it ran"), "\(id): \(cancelled.stdout) \(cancelled.stderr)")
        }
        let raised = try idle.run(["priority", ids[3], "8"])
        #expect(raised.status == 0 && raised.stdout.contains("priority set to 8"), "\(raised.stdout) \(raised.stderr)")
        #expect(try Server.psql(cluster.store, "SELECT priority FROM job WHERE id = \(ids[3])") == "8")
        try cluster.waitUntil("the cancelled files are in Failed", timeout: 20) { cluster.first.count(in: "Failed") == 3 }
        #expect(try idle.run(["handler", "resume", "test"]).status == 0)
        try cluster.waitUntil("the last file is done", timeout: 20) { cluster.first.count(in: "Done") == 1 }
        let kept = try Server.psql(cluster.store, "SELECT convert_from(name, 'UTF8') FROM job WHERE id = \(ids[3])")
        #expect(cluster.runs() == [kept: 1], "only the file not cancelled ran: \(cluster.runs())")
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE state = 'failed' AND reason = 'cancelled: paused'") == "3")
        for daemon in running { #expect(daemon.stopDaemon() == 0) }
    }

    /// A queued file's registering daemon dies with it in its queue: the cancel waits for a holder, and the daemon
    /// that claims the job next applies it before starting the job, so the cancelled file never runs. Before, that
    /// daemon started the worker first, and a quick worker's file ended in Done/.
    @Test func aCancelLeftForADeadDaemonsJobIsAppliedBeforeTheJobRuns() throws {
        let cluster = try Cluster(count: 2, lease: "3s", workerSeconds: "4", maxConcurrent: 1)
        let (registrar, survivor) = (cluster.daemons[0], cluster.daemons[1])
        // The survivor only runs jobs: every file is registered, and held while queued, by the daemon that dies.
        var config = try String(contentsOf: survivor.configURL, encoding: .utf8)
        config = config.replacingOccurrences(of: "[node]\n", with: "[node]\nroles = [\"worker\", \"scheduler\"]\n")
        try config.write(to: survivor.configURL, atomically: true, encoding: .utf8)
        try cluster.start()
        for name in ["r1.txt", "r2.txt"] { try cluster.first.drop(name) }
        try cluster.waitUntil("both daemons run a file", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(DISTINCT owner) FROM job WHERE state = 'running'") == "2"
        }
        try cluster.first.drop("doomed.txt")
        try cluster.waitUntil("the third file waits", timeout: 20) {
            try Server.psql(cluster.store, "SELECT state FROM job WHERE name = convert_to('doomed.txt', 'UTF8')") == "queued"
        }
        let id = try Server.psql(cluster.store, "SELECT id FROM job WHERE name = convert_to('doomed.txt', 'UTF8')")
        registrar.killDaemon()
        let asked = try survivor.run(["cancel", id, "--reason", "doomed"], timeout: 30)
        // Answered at once if the survivor already took the job over, else after the command's wait.
        #expect(asked.status == 0 || asked.stderr.contains("no daemon of the store has answered"), "\(asked.stdout) \(asked.stderr)")
        try cluster.waitUntil("the cancelled file is in Failed", timeout: 40) {
            try Server.psql(cluster.store, "SELECT state || ' ' || coalesce(reason, '') FROM job WHERE id = \(id)") == "failed cancelled: doomed"
                && cluster.first.count(in: "Failed") == 1
        }
        #expect(cluster.runs()["doomed.txt"] == nil, "the cancelled file never ran: \(cluster.runs())")
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM attempt WHERE job_id = \(id)") == "0")
        try cluster.waitUntil("the dead daemon's file runs again on the survivor", timeout: 40) { cluster.first.count(in: "Done") == 2 }
        #expect(survivor.stopDaemon() == 0)
    }

    /// A cancel of a running job whose daemon has just died cannot be answered before another daemon takes the job
    /// over (its heartbeat still looks fresh): the command says who holds the job and when it is taken over, and the
    /// cancel is applied then. Before, it said only that no daemon had answered.
    @Test func aCancelOfAJustDeadDaemonsJobSaysWhoHoldsItAndIsAppliedAtTheTakeover() throws {
        let cluster = try Cluster(count: 2, lease: "14s", workerSeconds: "60", maxConcurrent: 1)
        let (holder, survivor) = (cluster.daemons[0], cluster.daemons[1])
        try holder.startDaemon()
        try holder.drop("held.txt")
        try cluster.waitUntil("the file runs on the first daemon", timeout: 20) {
            try Server.psql(cluster.store, "SELECT state || ' ' || coalesce(owner, '') FROM job") == "running n1"
        }
        try survivor.startDaemon()
        let id = try Server.psql(cluster.store, "SELECT id FROM job")
        holder.killDaemon()
        let asked = try survivor.run(["cancel", id, "--reason", "orphaned"], timeout: 30)
        #expect(asked.status == 1, "\(asked.stdout) \(asked.stderr)")
        #expect(asked.stderr.contains("job \(id) is held by the daemon \"n1\""), "\(asked.stderr)")
        #expect(asked.stderr.contains("at the latest once its lease (14.0s) has run out"), "\(asked.stderr)")
        try cluster.waitUntil("the survivor takes the job over and applies the cancel", timeout: 40) {
            try Server.psql(cluster.store, "SELECT state || ' ' || coalesce(reason, '') FROM job WHERE id = \(id)") == "failed cancelled: orphaned"
                && holder.count(in: "Failed") == 1
        }
        #expect(survivor.stopDaemon() == 0)
    }

    /// With no daemon of the store running, `cancel` does the whole change itself, moving the file from the processing
    /// area: given a config on other folders, it is refused (78, at `[paths]`) and changes nothing. Before, it ended
    /// the job, found no file in its own processing area, and the store's file ran again later as an orphan.
    @Test func aOneShotCancelThroughAConfigOnOtherFoldersIsRefused() throws {
        // The stop finds the first file's 30 s worker running and cuts it short (its file stays claimed, as the test
        // needs) after a short grace rather than 5 s.
        let cluster = try Cluster(count: 1, workerSeconds: "30", maxConcurrent: 1, grace: "500ms")
        try cluster.start()
        for name in ["o1.txt", "o2.txt"] { try cluster.first.drop(name) }
        try cluster.waitUntil("one runs and one waits", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FILTER (WHERE state = 'running') || '|' || count(*) FILTER (WHERE state = 'queued') FROM job") == "1|1"
        }
        let queued = try Server.psql(cluster.store, "SELECT id FROM job WHERE state = 'queued'")
        #expect(cluster.first.stopDaemon() == 0)
        let stranger = try TestInstance(config: testConfig(handler: "command = [\"/bin/true\"]", extra: """

            [node]
            name = "stranger"

            [store]
            url = "\(cluster.store)"
            """))
        let refused = try stranger.run(["cancel", queued])
        #expect(refused.status == 78 && refused.stderr.contains("error: [paths]: the daemons of this store use inbox"), "\(refused.stderr)")
        #expect(try Server.psql(cluster.store, "SELECT state FROM job WHERE id = \(queued)") == "queued")
        #expect(cluster.first.count(in: "Inbox/.processing") == 2 && cluster.first.count(in: "Failed") == 0)
        // Through the store's own config the same cancel goes through and moves the file.
        let cancelled = try cluster.first.run(["cancel", queued])
        #expect(cancelled.status == 0 && cluster.first.count(in: "Failed") == 1, "\(cancelled.stdout) \(cancelled.stderr)")
    }

    /// Two daemons of one store on different folders started at the same moment: exactly one runs, every time. The
    /// check of the store's folders and the claim of them are one decision under a lock in the store; before, both
    /// could read that no daemon was alive and both run (3 of 10 tries).
    @Test func twoDaemonsOnDifferentFoldersStartedAtOnceNeverBothRun() throws {
        let cluster = try Cluster(count: 1)
        let stranger = try TestInstance(config: testConfig(handler: "command = [\"/bin/true\"]", extra: """

            [node]
            name = "stranger"

            [store]
            url = "\(cluster.store)"
            """))
        for trial in 1...5 {
            let sizes = (cluster.first.log.utf8.count, stranger.log.utf8.count)
            let first = try cluster.first.launchDaemon()
            let other = try stranger.launchDaemon()
            func settled(_ instance: TestInstance, _ process: Process, after size: Int) -> Bool {
                !process.isRunning || String(decoding: Array(instance.log.utf8).dropFirst(size), as: UTF8.self).contains("watching")
            }
            try waitUntil("trial \(trial): each daemon runs or was refused", timeout: 30) {
                settled(cluster.first, first, after: sizes.0) && settled(stranger, other, after: sizes.1)
            }
            let runningCount = [first, other].filter(\.isRunning).count
            #expect(runningCount == 1, "trial \(trial): \(runningCount) daemons run")
            for (instance, process) in [(cluster.first, first), (stranger, other)] where !process.isRunning {
                #expect(process.terminationStatus == 78, "trial \(trial): \(instance.log.suffix(600))")
            }
            if first.isRunning { #expect(cluster.first.stopDaemon() == 0) }
            if other.isRunning { #expect(stranger.stopDaemon() == 0) }
        }
    }
}
