#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// `cancel`, `handler pause|resume`, `priority` and `--version` on the real binary (SPEC section 3).
@Suite(.timeLimit(.minutes(3))) struct InterventionTests {
    /// One at a time, so that what waits is visible: `block*` waits for a `release` file; every other file's
    /// worker appends its name to `ran.log`, which is how a test knows whether it ever ran.
    static let config = """
        [inbox]
        settle = "100ms"

        [limits]
        max_concurrent = 1
        shutdown_grace = "5s"

        [[handler]]
        name = "blocker"
        match = ["block*"]
        command = ["/bin/sh", "-c", 'while [ ! -e ../release ]; do sleep 0.02; done']

        [[handler]]
        name = "test"
        command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> ../ran.log']
        max_attempts = 3
        backoff = "100ms"
        """

    /// A daemon on SQLite that drains after a stop signal still answers cancels of the jobs it has: the running one's
    /// group is ended now, the waiting one goes to Failed/. Before, it stopped watching its wake folder at the signal:
    /// each cancel waited 10 s and exited 1, the running file ended in Done/ and the waiting one stayed claimed.
    @Test func aDrainingDaemonAnswersCancels() throws {
        let instance = try TestInstance(config: Self.config.replacingOccurrences(of: #"shutdown_grace = "5s""#, with: #"shutdown_grace = "60s""#))
        try instance.startDaemon()
        let daemon = try #require(instance.daemon)
        try instance.drop("block")
        try instance.waitUntil("block runs", timeout: 20) { (try? self.jobCount(instance, "running")) == 1 }
        try instance.drop("waiting.txt")
        try instance.waitUntil("waiting.txt waits", timeout: 20) {
            (try? self.jobCount(instance, "running")) == 1 && (try? self.jobCount(instance, "queued")) == 1
        }
        kill(daemon.processIdentifier, SIGTERM)
        try instance.waitUntil("the daemon drains", timeout: 10) { instance.log.contains("stopping") }
        for target in ["block", "waiting.txt"] {
            let cancel = try instance.run(["cancel", target, "--reason", "operator"], timeout: 30)
            #expect(cancel.status == 0, "\(target): \(cancel.stderr)")
        }
        try instance.waitUntil("the daemon has stopped", timeout: 20) { !daemon.isRunning }
        #expect(daemon.terminationStatus == 0)
        #expect(instance.names(in: "Failed") == [Array("block".utf8), Array("waiting.txt".utf8)])
        #expect(instance.count(in: "Done") == 0)
        #expect(!instance.lines(of: "ran.log").contains("waiting.txt"))
    }

    func status(_ instance: TestInstance) throws -> [String: Any] {
        try #require(try instance.json(["status"]) as? [String: Any])
    }

    func jobCount(_ instance: TestInstance, _ state: String) throws -> Int {
        (try status(instance)["jobs"] as? [String: Int])?[state] ?? -1
    }

    func show(_ instance: TestInstance, _ target: String) throws -> [String: Any] {
        try #require(try instance.json(["show", target]) as? [String: Any])
    }

    /// The daemon runs the blocker, so that what is dropped next waits in the queue.
    func holdQueue(_ instance: TestInstance) throws {
        try instance.startDaemon()
        try instance.drop("block")
        try instance.waitUntil("the blocker runs", timeout: 10) {
            ((try? status(instance))?["running"] as? [Any])?.count == 1
        }
    }

    // MARK: cancel

    @Test func cancelOfAQueuedJobSendsItToFailedAndItNeverRuns() throws {
        let instance = try TestInstance(config: Self.config)
        try holdQueue(instance)
        try instance.drop("victim.txt")
        try instance.waitUntil("victim.txt is queued", timeout: 10) { try jobCount(instance, "queued") == 1 }

        let cancel = try instance.run(["cancel", "victim.txt", "--reason", "not needed"])
        #expect(cancel.status == 0, "\(cancel.stderr)")
        try instance.waitUntil("victim.txt is in Failed/", timeout: 5) {
            instance.names(in: "Failed") == [Array("victim.txt".utf8)]
        }
        let job = try show(instance, "victim.txt")
        #expect(job["state"] as? String == "failed")
        #expect(job["reason"] as? String == "cancelled: not needed")
        #expect((job["attempts"] as? [Any])?.isEmpty == true, "a cancelled queued job has no attempt")
        // What the user asked for is logged as such, not as an error.
        #expect(instance.log.contains("INFO cancelled") && !instance.log.contains("failed for good"), "\(instance.log)")

        // The queue goes on; the cancelled file never ran, then or later.
        try instance.drop("after.txt")
        _ = FileManager.default.createFile(atPath: instance.path("release"), contents: nil)
        try instance.waitUntil("block and after.txt are done", timeout: 10) { instance.count(in: "Done") == 2 }
        #expect(instance.lines(of: "ran.log") == ["after.txt"])
        #expect(instance.names(in: "Failed") == [Array("victim.txt".utf8)])
        #expect(instance.stopDaemon() == 0)
    }

    /// A name recurs (a daily `report.txt`): a path in Inbox or the processing area, or the bare name, names the live
    /// job, one in Done the job that ended there. Before, every form found the finished job: the cancel was refused
    /// (65) and the new file ran.
    @Test func aRecurringNameNamesTheLiveJobUnlessThePathIsInDone() throws {
        // The blocker still runs at the stop: a short grace ends it at once rather than after 5 s.
        let instance = try TestInstance(config: Self.config.replacingOccurrences(of: #"shutdown_grace = "5s""#, with: #"shutdown_grace = "500ms""#))
        try instance.startDaemon()
        try instance.drop("daily.txt")
        try instance.waitUntil("the first daily.txt is done", timeout: 10) { instance.count(in: "Done") == 1 }
        try instance.drop("block")
        try instance.waitUntil("the blocker runs", timeout: 10) { ((try? status(instance))?["running"] as? [Any])?.count == 1 }
        try instance.drop("daily.txt")
        try instance.waitUntil("the second daily.txt is queued", timeout: 10) { try jobCount(instance, "queued") == 1 }
        let first = try #require(try show(instance, "Done/daily.txt")["job"] as? Int)
        let second = try #require(try show(instance, instance.path("Inbox/.processing/daily.txt"))["job"] as? Int)
        let bare = try show(instance, "daily.txt")["job"] as? Int
        #expect(second > first && bare == second)
        let priority = try instance.run(["priority", "Inbox/.processing/daily.txt", "7"])
        #expect(priority.status == 0, "\(priority.stderr)")
        let cancel = try instance.run(["cancel", "daily.txt"])
        #expect(cancel.status == 0 && cancel.stdout.contains("job \(second) cancelled"), "\(cancel.stdout) \(cancel.stderr)")
        try instance.waitUntil("the second daily.txt is in Failed/", timeout: 10) { instance.count(in: "Failed") == 1 }
        #expect(instance.lines(of: "ran.log") == ["daily.txt"], "the second one never ran")
        #expect(instance.stopDaemon() == 0)
    }

    /// The worker leaves a child in its group and a double-forked grandchild in a session of its own, then waits.
    static let familyWorker = """
        #!/bin/sh
        out=$(cat "$ORCH_FILE")
        sleep 1000 &
        echo $! > "$out.child.tmp"; mv "$out.child.tmp" "$out.child"
        setsid sh -c "sleep 1000 & echo \\$! > '$out.tmp'; mv '$out.tmp' '$out.grandchild'"
        wait
        """

    @Test func cancelOfARunningJobEndsItsGroupAndGrandchildWithinTheGraceWithoutRetry() throws {
        let config = """
            [inbox]
            settle = "100ms"

            [limits]
            shutdown_grace = "5s"

            [[handler]]
            name = "family"
            command = ["../workers/family.sh"]
            max_attempts = 3
            backoff = "100ms"
            """
        let instance = try TestInstance(config: config, workers: ["family.sh": Self.familyWorker])
        try instance.startDaemon()
        let pids = instance.path("pids")
        try instance.drop("long.txt", pids + "\n")
        try instance.waitUntil("the worker's child and grandchild run", timeout: 20) {
            FileManager.default.fileExists(atPath: pids + ".child") && FileManager.default.fileExists(atPath: pids + ".grandchild")
        }
        let child = try #require(instance.lines(of: "pids.child").first.flatMap { Int32($0) })
        let grandchild = try #require(instance.lines(of: "pids.grandchild").first.flatMap { Int32($0) })
        let started = (child: processStartTime(child), grandchild: processStartTime(grandchild))
        defer {
            if started.child != nil, processStartTime(child) == started.child { kill(child, SIGKILL) }
            if started.grandchild != nil, processStartTime(grandchild) == started.grandchild { kill(grandchild, SIGKILL) }
        }
        let worker = try #require((try status(instance)["running"] as? [[String: Any]])?.first?["pid"] as? Int)

        let cancel = try instance.run(["cancel", "long.txt", "--reason", "stuck"])
        #expect(cancel.status == 0, "\(cancel.stderr)")
        // The grace between SIGTERM and SIGKILL is 5 s.
        try instance.waitUntil("the group and the grandchild are gone", timeout: 5) {
            processStartTime(child) != started.child && processStartTime(grandchild) != started.grandchild
                && kill(-Int32(worker), 0) != 0
        }
        try instance.waitUntil("long.txt is in Failed/", timeout: 5) { instance.names(in: "Failed") == [Array("long.txt".utf8)] }
        let job = try show(instance, "long.txt")
        #expect(job["state"] as? String == "failed")
        #expect(job["reason"] as? String == "cancelled: stuck")
        let attempts = try #require(job["attempts"] as? [[String: Any]])
        #expect(attempts.count == 1)
        #expect(attempts.first?["outcome"] as? String == "cancelled")
        // With a 100 ms backoff a retry would have started by now.
        expectQuiet(for: 1.5, "no retry of a cancelled job") {
            ((try? show(instance, "long.txt"))?["attempts"] as? [Any])?.count != 1
        }
        #expect(instance.stopDaemon() == 0)
    }

    @Test func cancelOfAFinishedOrUnknownJobExits65() throws {
        let instance = try TestInstance(config: Self.config)
        // Before anything was recorded.
        let nothing = try instance.run(["cancel", "1"])
        #expect(nothing.status == 65, "\(nothing.stderr)")
        try instance.startDaemon()
        try instance.drop("done.txt")
        try instance.waitUntil("done.txt is done", timeout: 10) { instance.count(in: "Done") == 1 }
        let finished = try instance.run(["cancel", "done.txt"])
        #expect(finished.status == 65)
        #expect(finished.stderr.contains("already finished"), "\(finished.stderr)")
        let byID = try instance.run(["cancel", "Done/done.txt"])
        #expect(byID.status == 65)
        let unknown = try instance.run(["cancel", "99999"])
        #expect(unknown.status == 65)
        #expect(unknown.stderr.hasPrefix("error: no job matches 99999"), "\(unknown.stderr)")
        #expect(try instance.run(["cancel", "no-such-file.txt"]).status == 65)
        #expect(instance.stopDaemon() == 0)
        #expect(instance.names(in: "Done") == [Array("done.txt".utf8)])
    }

    /// A file named like a job id: `cancel 2` was taken as job 2, another file's, and cancelled it without a word. Now
    /// refused as ambiguous (64); `id:2` names the job, `Inbox/2` the file.
    @Test func aNumberThatIsAlsoAFilesNameIsAmbiguous() throws {
        let instance = try TestInstance(config: Self.config)
        try instance.startDaemon()
        try instance.drop("block")
        try instance.waitUntil("the blocker runs", timeout: 10) { (try? self.jobCount(instance, "running")) == 1 }
        try instance.drop("b")
        try instance.waitUntil("b waits", timeout: 10) { (try? self.jobCount(instance, "queued")) == 1 }
        try instance.drop("2")
        try instance.waitUntil("2 waits", timeout: 10) { (try? self.jobCount(instance, "queued")) == 2 }
        let ambiguous = try instance.run(["cancel", "2"])
        #expect(ambiguous.status == 64, "\(ambiguous.stderr)")
        #expect(ambiguous.stderr.contains("2 is both job 2 (b) and the file named 2 (job 3)"), "\(ambiguous.stderr)")
        #expect(try instance.run(["show", "2"]).status == 64)
        #expect(try instance.run(["cancel", "Inbox/2"]).status == 0)
        #expect(try instance.run(["cancel", "id:2"]).status == 0)
        try instance.waitUntil("both are in Failed", timeout: 10) { instance.count(in: "Failed") == 2 }
        #expect(instance.names(in: "Failed") == [Array("b".utf8), Array("2".utf8)])
        #expect((try show(instance, "id:1"))["state"] as? String == "running")
        _ = FileManager.default.createFile(atPath: instance.path("release"), contents: nil)
        #expect(instance.stopDaemon() == 0)
    }

    /// An empty target matched the job of a file its worker moved away (whose final path is empty): `show ""` showed
    /// it and `cancel ""` acted on it. Refused as a usage error.
    @Test func anEmptyTargetNamesNoJob() throws {
        let instance = try TestInstance(config: testConfig(handler: """
            command = ["/bin/sh", "-c", 'mv "$ORCH_FILE" ../moved-away']
            """))
        #expect(try instance.run(["show", ""]).status == 64, "with nothing recorded yet as well")
        try instance.startDaemon()
        try instance.drop("a.txt")
        try instance.waitUntil("a.txt's job ended", timeout: 20) { FileManager.default.fileExists(atPath: instance.path("moved-away")) }
        try instance.waitUntil("its end is recorded", timeout: 20) { instance.log.contains("removed its input") }
        #expect(instance.stopDaemon() == 0)
        for arguments in [["show", ""], ["cancel", ""], ["priority", "", "5"]] {
            let result = try instance.run(arguments)
            #expect(result.status == 64, "\(arguments): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains("no job given"), "\(arguments): \(result.stderr)")
        }
        #expect((try show(instance, "a.txt"))["state"] as? String == "done")
        // A path outside the instance's folders (taken from the current folder) is said to be one, not "pruned".
        let elsewhere = try instance.run(["show", "./elsewhere/Failed/a.txt"])
        #expect(elsewhere.status == 65)
        #expect(elsewhere.stderr.contains("is not in this instance's Inbox/, Done/ or Failed/"), "\(elsewhere.stderr)")
        #expect(try instance.run(["cancel", "../a.txt"]).stderr.contains("taken from the current folder"))
        // A name with a folder is a name relative to Inbox/Done/Failed, not a path from here: the usual hint.
        #expect(try instance.run(["show", "sub/a.txt"]).stderr.contains("are pruned"))
        // No job has id 0 or less: a usage error, not "pruned".
        for target in ["id:0", "id:-3", "id:99999999999999999999", "id:x"] {
            let result = try instance.run(["show", target])
            #expect(result.status == 64, "\(target): \(result.stderr)")
            #expect(result.stderr == "error: \(target): after id: comes a job id (a number from 1)\n", "\(target)")
        }
    }

    /// `show Done/x` and `replay Failed/x` from another folder than the instance's: before, show said the job that
    /// had finished a second earlier was pruned, and replay looked only in the current folder and in Failed/Failed/.
    @Test func doneAndFailedPathsNameTheirFilesFromAnyFolder() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["/bin/sh", "-c", 'case "$ORCH_NAME" in *.bad) exit 1;; esac']"#
            + "\nmax_attempts = 1"))
        try instance.startDaemon()
        try instance.drop("report.csv")
        try instance.drop("r.bad")
        try instance.waitUntil("both ended", timeout: 20) { instance.count(in: "Done") == 1 && instance.count(in: "Failed") == 1 }
        let elsewhere = URL(fileURLWithPath: "/")
        let shown = try instance.run(["show", "Done/report.csv"], workingDirectory: elsewhere)
        #expect(shown.status == 0 && shown.stdout.contains("report.csv"), "\(shown.stderr)")
        #expect(try instance.run(["show", "Failed/r.bad"], workingDirectory: elsewhere).status == 0)
        let replayed = try instance.run(["replay", "Failed/r.bad"], workingDirectory: elsewhere)
        #expect(replayed.status == 0 && replayed.stdout.contains("replayed r.bad"), "\(replayed.stderr)")
        // Still refused: anything that resolves outside Failed/.
        #expect(try instance.run(["replay", "Failed/../Done/report.csv"], workingDirectory: elsewhere).status == 65)
        #expect(instance.stopDaemon() == 0)
    }

    /// A worker's stderr tail reached the terminal raw: a worker that echoes a file's content could clear the
    /// screen or set the title of whoever ran `show`.
    @Test func showPrintsAWorkersStderrWithoutItsControlSequences() throws {
        let instance = try TestInstance(config: testConfig(handler: #"""
            command = ["/bin/sh", "-c", 'printf "\033[2J\033]0;pwned\007boom\n" >&2; exit 1']
            max_attempts = 1
            """#))
        try instance.startDaemon()
        try instance.drop("esc.txt")
        try instance.waitUntil("esc.txt failed", timeout: 20) { instance.count(in: "Failed") == 1 }
        #expect(instance.stopDaemon() == 0)
        let shown = try instance.run(["show", "esc.txt"])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(!shown.stdout.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 }, "\(shown.stdout)")
        #expect(shown.stdout.contains(#"\x1b[2J\x1b]0;pwned\x07boom"#), "\(shown.stdout)")
    }

    /// A file's name and a cancel's reason (from the command line or the API, that is from anyone who may call it) reached
    /// the terminal raw in `show` and `history`: a newline forged a row, escape sequences cleared the screen.
    @Test func showAndHistoryPrintNamesAndReasonsWithoutTheirControlSequences() throws {
        let instance = try TestInstance(config: testConfig(handler: """
            command = ["/bin/sh", "-c", 'case "$ORCH_NAME" in hold*) sleep 30;; esac']
            max_attempts = 1
            """, maxConcurrent: 1))
        try instance.startDaemon()
        try instance.drop("evil\n\u{1b}]0;pwned\u{07}name")
        try instance.waitUntil("the evil name is done", timeout: 20) { instance.count(in: "Done") == 1 }
        try instance.drop("hold.txt")
        try instance.waitUntil("hold.txt runs", timeout: 20) { try jobCount(instance, "running") == 1 }
        // A running job's reason is its job's; a waiting one's is also the reason `history` gives its row (it never ran).
        try instance.drop("waiting.txt")
        try instance.waitUntil("waiting.txt waits", timeout: 20) { try jobCount(instance, "queued") == 1 }
        for name in ["waiting.txt", "hold.txt"] {
            let cancel = try instance.run(["cancel", name, "--reason", "cli\n\u{1b}[2Jforged row"])
            #expect(cancel.status == 0, "\(cancel.stderr)")
            #expect(!cancel.stdout.unicodeScalars.contains { $0.value == 0x1b }, "\(cancel.stdout)")
        }
        try instance.waitUntil("both are in Failed", timeout: 20) { instance.count(in: "Failed") == 2 }
        #expect(instance.stopDaemon() == 0)
        func isRaw(_ scalar: Unicode.Scalar) -> Bool { scalar.value == 0x1b || scalar.value == 0x07 }
        let evil = try instance.run(["show", "id:1"])
        #expect(evil.status == 0, "\(evil.stderr)")
        #expect(!evil.stdout.unicodeScalars.contains(where: isRaw), "\(evil.stdout)")
        let fileLine = evil.stdout.split(separator: "\n").first { $0.hasPrefix("  file:") } ?? ""
        #expect(fileLine.hasSuffix(#"evil\x0a\x1b]0;pwned\x07name"#), "\(evil.stdout)")
        for arguments in [["show", "hold.txt"], ["history", "--failed"], ["history"]] {
            let shown = try instance.run(arguments)
            #expect(shown.status == 0, "\(arguments): \(shown.stderr)")
            #expect(!shown.stdout.unicodeScalars.contains(where: isRaw), "\(arguments): \(shown.stdout)")
            #expect(!shown.stdout.split(separator: "\n").contains { $0.hasPrefix("forged") }, "\(arguments): \(shown.stdout)")
            #expect(shown.stdout.contains(#"cli\x0a\x1b[2Jforged row"#), "\(arguments): \(shown.stdout)")
        }
        // The cancelled run's row gives the cancel's words and how its group ended (it gave only the SIGTERM).
        let history = try instance.run(["history"])
        let holdRow = history.stdout.split(separator: "\n").first { $0.contains("hold.txt") } ?? ""
        #expect(holdRow.contains(#"(cancelled: cli\x0a\x1b[2Jforged row; cancelled"#) && holdRow.contains("SIGTERM"), "\(history.stdout)")
    }

    // MARK: handler pause / resume

    @Test func pauseKeepsNewFilesWaitingAcrossARestartAndResumeRunsThem() throws {
        let instance = try TestInstance(config: Self.config)
        try instance.startDaemon()
        let pause = try instance.run(["handler", "pause", "test"])
        #expect(pause.status == 0, "\(pause.stderr)")
        let unknown = try instance.run(["handler", "pause", "nope"])
        #expect(unknown.status == 65)
        #expect(unknown.stderr.contains("no handler named \"nope\""), "\(unknown.stderr)")
        #expect(instance.stopDaemon() == 0)

        try instance.startDaemon()
        try instance.drop("a.txt")
        try instance.drop("b.txt")
        try instance.waitUntil("both files are paused", timeout: 10) { try jobCount(instance, "paused") == 2 }
        #expect(try status(instance)["paused_handlers"] as? [String] == ["test"])
        #expect(try instance.run(["status"]).stdout.contains("handlers: paused: test"))
        expectQuiet(for: 1, "a paused handler's file runs") { !instance.lines(of: "ran.log").isEmpty }

        // Waiting jobs of a paused handler can still be cancelled: without a daemon, by the command itself.
        #expect(instance.stopDaemon() == 0)
        let cancel = try instance.run(["cancel", "b.txt"])
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(instance.names(in: "Failed") == [Array("b.txt".utf8)])
        #expect(try show(instance, "b.txt")["reason"] as? String == "cancelled: by hand")

        try instance.startDaemon()
        try instance.waitUntil("a.txt is paused again", timeout: 10) { try jobCount(instance, "paused") == 1 }
        let resume = try instance.run(["handler", "resume", "test"])
        #expect(resume.status == 0, "\(resume.stderr)")
        try instance.waitUntil("a.txt is done", timeout: 10) { instance.count(in: "Done") == 1 }
        #expect(instance.lines(of: "ran.log") == ["a.txt"])
        #expect(try status(instance)["paused_handlers"] as? [String] == [])
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: priority

    @Test func priorityReordersTwoWaitingJobs() throws {
        let instance = try TestInstance(config: Self.config)
        try holdQueue(instance)
        try instance.drop("first.txt")
        try instance.waitUntil("first.txt is queued", timeout: 10) { try jobCount(instance, "queued") == 1 }
        try instance.drop("second.txt")
        try instance.waitUntil("second.txt is queued", timeout: 10) { try jobCount(instance, "queued") == 2 }

        let raise = try instance.run(["priority", "second.txt", "9"])
        #expect(raise.status == 0, "\(raise.stderr)")
        #expect(try show(instance, "second.txt")["priority"] as? Int == 9)
        // Running or out of range: refused.
        #expect(try instance.run(["priority", "block", "5"]).status == 65)
        #expect(try instance.run(["priority", "first.txt", "11"]).status == 64)
        // A negative one is said as out of range, not as a missing argument (ArgumentParser takes `-3` for an option).
        let negative = try instance.run(["priority", "first.txt", "-3"])
        #expect(negative.status == 64)
        #expect(negative.stderr.contains("priority must be 1..10, not -3"), "\(negative.stderr)")

        _ = FileManager.default.createFile(atPath: instance.path("release"), contents: nil)
        try instance.waitUntil("all three are done", timeout: 10) { instance.count(in: "Done") == 3 }
        #expect(instance.lines(of: "ran.log") == ["second.txt", "first.txt"])
        #expect(try instance.run(["priority", "first.txt", "5"]).status == 65)
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: --version

    @Test func versionPrintsTheVersionAndExits0() throws {
        let instance = try TestInstance(config: Self.config)
        let output = try instance.run(["--version"], withConfig: false)
        #expect(output.status == 0)
        let version = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(version.range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil, "\(output.stdout)")
    }
}

/// Field 22 of /proc/PID/stat; nil once no such process exists (a zombie still has one).
private func processStartTime(_ pid: Int32) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return fields.count > 19 ? String(fields[19]) : nil
}
