import Foundation
import Testing

/// Interval and event tasks on the real binary. Intervals are a second or two, and every wait is for a
/// condition with a deadline.
@Suite(.serialized, .timeLimit(.minutes(3))) struct TaskTests {
    /// A task line for the config: appends one line to `<log>` in the instance root per run.
    static func task(_ name: String, _ trigger: String, log: String? = nil, script: String? = nil, extra: String = "") -> String {
        let body = script ?? "echo \"$ORCH_JOB_ID\" >> ../\(log ?? name).log"
        return """

            [[task]]
            name = "\(name)"
            \(trigger)
            command = ["/bin/sh", "-c", \(jsonString(body))]
            \(extra)
            """
    }

    static func jsonString(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes]), as: UTF8.self)
    }

    static let handler = "command = [\"/bin/true\"]"

    func taskRows(_ instance: TestInstance) throws -> [String: [String: Any]] {
        let object = try #require(try instance.json(["tasks"]) as? [String: Any])
        let rows = try #require(object["tasks"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as? String ?? "", $0) })
    }

    func taskRuns(_ instance: TestInstance, _ task: String) throws -> [[String: Any]] {
        let rows = try #require(try instance.json(["history", "--limit", "1000"]) as? [[String: Any]])
        return rows.filter { $0["task"] as? String == task }
    }

    /// `trigger` with a disabled listener says it is not run for the event (it had said "the daemon queues: hook").
    /// The running daemon runs what its own config names: `task run` of a task only added to the file (not reloaded)
    /// said "queued" (exit 0) and nothing ran, and `trigger` named the file's listeners. It now asks the daemon, as
    /// the API does: 65 for a task the daemon does not have; a task it has runs.
    @Test func taskRunAndTriggerAnswerForTheConfigTheDaemonRunsWith() throws {
        let record = #"echo "$ORCH_TASK" >> ../runs.log"#
        let config = testConfig(handler: #"command = ["/bin/true"]"#, extra: """

            [[task]]
            name = "real"
            on = "never.fired"
            command = ["/bin/sh", "-c", '\(record)']
            """)
        let instance = try TestInstance(config: config)
        try instance.startDaemon()
        try (config + """

            [[task]]
            name = "ghost"
            on = "ghost.ev"
            command = ["/bin/sh", "-c", '\(record)']
            """).write(to: instance.configURL, atomically: true, encoding: .utf8)
        let ghost = try instance.run(["task", "run", "ghost"])
        #expect(ghost.status == 65, "\(ghost.stdout)\(ghost.stderr)")
        #expect(ghost.stderr.contains("has no task named \"ghost\" in the config it runs with"), "\(ghost.stderr)")
        let trigger = try instance.run(["trigger", "ghost.ev"])
        #expect(trigger.status == 0 && trigger.stdout.contains("the running daemon's config is not this file's"), "\(trigger.stdout)")
        let real = try instance.run(["task", "run", "real"])
        #expect(real.status == 0 && real.stdout.contains("task real: queued ahead of everything"), "\(real.stdout)\(real.stderr)")
        try instance.waitUntil("the daemon's task runs", timeout: 10) { instance.lines(of: "runs.log") == ["real"] }
        #expect(instance.stopDaemon() == 0)
        #expect(instance.lines(of: "runs.log") == ["real"], "ghost ran though the daemon never had it")
    }

    /// `tasks` shows a running daemon's next fire in that daemon's zone (a unit's Environment=TZ=...), not in the
    /// zone of the shell it is run from: a task without `tz` fires in the daemon's.
    @Test func tasksShowsTheNextFireInTheRunningDaemonsZone() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["/bin/true"]"#, extra: """

            [[task]]
            name = "evening"
            cron = "52 17 * * *"
            command = ["/bin/true"]
            """))
        try instance.startDaemon(environment: ["TZ": "Asia/Kathmandu"])
        var environment = ProcessInfo.processInfo.environment
        environment["TZ"] = "UTC"
        var next = ""
        // The daemon notes its zone with its start's first commit, which may follow its "watching" line.
        try? instance.waitUntil("tasks shows the daemon's zone", timeout: 10) {
            let listed = try instance.run(["tasks", "--json"], environment: environment)
            let object = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any]
            next = ((object?["tasks"] as? [[String: Any]])?.first?["next_fire"] as? String) ?? listed.stdout + listed.stderr
            return next.hasSuffix("T17:52:00+05:45")
        }
        #expect(next.hasSuffix("T17:52:00+05:45"), "\(next)")
        #expect(instance.stopDaemon() == 0)
    }

    @Test func triggerSaysADisabledListenerIsNotRun() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#)
            + Self.task("hook", #"on = "webhook.received""#) + Self.task("audit", #"on = "webhook.received""#))
        try instance.startDaemon()
        #expect(try instance.run(["task", "disable", "hook"]).status == 0)
        let fired = try instance.run(["trigger", "webhook.received"])
        #expect(fired.status == 0, "\(fired.stderr)")
        #expect(fired.stdout.contains("the daemon queues: audit; disabled, so not run for it: hook"), "\(fired.stdout)")
        try instance.waitUntil("audit runs", timeout: 20) { instance.lines(of: "audit.log").count == 1 }
        expectQuiet(for: 1.0, "hook running though disabled") { !instance.lines(of: "hook.log").isEmpty }
        // One event, one line in the log (it was dispatched twice, the second run refused as "this slot already ran").
        #expect(instance.log.components(separatedBy: "INFO event ").count - 1 == 1, "\(instance.log)")
        #expect(!instance.log.contains("this slot already ran"), "\(instance.log)")
        #expect(instance.stopDaemon() == 0)
    }

    @Test func dependencyChainWaitsForAFailedMiddleAndRunsAfterItRecovers() throws {
        let config = testConfig(handler: Self.handler)
            + Self.task("level1", "every = \"1s\"")
            + Self.task(
                "level2", "every = \"1s\"", script: "echo \"$ORCH_JOB_ID\" >> ../level2.log; test ! -e ../level2.fail",
                extra: "after = [\"level1\"]")
            + Self.task("level3", "every = \"1s\"", extra: "after = [\"level2\"]")
        let instance = try TestInstance(config: config)
        #expect(FileManager.default.createFile(atPath: instance.path("level2.fail"), contents: nil))
        try instance.startDaemon()

        try instance.waitUntil("level2 has failed twice", timeout: 20) { instance.lines(of: "level2.log").count >= 2 }
        #expect(instance.lines(of: "level1.log").count >= 2)
        #expect(instance.lines(of: "level3.log").isEmpty, "level3 ran although level2 failed")
        let waiting = try taskRows(instance)["level3"]?["waiting_for"] as? [String]
        #expect(waiting == ["level2"])
        #expect(try taskRows(instance)["level2"]?["last_result"] as? String == "failed")

        try FileManager.default.removeItem(atPath: instance.path("level2.fail"))
        try instance.waitUntil("level3 runs after level2 recovered", timeout: 20) { !instance.lines(of: "level3.log").isEmpty }
        let rows = try taskRows(instance)
        #expect(rows["level2"]?["last_result"] as? String == "succeeded")
        // ISO 8601 with its offset, as `next_fire` (it was "2026-12-06 16:02:40": no T, no zone).
        let finished = rows["level2"]?["last_finished"] as? String ?? ""
        #expect(finished.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)/) != nil, "\(finished)")
        #expect(rows["level3"]?["waiting_for"] == nil)
        // While level2 failed, the daemon said why level3 did not run.
        #expect(instance.log.contains("waiting for level2"))
        instance.stopDaemon()
    }

    @Test func aDependentOfATaskWhoseCommandIsMissingIsSkippedNotBlocked() throws {
        // `watch` refuses a command that is missing at start, so the tool disappears once the daemon runs. Should
        // a slot come first, the tool fails, which keeps the dependent waiting until the tool is missing.
        let config = testConfig(handler: Self.handler)
            + "\n[[task]]\nname = \"broken\"\nevery = \"1s\"\ncommand = [\"../workers/tool.sh\"]\n"
            + Self.task("dependent", "every = \"1s\"", extra: "after = [\"broken\"]")
        let instance = try TestInstance(config: config, workers: ["tool.sh": "#!/bin/sh\nexit 1\n"])
        try instance.startDaemon()
        try FileManager.default.removeItem(atPath: instance.path("workers/tool.sh"))
        try instance.waitUntil("the dependent's slot is skipped", timeout: 20) {
            instance.log.contains("not run: prerequisite broken cannot run: its command is missing")
        }
        #expect(instance.lines(of: "dependent.log").isEmpty)
        #expect(try taskRows(instance)["dependent"]?["waiting_for"] == nil, "skipped, not waiting forever")
        instance.stopDaemon()
    }

    @Test func restartWithinTheScheduleDoesNotRunASlotAgain() throws {
        let config = testConfig(handler: Self.handler) + Self.task("tick", "every = \"2s\"")
        let instance = try TestInstance(config: config)
        try instance.startDaemon()
        try instance.waitUntil("the first run is recorded as finished", timeout: 20) {
            try taskRuns(instance, "tick").contains { $0["job_state"] as? String == "done" }
        }
        instance.killDaemon()
        try instance.startDaemon()
        try instance.waitUntil("three runs", timeout: 30) { instance.lines(of: "tick.log").count >= 3 }
        try instance.waitUntil("the third run is recorded", timeout: 10) {
            try taskRuns(instance, "tick").filter { $0["job_state"] as? String == "done" }.count >= 3
        }
        instance.stopDaemon()

        let runs = try taskRuns(instance, "tick")
        let slots = runs.compactMap { $0["slot_ms"] as? Int64 }
        #expect(slots.count == runs.count)
        #expect(Set(slots).count == slots.count, "a slot ran twice: \(slots.sorted())")
        #expect(slots.allSatisfy { $0 % 2000 == 0 }, "slots are aligned to the interval")
        // Each line of the log is one recorded run, and each recorded run wrote one line.
        let jobs = Set(runs.compactMap { $0["job"] as? Int })
        #expect(instance.lines(of: "tick.log").compactMap(Int.init).sorted() == jobs.sorted())
        let row = try taskRows(instance)["tick"]
        #expect(row?["executions"] as? Int == runs.count)
        #expect(row?["failures"] as? Int == 0)
        #expect(row?["average_seconds"] is Double && row?["p95_seconds"] is Double)
    }

    @Test func missedSlotRunsOnceAfterDowntimeWithCatchUpOnce() throws {
        let config = testConfig(handler: Self.handler)
            + Self.task("eager", "every = \"1s\"")
            + Self.task("lazy", "every = \"1s\"", extra: "catch_up = \"none\"")
        let instance = try TestInstance(config: config)
        try instance.startDaemon()
        try instance.waitUntil("both ran", timeout: 20) {
            !instance.lines(of: "eager.log").isEmpty && !instance.lines(of: "lazy.log").isEmpty
        }
        #expect(instance.stopDaemon() == 0)
        let stoppedAt = Date()
        // The scenario is downtime: more than three 1 s slots pass with no daemon, and nothing runs meanwhile.
        let runsAtStop = instance.lines(of: "eager.log").count + instance.lines(of: "lazy.log").count
        expectQuiet(for: 3.5, "a task ran while no daemon was running") {
            instance.lines(of: "eager.log").count + instance.lines(of: "lazy.log").count != runsAtStop
        }
        try instance.startDaemon()
        try instance.waitUntil("each ran again after the restart", timeout: 20) {
            try taskRuns(instance, "eager").contains { $0["cause"] as? String == "schedule" && ($0["slot_ms"] as? Int64 ?? 0) > Int64(stoppedAt.timeIntervalSince1970 * 1000) + 3000 }
                && taskRuns(instance, "lazy").count >= 2
        }
        instance.stopDaemon()
        #expect(try taskRuns(instance, "eager").filter { $0["cause"] as? String == "catch_up" }.count == 1)
        #expect(try taskRuns(instance, "lazy").filter { $0["cause"] as? String == "catch_up" }.isEmpty)
    }

    @Test func rebootTaskRunsOncePerDaemonStart() throws {
        let config = testConfig(handler: Self.handler) + Self.task("startup", "cron = \"@reboot\"")
        let instance = try TestInstance(config: config)
        try instance.startDaemon()
        try instance.waitUntil("it ran at start", timeout: 10) { instance.lines(of: "startup.log").count == 1 }
        #expect(instance.stopDaemon() == 0)
        try instance.startDaemon()
        try instance.waitUntil("it ran at the second start", timeout: 10) { instance.lines(of: "startup.log").count == 2 }
        instance.stopDaemon()
        #expect(try taskRuns(instance, "startup").map { $0["cause"] as? String } == ["reboot", "reboot"])
    }

    @Test func eventFromTheCLIRunsItsTaskOncePerEvent() throws {
        let config = testConfig(handler: Self.handler) + Self.task("deploy", "on = \"deploy.finished\"")
        let instance = try TestInstance(config: config)

        // Recorded while no daemon runs: the next start picks it up.
        let early = try instance.run(["trigger", "deploy.finished"])
        #expect(early.status == 0, "\(early.stderr)")
        #expect(early.stdout.contains("deploy"))
        try instance.startDaemon()
        try instance.waitUntil("the early event ran its task", timeout: 10) { instance.lines(of: "deploy.log").count == 1 }

        // While it runs: woken through the state folder, not by polling (the next ingest sweep, the fallback,
        // is 5 minutes away). Timed from the moment `trigger` has recorded the event and exited, so the CLI's
        // own start-up is not part of it: what is left is the daemon's pickup and the task's short run.
        #expect(try instance.run(["trigger", "deploy.finished"]).status == 0)
        let recordedAt = Date()
        try instance.waitUntil("the second event ran its task", timeout: 10) { instance.lines(of: "deploy.log").count == 2 }
        #expect(Date().timeIntervalSince(recordedAt) < 1.0, "picked up within a second")

        // A restart does not handle old events again.
        instance.stopDaemon()
        try instance.startDaemon()
        #expect(try instance.run(["trigger", "deploy.finished"]).status == 0)
        try instance.waitUntil("the third event ran its task", timeout: 10) { instance.lines(of: "deploy.log").count == 3 }
        instance.stopDaemon()
        #expect(instance.lines(of: "deploy.log").count == 3)
        let causes = try taskRuns(instance, "deploy").map { $0["cause"] as? String }
        #expect(causes == ["event", "event", "event"])

        // An event nobody listens to is still recorded; a bad name is a usage error.
        let unheard = try instance.run(["trigger", "nobody.listens"])
        #expect(unheard.status == 0)
        #expect(unheard.stdout.contains("no task listens"))
        #expect(try instance.run(["trigger", "bad name"]).status == 64)
    }

    @Test func anEventRunWaitingForAPrerequisiteSurvivesARestart() throws {
        let config = testConfig(handler: Self.handler)
            + Self.task("prep", "on = \"prep.go\"", script: "echo \"$ORCH_JOB_ID\" >> ../prep.log; test ! -e ../prep.fail")
            + Self.task("hook", "on = \"hook.go\"", extra: "after = [\"prep\"]")
        let instance = try TestInstance(config: config)
        #expect(FileManager.default.createFile(atPath: instance.path("prep.fail"), contents: nil))
        try instance.startDaemon()
        #expect(try instance.run(["trigger", "prep.go"]).status == 0)
        try instance.waitUntil("prep failed", timeout: 10) { try taskRows(instance)["prep"]?["last_result"] as? String == "failed" }
        #expect(try instance.run(["trigger", "hook.go"]).status == 0)
        try instance.waitUntil("hook waits for prep", timeout: 10) { try taskRows(instance)["hook"]?["waiting_for"] as? [String] == ["prep"] }
        #expect(instance.stopDaemon() == 0)

        try instance.startDaemon()
        try FileManager.default.removeItem(atPath: instance.path("prep.fail"))
        #expect(try instance.run(["trigger", "prep.go"]).status == 0)
        try instance.waitUntil("hook ran once prep succeeded", timeout: 10) { instance.lines(of: "hook.log").count == 1 }
        instance.stopDaemon()
        #expect(try taskRuns(instance, "hook").count == 1)
    }

    /// A reload that takes a task's `after` away: the run that waited goes at once, and `tasks` stops saying it waits; a
    /// wait recorded by an earlier life of the daemon, whose `after` was taken away meanwhile, is cleared at its next run
    /// (before, both said "waiting for prep" for good while the task ran at every slot).
    @Test func aWaitEndsWhenItsPrerequisitesAreTakenAway() throws {
        let waiting = testConfig(handler: Self.handler)
            + Self.task("prep", "on = \"prep.go\"") + Self.task("tick", "every = \"1s\"", extra: "after = [\"prep\"]")
        let instance = try TestInstance(config: waiting)
        try instance.startDaemon()
        try instance.waitUntil("tick waits for prep", timeout: 10) { try taskRows(instance)["tick"]?["waiting_for"] as? [String] == ["prep"] }
        #expect(instance.lines(of: "tick.log").isEmpty)
        try waiting.replacingOccurrences(of: "after = [\"prep\"]", with: "").write(to: instance.configURL, atomically: true, encoding: .utf8)
        kill(try #require(instance.daemon).processIdentifier, SIGHUP)
        try instance.waitUntil("the config is reloaded", timeout: 10) { instance.log.contains("config reloaded") }
        try instance.waitUntil("tick runs", timeout: 10) { instance.lines(of: "tick.log").count >= 1 }
        try instance.waitUntil("tick no longer said to wait", timeout: 10) { try taskRows(instance)["tick"]?["waiting_for"] == nil }
        #expect(instance.stopDaemon() == 0)

        // The same wait left by a daemon that stopped while it waited, the config changed while it was away.
        try waiting.write(to: instance.configURL, atomically: true, encoding: .utf8)
        try instance.startDaemon()
        try instance.waitUntil("tick waits for prep again", timeout: 10) { try taskRows(instance)["tick"]?["waiting_for"] as? [String] == ["prep"] }
        #expect(instance.stopDaemon() == 0)
        let ranBefore = instance.lines(of: "tick.log").count
        try waiting.replacingOccurrences(of: "after = [\"prep\"]", with: "").write(to: instance.configURL, atomically: true, encoding: .utf8)
        try instance.startDaemon()
        try instance.waitUntil("tick runs after the restart", timeout: 10) { instance.lines(of: "tick.log").count > ranBefore }
        try instance.waitUntil("the old wait is cleared", timeout: 10) { try taskRows(instance)["tick"]?["waiting_for"] == nil }
        #expect(instance.stopDaemon() == 0)
    }

    /// A disabled task fires at no time: `tasks` shows no next fire for it (before, it showed one it would skip).
    @Test func aDisabledTaskHasNoNextFire() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.handler)
            + Self.task("hourly", "every = \"1h\"") + Self.task("quiet", "every = \"1h\""))
        #expect(try instance.run(["task", "disable", "quiet"]).status == 0)
        let rows = try taskRows(instance)
        #expect(rows["hourly"]?["next_fire"] is String, "\(rows)")
        #expect(rows["quiet"]?["next_fire"] == nil && rows["quiet"]?["enabled"] as? Bool == false, "\(rows)")
        // `status` says so on the task's line (before: "next -", as for a task that has no next fire yet).
        let status = try instance.run(["status"]).stdout
        #expect(status.split(separator: "\n").contains { $0.hasPrefix("task:     quiet") && $0.contains("next - (disabled)") }, "\(status)")
        #expect(!status.split(separator: "\n").contains { $0.hasPrefix("task:     hourly") && $0.contains("disabled") }, "\(status)")
        #expect(try instance.run(["task", "enable", "quiet"]).status == 0)
        #expect(try taskRows(instance)["quiet"]?["next_fire"] is String)
    }

    @Test func builtInEventsAndDisabledTasks() throws {
        let config = testConfig(handler: Self.handler)
            + Self.task("after_file", "on = \"file.done\"")
            + Self.task("muted", "on = \"file.done\"")
        let instance = try TestInstance(config: config)
        #expect(try instance.run(["task", "disable", "muted"]).status == 0)
        #expect(try instance.run(["task", "disable", "no_such_task"]).status == 65)
        try instance.startDaemon()
        try instance.drop("a.txt")
        try instance.waitUntil("file.done ran its task", timeout: 10) { instance.lines(of: "after_file.log").count == 1 }
        // Both listeners were considered in the same step; once nothing is queued or running, a muted run
        // would have finished too.
        try instance.waitUntil("the queue is empty", timeout: 10) {
            let status = try #require(try instance.json(["status"]) as? [String: Any])
            let jobs = status["jobs"] as? [String: Int]
            return jobs?["queued"] == 0 && jobs?["running"] == 0
        }
        #expect(try taskRows(instance)["muted"]?["enabled"] as? Bool == false)
        #expect(instance.lines(of: "muted.log").isEmpty)

        #expect(try instance.run(["task", "enable", "muted"]).status == 0)
        try instance.waitUntil("the daemon saw the change", timeout: 10) { instance.log.contains("enabled task=muted") }
        try instance.drop("b.txt")
        try instance.waitUntil("both tasks ran for the second file", timeout: 10) {
            instance.lines(of: "after_file.log").count == 2 && instance.lines(of: "muted.log").count == 1
        }
        instance.stopDaemon()
    }
}

@Suite(.timeLimit(.minutes(2))) struct TaskOverlapTests {
    @Test func runsOfOneTaskNeverOverlapEvenWhenEventsQueueSeveral() throws {
        let config = testConfig(handler: TaskTests.handler, maxConcurrent: 3)
            + TaskTests.task(
                "slow", "on = \"go\"",
                script: "echo start >> ../slow.log; while [ ! -e ../release ]; do sleep 0.02; done; echo end >> ../slow.log")
        let instance = try TestInstance(config: config)
        try instance.startDaemon()
        for _ in 0..<3 { #expect(try instance.run(["trigger", "go"]).status == 0) }
        try instance.waitUntil("three runs are recorded", timeout: 10) {
            let status = try #require(try instance.json(["status"]) as? [String: Any])
            let jobs = status["jobs"] as? [String: Int]
            return (jobs?["queued"] ?? 0) + (jobs?["running"] ?? 0) == 3 && instance.lines(of: "slow.log") == ["start"]
        }
        let status = try #require(try instance.json(["status"]) as? [String: Any])
        #expect((status["running"] as? [Any])?.count == 1, "with three free slots, still one run at a time")
        #expect(FileManager.default.createFile(atPath: instance.path("release"), contents: nil))
        try instance.waitUntil("all three ran", timeout: 10) { instance.lines(of: "slow.log").count == 6 }
        #expect(instance.lines(of: "slow.log") == ["start", "end", "start", "end", "start", "end"])
        instance.stopDaemon()
    }

    /// A reload takes a task away while its run is running, a second reload puts it back, and `task run` asks for
    /// another run: it waits for the first to end. Before, the task came back knowing nothing of the run that
    /// outlived its removal, and the second run started beside it.
    @Test func aTaskRemovedAndAddedBackByReloadsDoesNotOverlapItsRunningRun() throws {
        let task = TaskTests.task(
            "slow", "every = \"1h\"\ncatch_up = \"none\"",
            script: "echo start >> ../slow.log; while [ ! -e ../release ]; do sleep 0.02; done; echo end >> ../slow.log",
            extra: "overlap = \"skip\"")
        let with = testConfig(handler: TaskTests.handler, maxConcurrent: 3) + task
        let without = testConfig(handler: TaskTests.handler, maxConcurrent: 3)
        let instance = try TestInstance(config: with)
        try instance.startDaemon()
        let daemon = try #require(instance.daemon)
        #expect(try instance.run(["task", "run", "slow"]).status == 0)
        try instance.waitUntil("the first run runs", timeout: 10) { instance.lines(of: "slow.log") == ["start"] }
        for (round, config) in [without, with].enumerated() {
            try config.write(to: instance.configURL, atomically: true, encoding: .utf8)
            kill(daemon.processIdentifier, SIGHUP)
            try instance.waitUntil("reload \(round + 1) is applied", timeout: 10) {
                instance.log.components(separatedBy: "config reloaded").count == round + 2
            }
        }
        #expect(try instance.run(["task", "run", "slow"]).status == 0)
        try instance.waitUntil("the second run is queued", timeout: 10) {
            let status = try #require(try instance.json(["status"]) as? [String: Any])
            return (status["jobs"] as? [String: Int])?["queued"] == 1
        }
        try expectQuiet(for: 1, "a second run beside the first") { instance.lines(of: "slow.log").count > 1 }
        #expect(FileManager.default.createFile(atPath: instance.path("release"), contents: nil))
        try instance.waitUntil("both ran", timeout: 10) { instance.lines(of: "slow.log").count == 4 }
        #expect(instance.lines(of: "slow.log") == ["start", "end", "start", "end"])
        #expect(instance.stopDaemon() == 0)
    }

    @Test func tasksListeningToTaskEndsDoNotLoop() throws {
        let config = testConfig(handler: TaskTests.handler)
            + TaskTests.task("first", "on = \"go\"")
            + TaskTests.task("echo", "on = \"task.completed\"")
            + TaskTests.task("marker", "on = \"mark\"")
        let instance = try TestInstance(config: config)
        try instance.startDaemon()
        #expect(try instance.run(["trigger", "go"]).status == 0)
        try instance.waitUntil("echo ran after first", timeout: 10) { instance.lines(of: "echo.log").count == 1 }
        #expect(try instance.run(["trigger", "mark"]).status == 0)
        try instance.waitUntil("marker ran", timeout: 10) { instance.lines(of: "marker.log").count == 1 }
        // echo's own completion (and marker's completion queues one echo run, which is quiet).
        try instance.waitUntil("echo ran for marker", timeout: 10) { instance.lines(of: "echo.log").count == 2 }
        #expect(try instance.run(["trigger", "mark"]).status == 0)
        try instance.waitUntil("marker ran again", timeout: 10) { instance.lines(of: "marker.log").count == 2 }
        try instance.waitUntil("echo ran for marker again", timeout: 10) { instance.lines(of: "echo.log").count == 3 }
        instance.stopDaemon()
        #expect(instance.lines(of: "first.log").count == 1)
        #expect(instance.lines(of: "echo.log").count == 3, "one echo per completion of another task, none for its own")
    }
}
