#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Guarantee 20: the prune sweep keeps the store and the log folder bounded, never touches Done/ or
/// Failed/, and never lets a task slot run twice.
@Suite struct RetentionTests {
    /// Prints a line (so each attempt has a log file); fails files whose name starts with "bad".
    static let worker = """
        command = ["/bin/sh", "-c", 'echo "processed $ORCH_NAME"; case "$ORCH_NAME" in bad*) exit 1;; esac']
        max_attempts = 1
        """

    static func retention(jobs: String, logs: String) -> String {
        """
        [retention]
        jobs = "\(jobs)"
        logs = "\(logs)"
        """
    }

    @Test(.timeLimit(.minutes(10)))
    func retentionPrunesJobsAttemptsAndLogsAndTheDatabaseStaysBounded() throws {
        let instance = try TestInstance(config: testConfig(
            handler: Self.worker, maxConcurrent: 4, extra: Self.retention(jobs: "1s", logs: "1s")))
        try instance.startDaemon()
        let perRound = 1500
        let failingPerRound = 10
        var sizes: [Int64] = []
        for round in 1...3 {
            for index in 0..<perRound {
                try instance.drop((index < failingPerRound ? "bad" : "f") + "-\(round)-\(index).txt", "round \(round)\n")
            }
            try instance.waitUntil("round \(round) is processed", timeout: 240) {
                instance.count(in: "Done") + instance.count(in: "Failed") == round * perRound
            }
            #expect(instance.count(in: "Failed") == round * failingPerRound)
            let logsBefore = Self.logFiles(instance)
            #expect(logsBefore >= perRound, "each attempt wrote a log")
            let doneBefore = Self.snapshot(instance, "Done")
            let failedBefore = Self.snapshot(instance, "Failed")
            // Everything this round finished ages past the 1 s retention, which each round waits out; the newest job
            // row always stays.
            try instance.waitUntil("the round's jobs are older than the retention", timeout: 30) {
                let dry = try Self.run(instance, ["sweep", "--mode", "prune", "--dry-run"])
                return dry.stdout.contains("would have deleted \(round == 1 ? perRound - 1 : perRound) jobs")
            }
            let unpruned = Self.databaseBytes(instance)
            let prune = try Self.run(instance, ["sweep", "--mode", "prune"])
            #expect(prune.status == 0, "\(prune.stderr)")
            #expect(prune.stdout.contains("prune: deleted"), "\(prune.stdout)")
            #expect(prune.stdout.contains("\(logsBefore) log files"), "\(prune.stdout)")
            #expect(Self.logFiles(instance) == 0)
            let history = try #require(try instance.json(["history", "--limit", "100000"]) as? [[String: Any]])
            #expect(history.count <= 1, "only the newest job's attempt is left")
            // Prune never touches the user's files.
            #expect(Self.snapshot(instance, "Done") == doneBefore)
            #expect(Self.snapshot(instance, "Failed") == failedBefore)
            // The freed pages went back to the filesystem (incremental vacuum), not only to SQLite's free list.
            sizes.append(Self.databaseBytes(instance))
            #expect(sizes[sizes.count - 1] < unpruned / 2, "\(unpruned) bytes before the prune, \(sizes) after")
        }
        instance.stopDaemon()
        let first = Double(sizes[0])
        for size in sizes.dropFirst() {
            #expect(abs(Double(size) - first) <= first * 0.25, "database sizes after each round's prune: \(sizes)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func showSaysTheLogWasPruned() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.worker, extra: Self.retention(jobs: "90d", logs: "1s")))
        try instance.drop("a.txt")
        let sweep = try Self.run(instance, ["sweep", "--mode", "ingest"])
        #expect(sweep.status == 0, "\(sweep.stderr)")
        let logPath = try #require(((try instance.json(["show", "a.txt"]) as? [String: Any])?["attempts"] as? [[String: Any]])?
            .first?["log_path"] as? String)
        #expect(FileManager.default.fileExists(atPath: logPath))
        try waitUntil("the log is older than the retention", timeout: 20) {
            try Self.run(instance, ["sweep", "--mode", "prune", "--dry-run"]).stdout.contains("1 log files")
        }
        let prune = try Self.run(instance, ["sweep", "--mode", "all"])
        #expect(prune.stdout.contains("prune: deleted 0 jobs"), "\(prune.stdout)")
        #expect(!FileManager.default.fileExists(atPath: logPath))
        let show = try Self.run(instance, ["show", "a.txt"])
        #expect(show.status == 0)
        #expect(show.stdout.contains("log: pruned"), "\(show.stdout)")
        let attempt = try #require(((try instance.json(["show", "a.txt"]) as? [String: Any])?["attempts"] as? [[String: Any]])?.first)
        #expect(attempt["log_pruned"] as? Bool == true)
        #expect(attempt["log_path"] is NSNull)
        #expect(instance.count(in: "Done") == 1)
    }

    /// A 10 s task runs two slots and then once by `task run`, so that only its highest slot keeps the second
    /// slot's row. The daemon stops, the first slot's run is pruned, and the daemon starts again, usually
    /// within the second slot's interval, where a catch-up that lost track of the slot would run it again.
    /// The worker records when it started; every scheduled run must fall in a slot of its own.
    @Test(.timeLimit(.minutes(2)))
    func aPrunedTaskSlotNeverRunsAgain() throws {
        let interval = 10_000
        let instance = try TestInstance(config: """
            [[task]]
            name = "tick"
            every = "10s"
            catch_up = "once"
            command = ["/bin/sh", "-c", 'date +%s%3N | tee -a ../runs.log']

            [retention]
            jobs = "1s"
            logs = "1s"
            """)
        try instance.startDaemon()
        try instance.waitUntil("two slots ran", timeout: 30) { instance.lines(of: "runs.log").count == 2 }
        let manual = try Self.run(instance, ["task", "run", "tick"])
        #expect(manual.status == 0, "\(manual.stderr)")
        try instance.waitUntil("the manual run ran", timeout: 10) { instance.lines(of: "runs.log").count == 3 }
        instance.stopDaemon()
        // Each run wrote a log; once the last one is older than the retention, so are all three runs.
        try waitUntil("every run is older than the retention", timeout: 20) {
            try Self.run(instance, ["sweep", "--mode", "prune", "--dry-run"]).stdout.contains("3 log files")
        }
        let prune = try Self.run(instance, ["sweep", "--mode", "prune"])
        // The first slot's run goes; the second slot's (its highest slot) and the manual one (its latest) stay.
        #expect(prune.stdout.contains("deleted 1 jobs"), "\(prune.stdout)")
        try instance.startDaemon()
        try instance.waitUntil("a third slot ran", timeout: 30) { instance.lines(of: "runs.log").count >= 4 }
        instance.stopDaemon()
        var runs = instance.lines(of: "runs.log")
        runs.remove(at: 2)  // The manual run, in the second slot's interval by design.
        let slots = runs.compactMap { Int($0) }.map { $0 / interval }
        #expect(slots.count == 3)
        #expect(Set(slots).count == slots.count, "a slot ran twice: \(instance.lines(of: "runs.log"))\n\(instance.log)")
    }

    // MARK: Helpers

    /// A CLI run that is killed if it has not finished within `timeout` seconds.
    static func run(_ instance: TestInstance, _ arguments: [String], timeout: Double = 120) throws -> TestInstance.Output {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var output: Result<TestInstance.Output, any Error>?
        Thread.detachNewThread {
            output = Result { try instance.run(arguments) }
            done.signal()
        }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            throw TimedOut(description: "orchestrator \(arguments.joined(separator: " ")) ran longer than \(timeout)s")
        }
        return try #require(output).get()
    }

    static func logFiles(_ instance: TestInstance) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: instance.path(".orchestrator/logs"))) ?? [])
            .filter { $0.hasPrefix("job-") }.count
    }

    /// Name, size and modification time of each file in a folder.
    static func snapshot(_ instance: TestInstance, _ folder: String) -> [String: [Int64]] {
        var result: [String: [Int64]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: instance.path(folder))) ?? [] {
            var info = stat()
            guard stat(instance.path("\(folder)/\(name)"), &info) == 0 else { continue }
            result[name] = [Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_ino)]
        }
        return result
    }

    /// The database file and its WAL.
    static func databaseBytes(_ instance: TestInstance) -> Int64 {
        ["", "-wal"].reduce(0) { total, suffix in
            var info = stat()
            guard stat(instance.path(".orchestrator/orchestrator.sqlite" + suffix), &info) == 0 else { return total }
            return total + Int64(info.st_size)
        }
    }
}
