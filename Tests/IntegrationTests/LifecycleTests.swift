#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Start-up, shutdown, the other commands and the less common paths of a file.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct LifecycleTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func initCreatesTheBundledInstanceAndNeverOverwrites() throws {
        let instance = try TestInstance(config: "")
        let target = instance.path("fresh")
        let first = try instance.run(["init", target], withConfig: false)
        #expect(first.status == 0, "\(first.stderr)")
        for folder in ["Inbox", "Done", "Failed", ".orchestrator"] {
            #expect(FileManager.default.fileExists(atPath: target + "/" + folder))
        }
        let config = try String(contentsOfFile: target + "/config/orchestrator.toml", encoding: .utf8)
        let bundled = try String(contentsOf: Self.packageRoot.appendingPathComponent("config/orchestrator.toml"), encoding: .utf8)
        #expect(config == bundled, "init must write the same config the repository ships")
        let worker = try String(contentsOfFile: target + "/workers/process.sh", encoding: .utf8)
        let bundledWorker = try String(contentsOf: Self.packageRoot.appendingPathComponent("workers/process.sh"), encoding: .utf8)
        #expect(worker == bundledWorker)
        #expect(access(target + "/workers/process.sh", X_OK) == 0)

        try "# mine\n".write(toFile: target + "/config/orchestrator.toml", atomically: false, encoding: .utf8)
        let second = try instance.run(["init", target], withConfig: false)
        #expect(second.status == 0)
        #expect(try String(contentsOfFile: target + "/config/orchestrator.toml", encoding: .utf8) == "# mine\n")
        let check = try instance.run(["config", "check", "--config", target + "/config/orchestrator.toml"], withConfig: false)
        #expect(check.status == 0, "a config without handlers is valid (tasks only)")
    }

    /// The README's walkthrough, step by step, on the instance `init` writes.
    @Test func bundledInstanceProcessesAndFailsAsDocumented() throws {
        let instance = try TestInstance(config: "")
        let target = instance.path("demo")
        let initialized = try instance.run(["init", target], withConfig: false)
        try #require(initialized.status == 0, "\(initialized.stderr)")
        // The shipped config retries after 30 s; shorten it for the test only.
        let configPath = target + "/config/orchestrator.toml"
        let shipped = try String(contentsOfFile: configPath, encoding: .utf8)
        let config = shipped.replacingOccurrences(of: "backoff      = \"30s\"", with: "backoff      = \"20ms\"")
        try #require(config != shipped, "the bundled config no longer says backoff = \"30s\"; update this test")
        try config.write(toFile: configPath, atomically: false, encoding: .utf8)
        func cli(_ arguments: [String]) throws -> TestInstance.Output {
            try instance.run(arguments + ["--config", configPath], withConfig: false)
        }
        func json(_ arguments: [String]) throws -> Any {
            let output = try cli(arguments + ["--json"])
            #expect(output.status == 0, "\(arguments): \(output.stderr)")
            return try JSONSerialization.jsonObject(with: Data(output.stdout.utf8))
        }
        try "one\ntwo\n".write(toFile: target + "/Inbox/notes.txt", atomically: false, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: target + "/Inbox/empty.txt", contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestInstance.binary)
        process.arguments = ["watch", "--config", configPath]
        let daemonLog = target + "/daemon.log"
        _ = FileManager.default.createFile(atPath: daemonLog, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: daemonLog))
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        try waitUntil("both files have moved", timeout: 60) {
            FileManager.default.fileExists(atPath: target + "/Done/notes.txt")
                && FileManager.default.fileExists(atPath: target + "/Failed/empty.txt")
        }

        // "records each file's name, size, line count and sha256 in reports/inventory.tsv"
        let report = try String(contentsOfFile: target + "/reports/inventory.tsv", encoding: .utf8)
        let rows = report.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        #expect(rows.count == 1, "only notes.txt is recorded: \(report)")
        #expect(rows.first.map { Array($0.dropFirst()) } == [
            "c3f9c8c283a2b1f2f1896f27a01cbe3cddc0c9d93f752e4639035a0f5b36f6e8", "8", "2", "notes.txt",
        ])

        // "history --failed: three attempts, "exit status 1""
        let history = try #require(try json(["history", "--failed"]) as? [[String: Any]])
        #expect(history.count == 3)
        #expect(history.allSatisfy { $0["name"] as? String == "empty.txt" && $0["reason"] as? String == "exit status 1" })

        // "show Failed/empty.txt: every attempt, stderr tail, log path"
        let show = try #require(try json(["show", target + "/Failed/empty.txt"]) as? [String: Any])
        #expect(show["state"] as? String == "failed")
        #expect(show["reason"] as? String == "exit status 1")
        let attempts = try #require(show["attempts"] as? [[String: Any]])
        #expect(attempts.map { $0["attempt"] as? Int } == [1, 2, 3])
        for attempt in attempts {
            #expect(attempt["exit_code"] as? Int == 1)
            #expect((attempt["stderr_tail"] as? String)?.contains("refusing empty file: empty.txt") == true, "\(attempt)")
            let logPath = attempt["log_path"] as? String
            #expect(logPath.map { FileManager.default.fileExists(atPath: $0) } == true, "\(attempt)")
        }

        // "replay Failed/empty.txt: back to Inbox as a new job", then it is in Done.
        try "now with content\n".write(toFile: target + "/Failed/empty.txt", atomically: false, encoding: .utf8)
        let replay = try cli(["replay", target + "/Failed/empty.txt"])
        #expect(replay.status == 0, "\(replay.stderr)")
        try waitUntil("the replayed empty.txt is in Done", timeout: 30) {
            FileManager.default.fileExists(atPath: target + "/Done/empty.txt")
        }
        #expect(!FileManager.default.fileExists(atPath: target + "/Failed/empty.txt"))

        kill(process.processIdentifier, SIGTERM)
        // The shipped shutdown_grace is 30 s, but nothing is running.
        #expect(waitForExit(process, within: 40, "the bundled instance's daemon after SIGTERM"))
        #expect(process.terminationStatus == 0)
    }

    @Test func sigtermDrainsAndAnInterruptedAttemptDoesNotCount() throws {
        let worker = """
            #!/bin/sh
            echo "$ORCH_ATTEMPT" >> ../attempts.log
            [ -e ../release ] || sleep 30
            """
        let instance = try TestInstance(
            config: """
                [limits]
                shutdown_grace = "300ms"

                [[handler]]
                name = "slow"
                command = ["../workers/slow.sh"]
                max_attempts = 1
                """,
            workers: ["slow.sh": worker])
        try instance.startDaemon()
        try instance.drop("long.txt")
        try instance.waitUntil("the worker started", timeout: 30) { instance.lines(of: "attempts.log").count == 1 }
        #expect(instance.stopDaemon() == 0)
        #expect(instance.log.contains("interrupted"))
        #expect(FileManager.default.fileExists(atPath: instance.path("Inbox/.processing/long.txt")), "the file stays claimed")
        #expect(instance.count(in: "Failed") == 0)

        _ = FileManager.default.createFile(atPath: instance.path("release"), contents: nil)
        try instance.startDaemon()
        try instance.waitUntil("long.txt is done", timeout: 30) { instance.names(in: "Done").contains(Array("long.txt".utf8)) }
        #expect(instance.lines(of: "attempts.log") == ["1", "1"], "the cut-short attempt did not use up the only attempt")
        #expect(instance.stopDaemon() == 0)
    }

    /// The daemon's event loop thread runs at SCHED_BATCH; what it starts must not: a worker runs at the policy of the
    /// daemon's process (its main thread), as the service manager set it.
    @Test func workersRunAtTheDaemonsSchedulingPolicyNotTheEventLoops() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["/bin/sh", "-c", 'cut -d" " -f41 /proc/$$/stat > "../policy-$ORCH_NAME"']"#))
        try instance.startDaemon()
        for name in ["a", "b"] { try instance.drop(name) }
        try instance.waitUntil("both ran", timeout: 20) { instance.lines(of: "policy-b").count == 1 && instance.lines(of: "policy-a").count == 1 }
        let pid = try #require(instance.daemon?.processIdentifier)
        let policy = { (path: String) in
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: ")").last?.split(separator: " ")[38]
        }
        let daemonPolicy = try #require(policy("/proc/\(pid)/stat"))
        #expect(daemonPolicy == "0")
        #expect(instance.lines(of: "policy-a") == [String(daemonPolicy)])
        #expect(instance.lines(of: "policy-b") == [String(daemonPolicy)])
        // The event loop's thread is the one that is not.
        let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        #expect(threads.contains { policy("/proc/\(pid)/task/\($0)/stat") == "3" })
        instance.stopDaemon()
    }

    /// SPEC: "Each error is one line on stderr". Usage errors came with ArgumentParser's usage and help lines (3 to 10
    /// lines, "Error:" where every other error says "error:"), and a word that is no command was said to be an unknown
    /// `--config`.
    @Test func usageErrorsAreOneLineWithExit64() throws {
        let instance = try TestInstance(config: testConfig(handler: "command = [\"/bin/true\"]"))
        let cases: [([String], String)] = [
            (["priority", "1", "11"], "error: priority must be 1..10, not 11\n"),
            (["history", "--limit", "0"], "error: --limit must be at least 1\n"),
            (["show"], "error: Missing expected argument '<target>'\n"),
            (["sweep", "--mode", "bogus"],
             "error: The value 'bogus' is invalid for '--mode <mode>'. Please provide one of the following: all, retry, ingest, upload, watchdog, prune\n"),
            (["status", "--bogus"], "error: Unknown option '--bogus'\n"),
        ]
        for (arguments, expected) in cases {
            let result = try instance.run(arguments)
            #expect(result.status == 64, "\(arguments)")
            #expect(result.stderr == expected, "\(arguments)")
        }
        let unknown = try instance.run(["frob"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.hasPrefix("error: 'frob' is not a command (one of: init, watch,"), "\(unknown.stderr)")
        #expect(unknown.stderr.split(separator: "\n").count == 1)
        // Help and the version are not errors.
        let help = try instance.run(["show", "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE: orchestrator show"), "\(help.stdout)")
        let helpCommand = try instance.run(["help", "show"], withConfig: false)
        #expect(helpCommand.status == 0 && helpCommand.stdout.contains("USAGE: orchestrator show"), "\(helpCommand.stderr)")
        #expect(try instance.run(["--version"]).status == 0)
    }

    @Test func fileWithoutHandlerGoesToFailedWithReason() throws {
        let instance = try TestInstance(config: testConfig(handler: """
            command = ["true"]
            match = ["*.csv"]
            """))
        try instance.startDaemon()
        try instance.drop("photo.jpg")
        try instance.drop("table.csv")
        try instance.waitUntil("both files moved", timeout: 30) {
            instance.count(in: "Failed") == 1 && instance.count(in: "Done") == 1
        }
        #expect(instance.names(in: "Failed") == [Array("photo.jpg".utf8)])
        let show = try #require(try instance.json(["show", "photo.jpg"]) as? [String: Any])
        #expect(show["reason"] as? String == "no handler")
        #expect(instance.stopDaemon() == 0)
    }

    @Test func recursiveModeWatchesNewFoldersAndKeepsSubpaths() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        var config = try String(contentsOf: instance.configURL, encoding: .utf8)
        config = config.replacingOccurrences(of: "[inbox]\n", with: "[inbox]\nrecursive = true\n")
        try config.write(to: instance.configURL, atomically: true, encoding: .utf8)
        try instance.drop("before/early.txt")
        try instance.startDaemon()
        try FileManager.default.createDirectory(atPath: instance.path("Inbox/new/deeper"), withIntermediateDirectories: true)
        try instance.drop("new/deeper/late.txt")
        try instance.drop("top.txt")
        try instance.waitUntil("nested files are in Done with their folders", timeout: 30) {
            FileManager.default.fileExists(atPath: instance.path("Done/before/early.txt"))
                && FileManager.default.fileExists(atPath: instance.path("Done/new/deeper/late.txt"))
                && FileManager.default.fileExists(atPath: instance.path("Done/top.txt"))
        }
        #expect(instance.stopDaemon() == 0)
    }

    @Test func collidingNamesInDoneAreKeptSideBySide() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        try "old".write(toFile: instance.path("Done/same.txt"), atomically: false, encoding: .utf8)
        try instance.startDaemon()
        try instance.drop("same.txt", "new")
        try instance.waitUntil("a second same.txt is in Done", timeout: 30) { instance.count(in: "Done") == 2 }
        #expect(try String(contentsOfFile: instance.path("Done/same.txt"), encoding: .utf8) == "old")
        let other = try #require(instance.names(in: "Done").map { String(decoding: $0, as: UTF8.self) }.first { $0 != "same.txt" })
        #expect(other.hasPrefix("same~") && other.hasSuffix(".txt"))
        #expect(try String(contentsOfFile: instance.path("Done/" + other), encoding: .utf8) == "new")
        #expect(instance.stopDaemon() == 0)
    }

    @Test func workerThatDeletesItsInputIsRecordedNotACrash() throws {
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["rm", "{file}"]"#), workers: [:])
        try instance.startDaemon()
        try instance.drop("consumed.txt")
        try instance.drop("after.txt")
        try instance.waitUntil("both jobs finished", timeout: 30) {
            let history = try instance.json(["history"]) as? [[String: Any]] ?? []
            return history.count == 2
        }
        #expect(instance.log.contains("removed its input"))
        #expect(instance.daemon?.isRunning == true)
        #expect(instance.stopDaemon() == 0)
    }

    @Test func dryRunMovesAndRunsNothing() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["touch", "../ran"]"#))
        try instance.drop("waiting.txt")
        try instance.startDaemon(extraArguments: ["--dry-run"])
        try instance.drop("arriving.txt")
        try instance.waitUntil("the arrival is reported", timeout: 30) { instance.log.contains("arriving.txt") }
        #expect(instance.log.contains("would run"))
        #expect(instance.stopDaemon() == 0)
        #expect(instance.names(in: "Inbox") == [Array("waiting.txt".utf8), Array("arriving.txt".utf8)])
        #expect(!FileManager.default.fileExists(atPath: instance.path("ran")))
        #expect(!FileManager.default.fileExists(atPath: instance.path(".orchestrator/orchestrator.sqlite")))
    }

    @Test func statusReportsDaemonAndQueueInJSON() throws {
        // The stop finds a.txt's `sleep 30` running: a short grace ends it at once rather than after 5 s.
        let instance = try TestInstance(config: testConfig(handler: #"command = ["sleep", "30"]"#, maxConcurrent: 1, grace: "500ms"))
        let idle = try #require(try instance.json(["status"]) as? [String: Any])
        #expect((idle["daemon"] as? [String: Any])?["running"] as? Bool == false)
        try instance.startDaemon()
        try instance.drop("a.txt")
        try instance.drop("b.txt")
        try instance.waitUntil("one job runs and one waits", timeout: 30) {
            let status = try instance.json(["status"]) as? [String: Any] ?? [:]
            let jobs = status["jobs"] as? [String: Int] ?? [:]
            return jobs["running"] == 1 && jobs["queued"] == 1
        }
        let status = try #require(try instance.json(["status"]) as? [String: Any])
        #expect((status["daemon"] as? [String: Any])?["running"] as? Bool == true)
        #expect((status["running"] as? [[String: Any]])?.count == 1)
        let text = try instance.run(["status"])
        #expect(text.status == 0 && text.stdout.contains("running (pid"))
        #expect(instance.stopDaemon() == 0)
    }

    @Test func showOfAnUnknownJobExits65() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        #expect(try instance.run(["show", "nothing.txt"]).status == 65)
        #expect(try instance.run(["show", "12345"]).status == 65)
        #expect(try instance.run(["history", "--limit", "0"]).status == 64)
    }

    /// A command group named without a subcommand is a usage error: before, it printed its help and exited 0, which a
    /// script took for success.
    @Test func aCommandGroupWithoutASubcommandExits64() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        for group in ["task", "service", "cron", "handler", "config"] {
            let output = try instance.run([group], withConfig: false)
            #expect(output.status == 64, "\(group): \(output.stderr)")
            #expect(output.stderr.contains("missing subcommand (one of: "), "\(group): \(output.stderr)")
        }
        #expect(try instance.run(["task", "--help"], withConfig: false).status == 0)
        // A typo for the subcommand is named as such, not as the option after it.
        let typo = try instance.run(["handler", "frob", "default"])
        #expect(typo.status == 64)
        #expect(typo.stderr.contains("'frob' is not a subcommand of 'handler' (one of: pause, resume)"), "\(typo.stderr)")
    }
}
