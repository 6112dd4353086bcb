#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Several daemons on one PostgreSQL store and one Inbox: each file runs once, on whichever daemon claims it, and a
/// daemon killed mid-work loses nothing. Against the server scripts/test starts; under `CI=true` a missing one fails.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SharedStoreTests {
    typealias Server = PostgresStoreTests.Server

    /// Three daemons with state folders of their own on the first one's Inbox, Done and Failed; each worker run is
    /// a line in the first one's runs.log.
    struct Cluster {
        let daemons: [TestInstance]
        let store: String
        var first: TestInstance { daemons[0] }

        init(
            count: Int = 3, lease: String = "30s", workerSeconds: String = "0.02", maxConcurrent: Int = 2, grace: String = "5s",
            extra: String = ""
        ) throws {
            store = try Server().freshDatabase()
            let first = try TestInstance(config: "")
            let runs = first.path("runs.log")
            var daemons: [TestInstance] = []
            for index in 1...count {
                let config = testConfig(
                    handler: """
                        command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> \(runs); sleep \(workerSeconds)']
                        max_attempts = 3
                        """, maxConcurrent: maxConcurrent, settle: "50ms", grace: grace,
                    extra: """

                        [paths]
                        inbox = "\(first.path("Inbox"))"
                        done = "\(first.path("Done"))"
                        failed = "\(first.path("Failed"))"

                        [node]
                        name = "n\(index)"

                        [store]
                        url = "\(store)"
                        lease = "\(lease)"
                        """ + extra)
                if index == 1 {
                    try config.write(to: first.configURL, atomically: true, encoding: .utf8)
                    daemons.append(first)
                } else {
                    daemons.append(try TestInstance(config: config))
                }
            }
            self.daemons = daemons
        }

        func start() throws { for daemon in daemons { try daemon.startDaemon() } }

        /// Like `TestInstance.waitUntil`, but a timeout shows every daemon's log without its routine lines, and the
        /// store's jobs by state: what one daemon's log cannot say about the others.
        func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
            do {
                try IntegrationTests.waitUntil(what, timeout: timeout, condition)
            } catch {
                for (index, daemon) in daemons.enumerated() {
                    let notable = daemon.log.split(separator: "\n").filter { !$0.contains(" INFO done ") }
                    Issue.record("daemon n\(index + 1) (running: \(daemon.daemon?.isRunning == true)), log without done lines:\n\(notable.suffix(40).joined(separator: "\n"))")
                }
                let jobs = (try? Server.psql(store, "SELECT state || ' ' || coalesce(owner, '-') || ' ' || count(*) FROM job GROUP BY state, owner")) ?? "?"
                Issue.record("jobs by state and owner:\n\(jobs)\nInbox \(first.count(in: "Inbox")), processing \(first.count(in: "Inbox/.processing")), Done \(first.count(in: "Done")), Failed \(first.count(in: "Failed"))")
                throw error
            }
        }

        func runs() -> [String: Int] {
            var perFile: [String: Int] = [:]
            for run in first.lines(of: "runs.log") { perFile[run, default: 0] += 1 }
            return perFile
        }
    }

    @Test func threeDaemonsOnOneInboxRunEachFileOnce() throws {
        let cluster = try Cluster()
        try cluster.start()
        let names = (1...2000).map { "f\($0).txt" }
        for name in names { try cluster.first.drop(name) }
        try cluster.first.waitUntil("every file is done", timeout: 240) { cluster.first.count(in: "Done") == 2000 }
        #expect(cluster.first.count(in: "Failed") == 0 && cluster.first.count(in: "Inbox") == 0)
        #expect(cluster.first.count(in: "Inbox/.processing") == 0)
        let runs = cluster.runs()
        #expect(Set(runs.keys) == Set(names) && runs.values.allSatisfy { $0 == 1 }, "\(runs.filter { $0.value != 1 })")
        let rows = try Server.psql(
            cluster.store, "SELECT count(*), count(DISTINCT name), count(*) FILTER (WHERE state = 'done') FROM job")
        #expect(rows == "2000|2000|2000")
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM attempt WHERE outcome = 'succeeded'") == "2000")
        // The work was shared: more than one daemon ran files.
        let owners = try Server.psql(cluster.store, "SELECT count(DISTINCT owner) FROM job")
        #expect((Int(owners) ?? 0) >= 2, "owners: \(owners)")
        // A crash report (a backtrace) runs long: the lines before its registers say what trapped.
        for daemon in cluster.daemons {
            #expect(daemon.stopDaemon() == 0, "\(daemon.log.split(separator: "\n").filter { !$0.contains(" INFO done ") }.prefix(80).joined(separator: "\n"))")
        }
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM node WHERE stopped_at IS NOT NULL") == "3")
    }
}

extension SharedStoreTests {
    /// A daemon SIGKILLed mid-work, five times, a different one each time, beside an every-second task: the
    /// killed daemon's running jobs come back when their 3 s leases run out (within the lease and 2 s) and run on the
    /// others; nothing is lost, each file is in Done once, only interrupted runs repeat, and no slot runs twice.
    @Test func daemonsKilledMidWorkFiveTimesLoseNothingAndOnlyInterruptedRunsRepeat() throws {
        let ticks = FileManager.default.temporaryDirectory.appendingPathComponent("ticks-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: ticks) }
        let cluster = try Cluster(lease: "3s", workerSeconds: "0.3", extra: """

            [[task]]
            name = "tick"
            every = "1s"
            command = ["/bin/sh", "-c", 'echo "$ORCH_JOB_ID" >> \(ticks)']
            """)
        try cluster.start()
        var names: [String] = []
        var interrupted: Set<String> = []
        for round in 0..<5 {
            let batch = (1...30).map { "r\(round)-\($0).txt" }
            names += batch
            for name in batch { try cluster.first.drop(name) }
            let victim = cluster.daemons[round % 3]
            let node = "n\(round % 3 + 1)"
            try victim.waitUntil("\(node) runs files", timeout: 30) {
                try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE owner = '\(node)' AND state = 'running' AND kind = 'file'") != "0"
            }
            let held = try Server.psql(
                cluster.store, "SELECT name FROM job WHERE owner = '\(node)' AND state = 'running' AND kind = 'file' ORDER BY id"
            ).split(separator: "\n").map { String(decoding: Data(hexBytea: String($0)), as: UTF8.self) }
            let before = try Server.psql(cluster.store, "SELECT count(*) FROM transition WHERE detail LIKE 'rescued: %'")
            victim.killDaemon()
            let killedAt = Date().timeIntervalSince1970
            interrupted.formUnion(held)
            try cluster.first.waitUntil("round \(round) is done", timeout: 60) {
                Set(cluster.first.names(in: "Done").map { String(decoding: $0, as: UTF8.self) }).isSuperset(of: batch)
            }
            // Taken back by the others after the lease ran out, and not much later.
            let rescues = try Server.psql(
                cluster.store,
                "SELECT at FROM transition WHERE detail LIKE 'rescued: the lease of \(node) %' ORDER BY id OFFSET 0"
            ).split(separator: "\n").compactMap { Double($0) }.filter { $0 >= killedAt }
            #expect(rescues.count >= held.count, "round \(round): \(node) held \(held), rescued \(rescues.count) (\(before) before)")
            #expect(rescues.allSatisfy { $0 - killedAt <= 3 + 2 }, "round \(round): rescued \(rescues.map { $0 - killedAt }) s after the kill")
            try victim.startDaemon()
        }
        try cluster.first.waitUntil("every file is done", timeout: 60) { cluster.first.count(in: "Done") == names.count }
        #expect(cluster.first.count(in: "Failed") == 0)
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
        #expect(cluster.first.count(in: "Inbox/.processing") == 0)
        let runs = cluster.runs()
        #expect(Set(runs.keys) == Set(names))
        let repeated = Set(runs.filter { $0.value > 1 }.keys)
        #expect(repeated.isSubset(of: interrupted) && runs.values.allSatisfy { $0 <= 2 }, "repeated \(repeated), interrupted \(interrupted)")
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE kind = 'file' AND state = 'done'") == "\(names.count)")
        let slots = try Server.psql(cluster.store, "SELECT count(*) = count(DISTINCT slot_ms) FROM job WHERE kind = 'task'")
        #expect(slots == "t", "no slot queued twice")
        let tickRuns = (try? String(contentsOfFile: ticks, encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(!tickRuns.isEmpty && tickRuns.count == Set(tickRuns).count, "no task run ran twice: \(tickRuns.count) runs")
    }
}

extension Data {
    /// psql's text form of a bytea: `\x` and hex digits.
    init(hexBytea text: String) {
        var bytes: [UInt8] = []
        var digits = text.hasPrefix("\\x") ? Substring(text.dropFirst(2)) : Substring(text)
        while digits.count >= 2, let byte = UInt8(digits.prefix(2), radix: 16) {
            bytes.append(byte)
            digits = digits.dropFirst(2)
        }
        self.init(bytes)
    }
}

extension SharedStoreTests {
    /// No leader: every daemon's scheduler fires each slot of an `every = "1s"` task, and the slot's unique key in
    /// the store lets one of them queue it. Over 60 s each slot runs once, whichever daemon runs it.
    @Test func anEverySecondTaskRunsOncePerSlotAcrossThreeDaemons() throws {
        let cluster = try Cluster()
        let ticks = cluster.first.path("ticks.log")
        for daemon in cluster.daemons {
            var config = try String(contentsOf: daemon.configURL, encoding: .utf8)
            config += """

                [[task]]
                name = "tick"
                every = "1s"
                command = ["/bin/sh", "-c", 'echo "$ORCH_JOB_ID" >> \(ticks)']

                [[task]]
                name = "ev"
                on = "go"
                command = ["/bin/sh", "-c", 'echo "$ORCH_JOB_ID" >> \(cluster.first.path("events.log"))']
                """
            try config.write(to: daemon.configURL, atomically: true, encoding: .utf8)
        }
        try cluster.start()
        let started = Date()
        // Files, triggers and a sweep alongside: the inbox, event and request paths work with the scheduler on three
        // daemons.
        for index in 1...30 { try cluster.first.drop("t\(index).txt") }
        for _ in 1...3 { #expect(try cluster.first.run(["trigger", "go"]).status == 0) }
        let sweep = try cluster.first.run(["sweep", "--mode", "ingest"], timeout: 30)
        #expect(sweep.status == 0, "\(sweep.stderr)")
        try cluster.first.waitUntil("a minute of slots", timeout: 90) { Date().timeIntervalSince(started) >= 60 }
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }

        let rows = try Server.psql(
            cluster.store,
            "SELECT count(*), count(DISTINCT slot_ms), count(*) FILTER (WHERE state = 'done') FROM job WHERE kind = 'task' AND name = convert_to('tick', 'UTF8')")
            .split(separator: "|").compactMap { Int($0) }
        #expect(rows.count == 3 && rows[0] == rows[1], "one run per slot: \(rows)")
        #expect(rows.count == 3 && rows[0] >= 55 && rows[0] <= 62, "about one slot a second for 60 s: \(rows)")
        let runs = cluster.first.lines(of: "ticks.log")
        #expect(runs.count == Set(runs).count, "no run ran twice")
        #expect(rows.count == 3 && runs.count >= rows[2], "every done run ran: \(runs.count) runs, \(rows)")
        // Which daemon queued a slot was a race; more than one did over a minute.
        let runners = try Server.psql(cluster.store, "SELECT count(DISTINCT owner) FROM job WHERE kind = 'task'")
        #expect((Int(runners) ?? 0) >= 2, "runners: \(runners)")
        #expect(cluster.first.count(in: "Done") == 30)
        // Each event queued its run once, and each ran once, whichever daemon ran it; the sweep was handled.
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE kind = 'task' AND name = convert_to('ev', 'UTF8') AND state = 'done'") == "3")
        #expect(cluster.first.lines(of: "events.log").count == 3)
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM request WHERE handled_at IS NOT NULL") == "1")
    }
}

extension SharedStoreTests {
    /// A daemon stopped (SIGSTOP) past its lease: an idle daemon takes the job back when the lease runs out and runs
    /// it; when the stopped one resumes, its late end is refused and moves nothing.
    @Test func aDaemonStoppedPastItsLeaseHasItsLateEndRefused() throws {
        let cluster = try Cluster(count: 2, lease: "3s", workerSeconds: "1")
        let (idle, stalled) = (cluster.daemons[0], cluster.daemons[1])
        try stalled.startDaemon()
        try cluster.first.drop("a.txt")
        try stalled.waitUntil("n2 runs the file", timeout: 20) {
            try Server.psql(cluster.store, "SELECT owner FROM job WHERE state = 'running'") == "n2"
        }
        try idle.startDaemon()
        let pid = try #require(stalled.daemon?.processIdentifier)
        kill(pid, SIGSTOP)
        let stoppedAt = Date()
        try idle.waitUntil("n1 took the job back and ran it", timeout: 20) { cluster.first.count(in: "Done") == 1 }
        #expect(Date().timeIntervalSince(stoppedAt) < 3 + 2 + 1 + 2, "rescued within the lease and 2 s, then a 1 s run")
        kill(pid, SIGCONT)
        try stalled.waitUntil("n2 saw its claim was lost", timeout: 20) {
            stalled.log.contains("another daemon runs it, nothing is moved") || stalled.log.contains("another daemon took it back")
        }
        // One file in Done, none elsewhere; the store has the rescue and n1's success, and nothing of n2's late end.
        #expect(cluster.first.names(in: "Done") == [Array("a.txt".utf8)] && cluster.first.count(in: "Failed") == 0)
        #expect(cluster.first.count(in: "Inbox/.processing") == 0)
        #expect(try Server.psql(cluster.store, "SELECT state, owner, claims FROM job") == "done|n1|2")
        #expect(try Server.psql(cluster.store, "SELECT string_agg(outcome, ',' ORDER BY id) FROM attempt") == "interrupted,succeeded")
        // Its log does not call done what the store refused: a file's "done" line waits for its end to hold.
        #expect(!stalled.log.contains(" done "), "\(stalled.log.suffix(1500))")
        #expect(idle.log.contains(" done "), "\(idle.log.suffix(1500))")
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }
}

extension SharedStoreTests {
    /// The server crashes (`pg_ctl stop -m immediate`) under three busy daemons and comes back: they wait for it,
    /// settle any COMMIT the crash cut off, and go on; every file ends in Done once, and none of them exits.
    @Test func threeDaemonsRideOutAServerCrash() throws {
        let server = try Server()
        let cluster = try Cluster(workerSeconds: "0.05")
        defer { try? server.start() }  // Never leave the other tests without their server.
        try cluster.start()
        let names = (1...150).map { "c\($0).txt" }
        for name in names { try cluster.first.drop(name) }
        try cluster.first.waitUntil("some are done", timeout: 30) { cluster.first.count(in: "Done") >= 20 }
        try server.crash()
        // Paused, or waiting to learn the outcome of a COMMIT the crash cut off.
        try cluster.first.waitUntil("a daemon pauses", timeout: 30) {
            cluster.daemons.contains {
                $0.log.contains("paused: the store's server cannot be reached")
                    || $0.log.contains("for it to answer whether that COMMIT was applied")
            }
        }
        try server.start()
        try cluster.waitUntil("every file is done", timeout: 90) { cluster.first.count(in: "Done") == 150 }
        #expect(cluster.first.count(in: "Failed") == 0 && cluster.first.count(in: "Inbox/.processing") == 0)
        for daemon in cluster.daemons { #expect(daemon.daemon?.isRunning == true, "\(daemon.log.suffix(2000))") }
        let runs = cluster.runs()
        // A run the crash cut off from the store runs again; nothing is lost and nothing runs three times.
        #expect(Set(runs.keys) == Set(names) && runs.values.allSatisfy { $0 <= 2 }, "\(runs.filter { $0.value > 1 })")
        #expect(try Server.psql(cluster.store, "SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM job") == "150|150")
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }
}

extension SharedStoreTests {
    /// After the server's outage `status` says at once that the daemons run and are healthy: they beat and write their
    /// health when they resume. Before, what the outage left (UNHEALTHY, or SILENT after 75 s) stood until the next
    /// heartbeat, up to 30 s after the daemons were working again.
    @Test func daemonsSayTheyAreBackAsSoonAsTheServerIs() throws {
        let server = try Server()
        let cluster = try Cluster(count: 2, extra: "\n[sweeps]\nwatchdog = \"1s\"\n")
        defer { try? server.start() }
        try cluster.start()
        try cluster.first.drop("before.txt")
        try cluster.first.waitUntil("the first file is done", timeout: 30) { cluster.first.count(in: "Done") == 1 }
        try server.crash()
        // A file to register: the lister finds the server gone and pauses, its watchdog saying so (or, when the crash
        // cut off a COMMIT, it waits for the server to say whether that was applied, and nothing runs meanwhile).
        try cluster.first.drop("during.txt")
        try cluster.waitUntil("a daemon finds its health wanting", timeout: 30) {
            cluster.daemons.contains { $0.log.contains("ERROR unhealthy") || $0.log.contains("whether that COMMIT was applied") }
        }
        try server.start()
        try cluster.waitUntil("the file dropped meanwhile is done", timeout: 60) { cluster.first.count(in: "Done") == 2 }
        try cluster.waitUntil("status says both run and are healthy", timeout: 8) {
            guard let status = try cluster.first.json(["status"]) as? [String: Any],
                let daemons = status["daemons"] as? [[String: Any]], daemons.count == 2
            else { return false }
            return daemons.allSatisfy {
                $0["condition"] as? String == "running" && ($0["health"] as? [String: Any])?["healthy"] as? Bool == true
            }
        }
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }
}

extension SharedStoreTests {
    /// Roles divide the work: a lister only registers what arrives in Inbox; a worker without the lister role never
    /// watches Inbox and runs what the lister registered, woken by its announcement; only the scheduler fires slots.
    @Test func aListerRegistersAndAWorkerRuns() throws {
        let cluster = try Cluster(count: 2)
        let (lister, worker) = (cluster.daemons[0], cluster.daemons[1])
        for (daemon, roles) in [(lister, #"["lister"]"#), (worker, #"["worker", "scheduler"]"#)] {
            var config = try String(contentsOf: daemon.configURL, encoding: .utf8)
            config = config.replacingOccurrences(of: "[node]\n", with: "[node]\nroles = \(roles)\n")
            try config.write(to: daemon.configURL, atomically: true, encoding: .utf8)
        }
        try cluster.start()
        let names = (1...50).map { "w\($0).txt" }
        for name in names { try cluster.first.drop(name) }
        try cluster.first.waitUntil("every file is done", timeout: 60) { cluster.first.count(in: "Done") == 50 }
        #expect(Set(cluster.runs().keys) == Set(names) && cluster.runs().values.allSatisfy { $0 == 1 })
        #expect(try Server.psql(cluster.store, "SELECT string_agg(DISTINCT owner, ',') FROM job") == "n2")
        #expect(!lister.log.contains(" done "), "the lister runs nothing")
        // Its watchdog does not count the Inbox watch it never has against it.
        #expect(!worker.log.contains("unhealthy"), "\(worker.log.suffix(1000))")
        let status = try lister.run(["status"])
        #expect(status.stdout.contains(", lister, pid") && status.stdout.contains(", worker+scheduler, pid"), "\(status.stdout)")
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }
}

extension SharedStoreTests {
    /// Daemons of one store share one set of folders: a job any of them claims finds its file in the processing
    /// area, and a file name is live once across them. One on other folders is refused while the others run.
    @Test func aDaemonOnOtherFoldersIsRefusedWhileTheStoresDaemonsRun() throws {
        let cluster = try Cluster(count: 1)
        try cluster.start()
        let stranger = try TestInstance(config: testConfig(handler: "command = [\"/bin/true\"]", extra: """

            [node]
            name = "stranger"

            [store]
            url = "\(cluster.store)"
            """))
        // Refused, it leaves nothing behind: before, it had made its folders and lock files first.
        for folder in ["Inbox", "Done", "Failed"] { try FileManager.default.removeItem(atPath: stranger.path(folder)) }
        let refused = try stranger.run(["watch"], timeout: 30)
        #expect(refused.status == 78, "\(refused.stderr)")
        #expect(refused.stderr.contains("error: [paths]: the daemons of this store use inbox \(cluster.first.path("Inbox"))"), "\(refused.stderr)")
        for folder in ["Inbox", "Done", "Failed", ".orchestrator"] {
            #expect(!FileManager.default.fileExists(atPath: stranger.path(folder)), "\(folder) was made")
        }
        // Once the store's daemons have stopped, another set of folders may take it over.
        #expect(cluster.first.stopDaemon() == 0)
        try stranger.startDaemon()
        try stranger.drop("s.txt")
        try stranger.waitUntil("the new folders work", timeout: 20) { stranger.count(in: "Done") == 1 }
        #expect(stranger.stopDaemon() == 0)
    }
    /// The second daemon reaches the shared folders through a link of its own (`shared`, to the first's folder).
    func linkSecondDaemonsFolders(_ cluster: Cluster) throws -> (TestInstance, link: String) {
        let linked = cluster.daemons[1]
        let link = linked.path("shared")
        #expect(symlink(cluster.first.root.path, link) == 0, "symlink: \(errno)")
        var config = try String(contentsOf: linked.configURL, encoding: .utf8)
        config = config.replacingOccurrences(of: "\"\(cluster.first.root.path)/", with: "\"\(link)/")
        #expect(config.contains("inbox = \"\(link)/Inbox\""), "\(config)")
        try config.write(to: linked.configURL, atomically: true, encoding: .utf8)
        return (linked, link)
    }

    /// The same folders spelled through a symlink are the same folders: a daemon reaching the shared Inbox, Done and
    /// Failed through a link of its own joins the others. Before, the check compared the configs' text and refused it.
    @Test func aDaemonReachingTheSharedFoldersThroughASymlinkJoinsTheOthers() throws {
        let cluster = try Cluster(count: 2)
        let (linked, _) = try linkSecondDaemonsFolders(cluster)
        try cluster.start()
        let names = (1...40).map { "l\($0).txt" }
        for name in names { try cluster.first.drop(name) }
        try cluster.waitUntil("every file is done", timeout: 60) { cluster.first.count(in: "Done") == 40 }
        #expect(Set(cluster.runs().keys) == Set(names) && cluster.runs().values.allSatisfy { $0 == 1 })
        #expect(linked.daemon?.isRunning == true, "\(linked.log.suffix(1500))")
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }

    /// A symlink on the way to the shared folders re-pointed while a daemon runs takes its Inbox elsewhere: it stops
    /// watching and walking Inbox until the link is back, so nothing there is claimed into a processing area the store's
    /// other daemons never look in. Before, a walk registered the other folder's files as the store's jobs.
    @Test func aDaemonWhoseFolderLinkIsRePointedStopsTakingFilesUntilItIsBack() throws {
        let cluster = try Cluster(count: 2)
        let (linked, link) = try linkSecondDaemonsFolders(cluster)
        try cluster.start()
        let elsewhere = linked.path("elsewhere")
        for folder in ["Inbox", "Done", "Failed"] {
            try FileManager.default.createDirectory(atPath: elsewhere + "/" + folder, withIntermediateDirectories: true)
        }
        try "x".write(toFile: elsewhere + "/Inbox/stray.txt", atomically: true, encoding: .utf8)
        #expect(unlink(link) == 0 && symlink(elsewhere, link) == 0, "re-point: \(errno)")
        let sweep = try linked.run(["sweep", "--mode", "ingest"], timeout: 30)
        #expect(sweep.status == 0, "\(sweep.stdout) \(sweep.stderr)")
        try linked.waitUntil("the daemon says its folders are not the store's (or takes the stray file)", timeout: 20) {
            try linked.log.contains("not the store's") || Server.psql(cluster.store, "SELECT count(*) FROM job") != "0"
        }
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM job") == "0")
        #expect(linked.log.contains("not the store's"), "\(linked.log.suffix(1500))")
        #expect(FileManager.default.fileExists(atPath: elsewhere + "/Inbox/stray.txt"))
        // Back where it was: the shared folders work on both daemons again.
        #expect(unlink(link) == 0 && symlink(cluster.first.root.path, link) == 0, "re-point back: \(errno)")
        _ = try linked.run(["sweep", "--mode", "ingest"], timeout: 30)
        for name in (1...10).map({ "b\($0).txt" }) { try cluster.first.drop(name) }
        try cluster.waitUntil("the shared files are done", timeout: 60) { cluster.first.count(in: "Done") == 10 }
        #expect(try Server.psql(cluster.store, "SELECT count(*) FROM job WHERE convert_from(name, 'UTF8') = 'stray.txt'") == "0")
        for daemon in cluster.daemons { #expect(daemon.stopDaemon() == 0) }
    }
}
