#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// One-shot sweeps and `task run`, with and without a daemon.
@Suite(.timeLimit(.minutes(3))) struct SweepTests {
    /// Fails the first attempt of each file, succeeds after; every attempt appends the name to attempts.log.
    static let flaky = """
        command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> ../attempts.log; if [ -e "../seen-$ORCH_NAME" ]; then exit 0; fi; touch "../seen-$ORCH_NAME"; exit 1']
        max_attempts = 3
        backoff = "1s"
        """

    /// Ctrl-C on a foreground `task run` cancels the run: its group ends at once, the command says so and exits 1, and
    /// the next daemon does not run it again. Before, the command waited out the whole grace, said "did not run", and
    /// left the run queued for the next `watch`, which ran the task the operator had stopped.
    @Test func stoppingAForegroundTaskRunCancelsIt() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#) + TaskTests.task(
            "long", #"on = "never.fired""#, script: "echo run >> ../long.log; sleep 60"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // With no signal blocked, as from a terminal (the test runner blocks some for its children).
        process.arguments = ["python3", "-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])",
                             TestInstance.binary, "task", "run", "long", "--config", instance.configURL.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        try instance.waitUntil("the task runs", timeout: 20) { instance.lines(of: "long.log").count == 1 }
        kill(process.processIdentifier, SIGINT)
        try instance.waitUntil("the command has ended", timeout: 10) { !process.isRunning }
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 1)
        #expect(said.contains("task long: failed: stopped by SIGINT while it ran in the foreground"), "\(said)")
        let shown = try #require(try instance.json(["show", "1"]) as? [String: Any])
        #expect(shown["state"] as? String == "failed", "\(shown)")
        try instance.startDaemon()
        expectQuiet(for: 1.5, "the stopped run running again under watch") { instance.lines(of: "long.log").count > 1 }
        #expect(instance.stopDaemon() == 0)
    }

    @Test func retrySweepWhileTheDaemonRunsDoesNotDoubleRun() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.flaky))
        try instance.startDaemon()
        try instance.drop("f.txt")
        try instance.waitUntil("the first attempt failed", timeout: 10) { instance.lines(of: "attempts.log").count == 1 }
        // Sweeps during the backoff and after it: the retry runs once, whoever starts it.
        for _ in 0..<3 {
            let sweep = try instance.run(["sweep", "--mode", "retry"])
            #expect(sweep.status == 0, "\(sweep.stderr)")
            #expect(sweep.stdout.contains("the daemon"))
        }
        try instance.waitUntil("f.txt is done", timeout: 10) { instance.names(in: "Done").contains(Array("f.txt".utf8)) }
        for _ in 0..<3 { _ = try instance.run(["sweep", "--mode", "retry"]) }
        let shown = try #require(try instance.json(["show", "f.txt"]) as? [String: Any])
        try instance.waitUntil("the daemon handled the last sweeps", timeout: 10) {
            instance.log.components(separatedBy: "sweep requested").count - 1 == 6
        }
        instance.stopDaemon()
        #expect(instance.lines(of: "attempts.log") == ["f.txt", "f.txt"])
        #expect((shown["attempts"] as? [Any])?.count == 2)
    }

    @Test func sweepsWithoutADaemonAreACompleteBatchMode() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.flaky))
        try instance.drop("a.txt")
        try instance.drop("b.txt")
        // Files written just now count as arrived only after `settle`; the sweep waits for them.
        let first = try instance.run(["sweep", "--mode", "ingest"])
        #expect(first.status == 1, "failed attempts make the sweep exit 1")
        #expect(first.stdout.contains("0 done, 0 failed, 2 failed and will retry later"), "\(first.stdout)")
        #expect(instance.count(in: "Inbox") == 0)

        // Once due, both retries succeed.
        try waitUntil("the backoff has passed", timeout: 10) {
            let dry = try instance.run(["sweep", "--mode", "retry", "--dry-run"])
            return dry.stdout.contains("2 retries are due")
        }
        let second = try instance.run(["sweep", "--mode", "all"])
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(second.stdout.contains("2 done, 0 failed"), "\(second.stdout)")
        #expect(instance.count(in: "Done") == 2)
        #expect(instance.lines(of: "attempts.log").count == 4)
        let tasks = try #require(try instance.json(["tasks"]) as? [String: Any])
        let handler = try #require((tasks["handlers"] as? [[String: Any]])?.first)
        #expect(handler["executions"] as? Int == 4)
        #expect(handler["failures"] as? Int == 2)
    }

    @Test func aSweepWhoseLockIsHeldIsSkipped() throws {
        // The holder is a real one-shot ingest sweep whose worker waits for `release`: it holds the sweep's
        // lock exactly as long as the test needs, with the lock the sweeps really take.
        let instance = try TestInstance(config: testConfig(
            handler: #"command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> ../runs.log; while [ ! -e ../release ]; do sleep 0.02; done']"#))
        try instance.drop("held.txt")
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: TestInstance.binary)
        holder.arguments = ["sweep", "--mode", "ingest", "--config", instance.configURL.path]
        holder.currentDirectoryURL = instance.root
        holder.standardOutput = FileHandle.nullDevice
        try holder.run()
        defer { if holder.isRunning { waitForExit(holder, within: 0, "the holding sweep") } }
        try instance.waitUntil("the holding sweep runs its worker", timeout: 20) { instance.lines(of: "runs.log") == ["held.txt"] }

        let sweep = try instance.run(["sweep", "--mode", "ingest"])
        #expect(sweep.status == 0)
        #expect(sweep.stdout.contains("ingest: skipped: already running (pid \(holder.processIdentifier))"), "\(sweep.stdout)")
        #expect(instance.lines(of: "runs.log") == ["held.txt"], "the skipped sweep ran nothing")

        #expect(FileManager.default.createFile(atPath: instance.path("release"), contents: nil))
        #expect(waitForExit(holder, within: 20, "the holding sweep"))
        #expect(holder.terminationStatus == 0)
        #expect(instance.names(in: "Done") == [Array("held.txt".utf8)])
    }

    @Test func taskRunInTheForegroundAndAheadOfEverythingInADaemon() throws {
        let record = "echo \"$ORCH_NAME$ORCH_TASK\" >> ../order.log"
        let config = """
            [inbox]
            settle = "100ms"

            [limits]
            max_concurrent = 1
            shutdown_grace = "5s"

            [[handler]]
            name = "blocker"
            match = ["block"]
            command = ["/bin/sh", "-c", 'while [ ! -e ../release ]; do sleep 0.02; done; \(record)']

            [[handler]]
            name = "urgent"
            priority = 10
            command = ["/bin/sh", "-c", '\(record)']

            [[task]]
            name = "report"
            on = "never.fired"
            priority = 1
            command = ["/bin/sh", "-c", '\(record)']

            [[task]]
            name = "broken"
            on = "never.fired"
            command = ["/bin/sh", "-c", 'echo cannot >&2; exit 4']
            """
        let instance = try TestInstance(config: config)
        let ok = try instance.run(["task", "run", "report"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("task report: succeeded"))
        let bad = try instance.run(["task", "run", "broken"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("exit status 4"))
        #expect(try instance.run(["task", "run", "missing"]).status == 65)

        try instance.startDaemon()
        try instance.drop("block")
        try instance.waitUntil("the blocker runs", timeout: 10) {
            ((try? instance.json(["status"])) as? [String: Any]).flatMap { ($0["running"] as? [Any])?.count } == 1
        }
        try instance.drop("urgent1")
        try instance.drop("urgent2")
        let queued = try instance.run(["task", "run", "report"])
        #expect(queued.stdout.contains("queued ahead of everything"))
        try instance.waitUntil("the run is queued", timeout: 10) { instance.log.contains("task run requested") }
        try instance.waitUntil("urgent files queued", timeout: 10) {
            let status = try #require(try instance.json(["status"]) as? [String: Any])
            return (status["jobs"] as? [String: Int])?["queued"] == 3
        }
        #expect(FileManager.default.createFile(atPath: instance.path("release"), contents: nil))
        try instance.waitUntil("all ran", timeout: 10) { instance.lines(of: "order.log").count == 5 }
        #expect(Array(instance.lines(of: "order.log").dropFirst()) == ["block", "report", "urgent1", "urgent2"])
        instance.stopDaemon()
    }
}

@Suite(.timeLimit(.minutes(2))) struct WatchdogTests {
    @Test func oneShotWatchdogIsAHealthCheck() throws {
        let config = testConfig(handler: "command = [\"/bin/true\"]", extra: "\n[sweeps]\nwatchdog = \"1s\"\n")
        let instance = try TestInstance(config: config)
        let alone = try instance.run(["sweep", "--mode", "watchdog"])
        #expect(alone.status == 0, "\(alone.stdout)\(alone.stderr)")
        #expect(alone.stdout.contains("watchdog: healthy"))
        #expect(alone.stdout.contains("no daemon is running"))

        try instance.startDaemon()
        try instance.waitUntil("the daemon's watchdog has swept", timeout: 10) {
            let status = try #require(try instance.json(["status"]) as? [String: Any])
            return (status["health"] as? [String: Any])?["by"] as? String == "daemon"
        }
        #expect(try instance.run(["sweep", "--mode", "watchdog"]).status == 0)
        // status shows the last result of each sweep the daemon ran.
        try instance.waitUntil("status lists the sweeps", timeout: 10) {
            let status = try #require(try instance.json(["status"]) as? [String: Any])
            let sweeps = status["sweeps"] as? [String: [String: Any]]
            return sweeps?["watchdog"]?["result"] as? String == "healthy"
                && (sweeps?["ingest"]?["result"] as? String)?.contains("files found") == true
        }

        // A wedged daemon (stopped) stops sweeping: the health check says so and exits 1.
        let pid = try #require(instance.daemon?.processIdentifier)
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        // Stale once no sweep came for 3 intervals + 2 s (5 s here).
        var wedged: TestInstance.Output?
        try waitUntil("the health check finds the snapshot stale", timeout: 20) {
            wedged = try instance.run(["sweep", "--mode", "watchdog"])
            return wedged?.status != 0
        }
        #expect(wedged?.status == 1)
        #expect(wedged?.stdout.contains("not sweeping") == true, "\(wedged?.stdout ?? "")")
        kill(pid, SIGCONT)
        try instance.waitUntil("healthy again", timeout: 10) { try instance.run(["sweep", "--mode", "watchdog"]).status == 0 }
        instance.stopDaemon()
    }
}

@Suite(.timeLimit(.minutes(2))) struct UploadTests {
    /// The upload fails while `../offline` exists; each attempt appends the Done path to uploads.log.
    static let handler = """
        command = ["/bin/true"]
        max_attempts = 3
        backoff = "1s"
        upload = ["/bin/sh", "-c", 'echo "$1" >> ../uploads.log; test ! -e ../offline', "upload", "{file}"]
        """

    func uploadOf(_ instance: TestInstance, _ name: String) throws -> [String: Any]? {
        let shown = try #require(try instance.json(["show", "Done/\(name)"]) as? [String: Any])
        return shown["upload"] as? [String: Any]
    }

    @Test func doneFilesAreUploadedUntilItSucceeds() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.handler))
        #expect(FileManager.default.createFile(atPath: instance.path("offline"), contents: nil))
        try instance.startDaemon()
        try instance.drop("a.txt")
        try instance.waitUntil("the first upload attempt failed", timeout: 10) { instance.lines(of: "uploads.log").count >= 1 }
        #expect(try uploadOf(instance, "a.txt")?["state"] as? String == "pending")
        #expect(instance.lines(of: "uploads.log").first == instance.path("Done/a.txt"), "{file} is the path in Done")
        try FileManager.default.removeItem(atPath: instance.path("offline"))
        try instance.waitUntil("the upload succeeded", timeout: 10) { try uploadOf(instance, "a.txt")?["state"] as? String == "ok" }
        let status = try #require(try instance.json(["status"]) as? [String: Any])
        #expect((status["uploads"] as? [String: Int])?["ok"] == 1)
        instance.stopDaemon()
    }

    /// Pausing a handler is for a backend that is down: its uploads wait too, and run once it is resumed.
    @Test func aPausedHandlersUploadsWaitUntilItIsResumed() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.handler.replacingOccurrences(of: "backoff = \"1s\"", with: "backoff = \"2s\"")))
        #expect(FileManager.default.createFile(atPath: instance.path("offline"), contents: nil))
        try instance.startDaemon()
        try instance.drop("a.txt")
        try instance.waitUntil("the first upload attempt failed", timeout: 10) { instance.lines(of: "uploads.log").count >= 1 }
        let pause = try instance.run(["handler", "pause", "test"])
        #expect(pause.status == 0, "\(pause.stderr)")
        try FileManager.default.removeItem(atPath: instance.path("offline"))
        // Its retry comes due within 2-4 s of backoff: parked instead of run.
        try instance.waitUntil("the upload is parked", timeout: 10) {
            let status = try #require(try instance.json(["status"]) as? [String: Any])
            return (status["jobs"] as? [String: Int])?["paused"] == 1
        }
        expectQuiet(for: 1, "the paused handler's upload ran") { instance.lines(of: "uploads.log").count > 1 }
        #expect(try instance.run(["handler", "resume", "test"]).status == 0)
        try instance.waitUntil("the upload succeeded", timeout: 10) { try uploadOf(instance, "a.txt")?["state"] as? String == "ok" }
        #expect(instance.lines(of: "uploads.log").count == 2)
        instance.stopDaemon()
    }

    @Test func uploadSweepWithoutADaemonRunsPendingUploads() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.handler))
        #expect(FileManager.default.createFile(atPath: instance.path("offline"), contents: nil))
        try instance.drop("b.txt")
        let ingest = try instance.run(["sweep", "--mode", "ingest"])
        #expect(ingest.stdout.contains("1 done"), "\(ingest.stdout)")
        #expect(try uploadOf(instance, "b.txt")?["state"] as? String == "pending")
        try FileManager.default.removeItem(atPath: instance.path("offline"))
        try waitUntil("the upload retry is due", timeout: 10) {
            try instance.run(["sweep", "--mode", "upload", "--dry-run"]).stdout.contains("1 uploads are due")
        }
        let upload = try instance.run(["sweep", "--mode", "upload"])
        #expect(upload.status == 0, "\(upload.stdout)\(upload.stderr)")
        #expect(upload.stdout.contains("upload: 1 ok, 0 failed"), "\(upload.stdout)")
        #expect(try uploadOf(instance, "b.txt")?["state"] as? String == "ok")
    }
}
