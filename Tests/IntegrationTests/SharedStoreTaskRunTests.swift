#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// A task's runs on several daemons sharing one store: any worker runs them, so a dead daemon's runs do not wait for
/// its restart, and the store decides `overlap`, so one task never runs twice at once across daemons. Against the
/// server scripts/postgres starts.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SharedStoreTaskRunTests {
    typealias Server = PostgresStoreTests.Server
    typealias Cluster = SharedStoreTests.Cluster

    /// A folder of the test's own for what workers write.
    final class Scratch {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("taskruns-\(UUID().uuidString)").path
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func lines(_ name: String) -> [String] {
            ((try? String(contentsOfFile: "\(path)/\(name)", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
    }

    static func setRoles(_ daemon: TestInstance, _ roles: String) throws {
        var config = try String(contentsOf: daemon.configURL, encoding: .utf8)
        config = config.replacingOccurrences(of: "[node]\n", with: "[node]\nroles = \(roles)\n")
        try config.write(to: daemon.configURL, atomically: true, encoding: .utf8)
    }

    /// Three event runs of one task, queued by the daemon the trigger wakes: one runs (for a minute, the first time),
    /// two wait. The daemon running it is SIGKILLed: the others take the run back when its 3 s lease runs out and run
    /// it and the two waiting runs, one after the other, within the lease and a few seconds; each run ends once.
    @Test func aKilledDaemonsTaskRunsRunOnTheOthersWithinTheLease() throws {
        let scratch = try Scratch()
        let log = "\(scratch.path)/runs.log"
        let cluster = try Cluster(lease: "3s", extra: """

            [[task]]
            name = "ev"
            on = "go"
            command = ["/bin/sh", "-c", 'echo "start $ORCH_JOB_ID" >> \(log); if [ ! -e \(scratch.path)/flag ]; then touch \(scratch.path)/flag; exec sleep 60; fi; sleep 0.3; echo "end $ORCH_JOB_ID" >> \(log)']
            """)
        try cluster.start()
        for _ in 1...3 { #expect(try cluster.first.run(["trigger", "go"]).status == 0) }
        let states = "SELECT count(*) FILTER (WHERE state = 'running') || '|' || count(*) FILTER (WHERE state = 'queued') FROM job WHERE kind = 'task'"
        try cluster.first.waitUntil("one run runs and two wait", timeout: 20) { try Server.psql(cluster.store, states) == "1|2" }
        let owner = try Server.psql(cluster.store, "SELECT owner FROM job WHERE kind = 'task' AND state = 'running'")
        let victim = try #require(Int(owner.dropFirst()).map { cluster.daemons[$0 - 1] }, "owner \(owner)")
        victim.killDaemon()
        let killedAt = Date()
        try cluster.first.waitUntil("the three runs are done", timeout: 30) {
            try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE kind = 'task' AND state = 'done'") == "3"
        }
        let took = Date().timeIntervalSince(killedAt)
        // The lease, 2 s to take it back, three 0.3 s runs and 2 s of slack.
        let bound: Double = 3 + 2 + 0.9 + 2
        #expect(took < bound, "done \(took) s after the kill")
        // The killed run started twice (its first worker died with the daemon); every run ended once, on the others,
        // and none started before the one before it had ended.
        let lines = scratch.lines("runs.log")
        #expect(lines.count == 7, "\(lines)")
        let after = Array(lines.dropFirst())
        for (index, line) in after.enumerated() {
            #expect(line.hasPrefix(index % 2 == 0 ? "start " : "end "), "\(lines)")
            if index % 2 == 1 { #expect(line.dropFirst(4) == after[index - 1].dropFirst(6), "\(lines)") }
        }
        #expect(lines.first == after.first, "the interrupted run ran again first: \(lines)")
        let owners = try Server.psql(cluster.store, "SELECT string_agg(DISTINCT owner, ',') FROM job WHERE kind = 'task'")
        #expect(!owners.contains(owner), "done by \(owners), not by the killed \(owner)")
        #expect(try Server.psql(cluster.store, "SELECT string_agg(outcome, ',' ORDER BY id) FROM attempt")
            == "interrupted,succeeded,succeeded,succeeded")
        for daemon in cluster.daemons where daemon !== victim { #expect(daemon.stopDaemon() == 0) }
    }

    /// Two every-second tasks whose runs take 2.5 s on three daemons: with `overlap = "skip"` no run starts while
    /// another of the task runs anywhere (the worker takes a directory as its lock and says when it finds it taken);
    /// with `overlap = "queue"` at most one run waits behind the running one, store-wide.
    @Test func overlapHoldsAcrossThreeDaemons() throws {
        let scratch = try Scratch()
        func task(_ name: String, overlap: String) -> String {
            let lock = "\(scratch.path)/\(name).lock"
            let log = "\(scratch.path)/\(name).log"
            return """

                [[task]]
                name = "\(name)"
                every = "1s"
                overlap = "\(overlap)"
                command = ["/bin/sh", "-c", 'mkdir \(lock) 2>/dev/null || echo "overlap $ORCH_JOB_ID" >> \(log); echo "run $ORCH_JOB_ID" >> \(log); sleep 2.5; rmdir \(lock)']
                """
        }
        let cluster = try Cluster(extra: task("skipper", overlap: "skip") + task("queuer", overlap: "queue"))
        try cluster.start()
        let started = Date()
        var worst = (live: 0, running: 0, skipperRunning: 0)
        // A window of about six runs of each, sampling the store as it goes.
        while Date().timeIntervalSince(started) < 16 {
            let row = try Server.psql(
                cluster.store,
                """
                SELECT count(*) FILTER (WHERE name = convert_to('queuer', 'UTF8') AND state NOT IN ('done', 'failed')),
                       count(*) FILTER (WHERE name = convert_to('queuer', 'UTF8') AND state = 'running'),
                       count(*) FILTER (WHERE name = convert_to('skipper', 'UTF8') AND state = 'running')
                FROM job WHERE kind = 'task'
                """
            ).split(separator: "|").compactMap { Int($0) }
            if row.count == 3 { worst = (max(worst.live, row[0]), max(worst.running, row[1]), max(worst.skipperRunning, row[2])) }
            usleep(100_000)
        }
        // Each daemon drains a run of up to 2.5 s (a cut-short run would leave its lock directory behind): stopped
        // together, the drains overlap instead of adding up.
        #expect(TestInstance.stopTogether(cluster.daemons) == [0, 0, 0])
        #expect(worst.live <= 2 && worst.running <= 1 && worst.skipperRunning <= 1, "at worst \(worst)")
        for name in ["skipper", "queuer"] {
            let lines = scratch.lines("\(name).log")
            #expect(!lines.contains { $0.hasPrefix("overlap") }, "\(name): \(lines)")
            #expect(lines.count >= 4, "\(name) ran: \(lines)")
            // The store's attempts agree: each starts after the one before it ended.
            let spans = try Server.psql(
                cluster.store,
                """
                SELECT a.started_at || ',' || COALESCE(a.ended_at, 'Infinity') FROM attempt a JOIN job j ON j.id = a.job_id
                WHERE j.name = convert_to('\(name)', 'UTF8') ORDER BY a.started_at
                """
            ).split(separator: "\n").map { $0.split(separator: ",").compactMap { Double($0) } }
            for (earlier, later) in zip(spans, spans.dropFirst()) where earlier.count == 2 && later.count == 2 {
                #expect(later[0] >= earlier[1], "\(name): a run started at \(later[0]) before one ended at \(earlier[1])")
            }
        }
        // Slots that overlapped were skipped, and said so, each by one daemon: every scheduler fires each slot.
        let skipped = cluster.daemons.flatMap { daemon in
            daemon.log.split(separator: "\n").filter { $0.contains("not run: the previous run has not finished") && $0.contains("task=skipper") }
                .compactMap { $0.firstMatch(of: /slot=(\d+)/).map { String($0.1) } }
        }
        #expect(!skipped.isEmpty)
        #expect(Set(skipped).count == skipped.count, "a skipped slot logged by more than one daemon: \(skipped.sorted())")
    }

    /// `after` across daemons: a prerequisite's run may end on any daemon, and its dependent's run, due in the same
    /// slot, is queued once it has. Each dependent run starts after a success of the prerequisite.
    @Test func aDependentRunsAfterItsPrerequisiteWhicheverDaemonRanIt() throws {
        let scratch = try Scratch()
        let log = "\(scratch.path)/runs.log"
        let cluster = try Cluster(extra: """

            [[task]]
            name = "first"
            every = "2s"
            command = ["/bin/sh", "-c", 'sleep 0.3; echo "first $ORCH_JOB_ID" >> \(log)']

            [[task]]
            name = "then"
            every = "2s"
            after = ["first"]
            command = ["/bin/sh", "-c", 'echo "then $ORCH_JOB_ID" >> \(log)']
            """)
        try cluster.start()
        try cluster.first.waitUntil("the dependent ran four times", timeout: 30) {
            scratch.lines("runs.log").filter { $0.hasPrefix("then") }.count >= 4
        }
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
        let lines = scratch.lines("runs.log")
        #expect(lines.first?.hasPrefix("first") == true, "\(lines)")
        #expect(lines.count == Set(lines).count, "no run ran twice: \(lines)")
        let slots = try Server.psql(
            cluster.store,
            "SELECT count(*) = count(DISTINCT (name, slot_ms)) FROM job WHERE kind = 'task' AND slot_ms IS NOT NULL")
        #expect(slots == "t", "one run per task and slot")
    }

    /// Slots of an every-second task with `overlap = "queue"`, fired by one daemon alone at first: one runs (for a
    /// minute, the first time) and one waits. Two more daemons join; the first is SIGKILLed. The others take its run
    /// back after the 3 s lease and run it, then the waiting one, within the lease and a few seconds, and go on firing:
    /// every slot runs to its end once, one run at a time.
    @Test func aKilledDaemonsSlotRunsRunOnTheOthersOncePerSlot() throws {
        let scratch = try Scratch()
        let log = "\(scratch.path)/runs.log"
        let cluster = try Cluster(lease: "3s", extra: """

            [[task]]
            name = "slot"
            every = "1s"
            overlap = "queue"
            command = ["/bin/sh", "-c", 'echo "start $ORCH_JOB_ID" >> \(log); if [ ! -e \(scratch.path)/flag ]; then touch \(scratch.path)/flag; exec sleep 60; fi; sleep 0.3; echo "end $ORCH_JOB_ID" >> \(log)']
            """)
        let (alone, others) = (cluster.daemons[0], cluster.daemons.dropFirst())
        try alone.startDaemon()
        let states = "SELECT count(*) FILTER (WHERE state = 'running') || '|' || count(*) FILTER (WHERE state = 'queued') FROM job WHERE kind = 'task'"
        try alone.waitUntil("one slot runs and one waits", timeout: 20) { try Server.psql(cluster.store, states) == "1|1" }
        let held = try Server.psql(cluster.store, "SELECT string_agg(id::text, ',' ORDER BY id) FROM job WHERE kind = 'task'")
        for daemon in others { try daemon.startDaemon() }
        // Joined, the others leave the waiting run alone while the running one holds the task.
        expectQuiet(for: 2, "a second run of the task starting") { scratch.lines("runs.log").count > 1 }
        alone.killDaemon()
        let killedAt = Date()
        try cluster.first.waitUntil("both runs are done", timeout: 30) {
            try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE id IN (\(held)) AND state = 'done'") == "2"
        }
        let took = Date().timeIntervalSince(killedAt)
        let bound: Double = 3 + 2 + 0.6 + 2
        #expect(took < bound, "done \(took) s after the kill")
        // A few more slots on the two left.
        try cluster.first.waitUntil("more slots ran", timeout: 20) {
            scratch.lines("runs.log").filter { $0.hasPrefix("end ") }.count >= 5
        }
        for daemon in others { #expect(daemon.stopDaemon() == 0) }
        // The killed run started twice; after that, runs alternate: each ends before the next starts, once each.
        let lines = scratch.lines("runs.log")
        let first = held.split(separator: ",").first.map(String.init) ?? ""
        #expect(lines.prefix(2) == ["start \(first)", "start \(first)"], "\(lines)")
        let after = Array(lines.dropFirst())
        for (index, line) in after.enumerated() {
            let expected = index % 2 == 0 ? "start " : "end "
            #expect(line.hasPrefix(expected), "line \(index + 1): \(lines)")
            if index % 2 == 1 { #expect(line.dropFirst(4) == after[index - 1].dropFirst(6), "\(lines)") }
        }
        #expect(Set(after.filter { $0.hasPrefix("end ") }).count == after.filter { $0.hasPrefix("end ") }.count, "\(lines)")
        #expect(try Server.psql(cluster.store, "SELECT count(*) = count(DISTINCT slot_ms) FROM job WHERE kind = 'task'") == "t")
    }

    /// A run's end is a scheduler's work (it fires task.completed and lets dependents go): a worker without the
    /// scheduler role never claims a task run, even while the scheduler is busy with another.
    @Test func aWorkerWithoutTheSchedulerRoleLeavesTaskRunsToTheSchedulers() throws {
        let scratch = try Scratch()
        let cluster = try Cluster(count: 2, extra: """

            [[task]]
            name = "ev"
            on = "go"
            command = ["/bin/sh", "-c", 'echo "$ORCH_JOB_ID" >> \(scratch.path)/runs.log; sleep 0.3']
            """)
        try Self.setRoles(cluster.daemons[1], #"["lister", "worker"]"#)
        try cluster.start()
        for _ in 1...4 { #expect(try cluster.first.run(["trigger", "go"]).status == 0) }
        try cluster.first.waitUntil("the four runs are done", timeout: 20) {
            try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE kind = 'task' AND state = 'done'") == "4"
        }
        #expect(try Server.psql(cluster.store, "SELECT string_agg(DISTINCT owner, ',') FROM job WHERE kind = 'task'") == "n1")
        #expect(scratch.lines("runs.log").count == 4)
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }
}
