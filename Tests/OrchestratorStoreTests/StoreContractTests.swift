import Foundation
import OrchestratorCore
import OrchestratorPostgres
import OrchestratorPostgresStore
import GRDB
import Testing

@testable import OrchestratorStore

/// A value used from one test at a time (a connection is not Sendable).
final class LockedBox<Value>: @unchecked Sendable {  // `value` is only used by the test that made it
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// An engine the contract runs against: a fresh, empty ledger per test, removed by `cleanUp`; `another` opens one
/// more handle on the same ledger (a second daemon, or a command beside the daemon).
struct StoreEngine: CustomTestStringConvertible, Sendable {
    struct Opened {
        let store: any Store
        let another: @Sendable () throws -> any Store
        let cleanUp: @Sendable () -> Void
        /// Runs a query whose one column is an integer, straight on the engine (what the protocol does not offer:
        /// counting a table's rows, listing its ids).
        let integers: @Sendable (String) throws -> [Int64]

        func count(_ table: String) throws -> Int { Int(try integers("SELECT COUNT(*) FROM \(table)").first ?? 0) }
        func jobIDs() throws -> Set<Int64> { Set(try integers("SELECT id FROM job")) }
    }

    let name: String
    let open: @Sendable () throws -> Opened

    var testDescription: String { name }

    static let sqlite = StoreEngine(name: "sqlite") {
        let directory = NSTemporaryDirectory() + "orch-contract-\(UUID().uuidString.prefix(8))"
        let store = try SQLiteStore(directory: directory)
        return Opened(
            store: store, another: { try SQLiteStore(directory: directory) },
            cleanUp: { try? FileManager.default.removeItem(atPath: directory) },
            integers: { sql in try store.pool.read { try Int64.fetchAll($0, sql: sql) } })
    }

    /// A schema of its own in the test server's database (`$ORCH_TEST_POSTGRES_URL`, set by scripts/test), dropped
    /// afterwards. Under `CI=true` a missing server fails the tests instead of leaving the engine out.
    static let postgres = StoreEngine(name: "postgres") {
        guard let url = ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw PostgresError(kind: .client, message: "CI=true but ORCH_TEST_POSTGRES_URL is unset: the CI run has no PostgreSQL")
        }
        let schema = "orch_contract_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let store = try PostgresStore(url: url, schema: schema)
        let connection = LockedBox(try PostgresConnection(url: url))
        _ = try connection.value.execute("SET search_path TO \"\(schema)\"")
        return Opened(
            store: store, another: { try PostgresStore(url: url, schema: schema) },
            cleanUp: { _ = try? PostgresConnection(url: url).execute("DROP SCHEMA \"\(schema)\" CASCADE") },
            integers: { sql in try connection.value.execute(sql).rows.compactMap { try $0[0].int64() } })
    }

    /// Every engine: the contract below is what the dispatcher and the commands rely on, whichever keeps the ledger.
    static let all: [StoreEngine] = {
        let environment = ProcessInfo.processInfo.environment
        let server = !(environment["ORCH_TEST_POSTGRES_URL"] ?? "").isEmpty || environment["CI"] == "true"
        return server ? [.sqlite, .postgres] : [.sqlite]
    }()
}

private func path(_ text: String) -> RelativePath { RelativePath(Array(text.utf8)) }

/// What every store engine must do, as the dispatcher and the commands use it (see StoreProtocol.swift).
@Suite struct StoreContractTests {
    private func withStore(_ engine: StoreEngine, _ body: (any Store) throws -> Void) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        try body(opened.store)
    }

    @Test(arguments: StoreEngine.all)
    func aJobReadsBackAsWritten(engine: StoreEngine) throws {
        try withStore(engine) { store in
            // Names are bytes: not UTF-8, a newline, and the largest identity values survive the round trip.
            let name = RelativePath([0x66, 0xFF, 0x0A, 0x2F, 0x61])
            let id = try store.write {
                try $0.insertJob(
                    kind: .file, name: name, handler: "convert", state: .queued, priority: 7, maxAttempts: 4,
                    detail: "arrived", claim: (device: UInt64.max, inode: 1 << 63), at: 1000)
            }
            let job = try #require(try store.read { try $0.job(id: id) })
            #expect(job.kind == .file && job.name == name && job.handler == "convert" && job.state == .queued)
            #expect(job.priority == 7 && job.maxAttempts == 4 && job.attempts == 0)
            #expect(job.claimDevice == UInt64.max && job.claimInode == 1 << 63)
            #expect(job.createdAt == 1000 && job.updatedAt == 1000 && job.finishedAt == nil && job.finalPath == nil)
            let transitions = try store.read { try $0.transitions(jobID: id) }
            #expect(transitions.count == 1)
            #expect(transitions.first?.from == nil && transitions.first?.to == "queued" && transitions.first?.detail == "arrived")
            #expect(try store.read { try $0.latestJob(kind: .file, name: name) }?.id == id)
            #expect(try store.read { try $0.job(id: id + 1000) } == nil)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aNameHasOneLiveFileJobAtATime(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let first = try store.write {
                try $0.insertJob(kind: .file, name: path("a.txt"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
            }
            #expect(throws: (any Error).self) {
                try store.write {
                    try $0.insertJob(kind: .file, name: path("a.txt"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 2)
                }
            }
            try store.write { try $0.setState(jobID: first, from: .queued, to: .done, at: 3) }
            let second = try store.write {
                try $0.insertJob(kind: .file, name: path("a.txt"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 4)
            }
            #expect(second != first)
            #expect(try store.read { try $0.latestJob(kind: .file, name: path("a.txt")) }?.id == second)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aFailedWriteLeavesNothingBehind(engine: StoreEngine) throws {
        struct Abandon: Error {}
        try withStore(engine) { store in
            #expect(throws: Abandon.self) {
                try store.write { (transaction: any StoreTransaction) throws -> Void in
                    let id = try transaction.insertJob(
                        kind: .file, name: path("x"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
                    // Reads inside the transaction see its own writes.
                    #expect(try transaction.reader.job(id: id)?.state == .queued)
                    _ = try transaction.insertEvent(name: "e", source: "test", at: 1)
                    throw Abandon()
                }
            }
            let counts = try store.read { try $0.counts() }
            let events = try store.read { try $0.pendingEvents() }
            #expect(counts.byState.isEmpty && events.isEmpty)
        }
    }

    @Test(arguments: StoreEngine.all)
    func stateChangesKeepWhatTheyDoNotName(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let id = try store.write {
                try $0.insertJob(kind: .file, name: path("f"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
            }
            try store.write { try $0.setState(jobID: id, from: .queued, to: .running, attempts: 1, at: 2) }
            try store.write {
                try $0.setState(jobID: id, from: .running, to: .retryWait, notBefore: 60, reason: "exit 1", at: 3)
            }
            var job = try #require(try store.read { try $0.job(id: id) })
            #expect(job.state == .retryWait && job.attempts == 1 && job.notBefore == 60 && job.reason == "exit 1")
            #expect(job.updatedAt == 3 && job.finishedAt == nil)
            try store.write { try $0.setState(jobID: id, from: .retryWait, to: .queued, at: 60) }
            job = try #require(try store.read { try $0.job(id: id) })
            // The reason stays (COALESCE); a state without a not-before clears it.
            #expect(job.state == .queued && job.reason == "exit 1" && job.notBefore == nil)
            try store.write { try $0.setState(jobID: id, from: .queued, to: .failed, attempts: 3, reason: "gave up", at: 70) }
            job = try #require(try store.read { try $0.job(id: id) })
            #expect(job.state == .failed && job.attempts == 3 && job.finishedAt == 70 && job.reason == "gave up")
            let steps = try store.read { try $0.transitions(jobID: id) }.map { "\($0.from ?? "-")>\($0.to)" }
            #expect(steps == ["->queued", "queued>running", "running>retry_wait", "retry_wait>queued", "queued>failed"])
        }
    }

    @Test(arguments: StoreEngine.all)
    func finishedFilesAreFoundUntilMoved(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let id = try store.write {
                try $0.insertJob(kind: .file, name: path("d/f"), handler: "h", state: .done, priority: 5, maxAttempts: 3, at: 1)
            }
            #expect(try store.read { try $0.job(id: id) }?.finishedAt == 1)
            #expect(try store.read { try $0.unmovedFinishedJobs() }.map(\.id) == [id])
            try store.write { try $0.setFinalPath(jobID: id, path("d/f (2)")) }
            #expect(try store.read { try $0.unmovedFinishedJobs() }.isEmpty)
            #expect(try store.read { try $0.latestJob(finalPath: path("d/f (2)")) }?.id == id)
            #expect(try store.read { try $0.latestJob(finalPath: path("d/f")) } == nil)
        }
    }

    @Test(arguments: StoreEngine.all)
    func attemptsRecordTheirProcessAndResult(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let job = try store.write {
                try $0.insertJob(kind: .file, name: path("f"), handler: "h", state: .running, priority: 5, maxAttempts: 3, at: 1)
            }
            let log: [UInt8] = Array("/state/logs/job-1-attempt-1.log".utf8) + [0xFE]
            let attempt = try store.write { transaction in
                let attempt = try transaction.startAttempt(jobID: job, number: 1, logPath: log, at: 10)
                try transaction.setAttemptProcess(attemptID: attempt, pid: 4242, startTime: UInt64.max)
                return attempt
            }
            #expect(try store.read { try $0.runningAttempts() }.map(\.id) == [attempt])
            let running = try #require(try store.read { try $0.runningAttempt(jobID: job) })
            #expect(running.pid == 4242 && running.startTime == UInt64.max && running.logPath == log && running.outcome == .running)
            let tail: [UInt8] = [0x00, 0xFF, 0x0A]
            try store.write {
                try $0.finishAttempt(
                    attemptID: attempt,
                    AttemptResult(
                        outcome: .failed, exitCode: 3, timedOut: true, userCPU: 0.25, systemCPU: 0.5, maxRSSKiB: 2048,
                        stderrTail: tail, reason: "exit 3"),
                    at: 12.5)
            }
            let ended = try #require(try store.read { try $0.attempts(jobID: job) }.first)
            #expect(ended.outcome == .failed && ended.exitCode == 3 && ended.signal == nil && ended.timedOut)
            #expect(ended.userCPU == 0.25 && ended.systemCPU == 0.5 && ended.maxRSSKiB == 2048 && ended.stderrTail == tail)
            #expect(ended.startedAt == 10 && ended.endedAt == 12.5 && ended.reason == "exit 3")
            #expect(try store.read { try $0.runningAttempts() }.isEmpty)
            #expect(try store.read { try $0.runningAttempt(jobID: job) } == nil)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aRunningAttemptIsEndedByItsJob(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let job = try store.write {
                try $0.insertJob(kind: .file, name: path("f"), handler: "h", state: .running, priority: 5, maxAttempts: 3, at: 1)
            }
            _ = try store.write { try $0.startAttempt(jobID: job, number: 1, logPath: [], at: 1) }
            try store.write {
                try $0.finishRunningAttempt(jobID: job, AttemptResult(outcome: .interrupted, signal: 15, reason: "stopped"), at: 2)
            }
            let attempt = try #require(try store.read { try $0.attempts(jobID: job) }.first)
            #expect(attempt.outcome == .interrupted && attempt.signal == 15 && attempt.endedAt == 2)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aTaskSlotOrEventQueuesOneRun(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let run = try store.write {
                try $0.insertTaskRun(task: "backup", priority: 5, maxAttempts: 1, cause: .schedule, slot: 60_000, detail: "slot", at: 60)
            }
            #expect(run != nil)
            let again = try store.write {
                try $0.insertTaskRun(task: "backup", priority: 5, maxAttempts: 1, cause: .catchUp, slot: 60_000, detail: "slot", at: 61)
            }
            #expect(again == nil)
            // Another task's same slot, and a run without slot or event, are their own.
            #expect(try store.write {
                try $0.insertTaskRun(task: "report", priority: 5, maxAttempts: 1, cause: .schedule, slot: 60_000, detail: "slot", at: 60)
            } != nil)
            #expect(try store.write { try $0.insertTaskRun(task: "backup", priority: 11, maxAttempts: 1, cause: .manual, detail: "run", at: 62) } != nil)
            #expect(try store.write { try $0.insertTaskRun(task: "backup", priority: 11, maxAttempts: 1, cause: .manual, detail: "run", at: 63) } != nil)
            let event = try store.write { try $0.insertEvent(name: "uploaded", source: "cli", at: 70) }
            #expect(try store.write {
                try $0.insertTaskRun(task: "backup", priority: 5, maxAttempts: 1, cause: .event, eventID: event, detail: "event", at: 70)
            } != nil)
            #expect(try store.write {
                try $0.insertTaskRun(task: "backup", priority: 5, maxAttempts: 1, cause: .event, eventID: event, detail: "event", at: 71)
            } == nil)
            #expect(try store.read { try $0.lastScheduledSlot(task: "backup") } == 60_000)
            #expect(try store.read { try $0.lastScheduledSlot(task: "nothing") } == nil)
            let job = try #require(try store.read { try $0.job(id: run!) })
            #expect(job.kind == .task && job.name == path("backup") && job.slotMs == 60_000 && job.cause == "schedule")
        }
    }

    @Test(arguments: StoreEngine.all)
    func theLatestTaskRunsAreWhatTheSchedulerReads(engine: StoreEngine) throws {
        try withStore(engine) { store in
            func finishedRun(_ task: String, slot: Int64, start: UnixTime, end: UnixTime, succeeded: Bool) throws -> Int64 {
                try store.write { transaction in
                    let id = try #require(try transaction.insertTaskRun(
                        task: task, priority: 5, maxAttempts: 1, cause: .schedule, slot: slot, detail: "slot", at: start))
                    try transaction.setState(jobID: id, from: .queued, to: .running, attempts: 1, at: start)
                    let attempt = try transaction.startAttempt(jobID: id, number: 1, logPath: [], at: start)
                    try transaction.setAttemptProcess(attemptID: attempt, pid: 1, startTime: nil)
                    try transaction.finishAttempt(attemptID: attempt, AttemptResult(outcome: succeeded ? .succeeded : .failed), at: end)
                    try transaction.setState(jobID: id, from: .running, to: succeeded ? .done : .failed, reason: succeeded ? nil : "exit 1", at: end)
                    return id
                }
            }
            _ = try finishedRun("a", slot: 1, start: 10, end: 12, succeeded: true)
            let latest = try finishedRun("a", slot: 2, start: 20, end: 24, succeeded: false)
            let other = try finishedRun("b", slot: 1, start: 15, end: 16, succeeded: true)
            let runs = try store.read { try $0.latestTaskRuns() }
            #expect(runs["a"]?.jobID == latest && runs["a"]?.state == .failed && runs["a"]?.reason == "exit 1")
            #expect(runs["a"]?.startedAt == 20 && runs["a"]?.finishedAt == 24 && runs["a"]?.couldNotStart == false)
            #expect(runs["b"]?.jobID == other && runs.count == 2)
            #expect(try store.read { try $0.lastTaskStart(task: "a") } == 20)
            let statistics = try store.read { try $0.statistics(kind: .task, owner: "a") }
            #expect(statistics.executions == 2 && statistics.failures == 1 && statistics.averageSeconds == 3)
        }
    }

    /// The latest start is read from the task's live runs and those that ended after the latest ended run began:
    /// an older run's retry that starts after a newer run, a run still going, a newest ended run that never started.
    @Test(arguments: StoreEngine.all)
    func aTasksLastStartIsItsLatestAttemptWhicheverRunItBelongsTo(engine: StoreEngine) throws {
        try withStore(engine) { store in
            func queued(_ slot: Int64, at time: UnixTime) throws -> Int64 {
                try store.write { transaction in
                    try #require(try transaction.insertTaskRun(
                        task: "t", priority: 5, maxAttempts: 2, cause: .schedule, slot: slot, detail: "slot", at: time))
                }
            }
            func attempt(_ job: Int64, _ number: Int, start: UnixTime, end: UnixTime?, endsJob state: JobState?) throws {
                try store.write { transaction in
                    let attempt = try transaction.startAttempt(jobID: job, number: number, logPath: [], at: start)
                    if let end { try transaction.finishAttempt(attemptID: attempt, AttemptResult(outcome: .failed), at: end) }
                    if let state, let end { try transaction.setState(jobID: job, from: .running, to: state, at: end) }
                }
            }
            let older = try queued(1, at: 5)
            try attempt(older, 1, start: 10, end: 11, endsJob: nil)  // Fails; waits to retry.
            let newer = try queued(2, at: 19)
            try attempt(newer, 1, start: 20, end: 25, endsJob: .done)
            #expect(try store.read { try $0.lastTaskStart(task: "t") } == 20)
            try attempt(older, 2, start: 30, end: 35, endsJob: .failed)  // The older run's retry, after the newer run.
            #expect(try store.read { try $0.lastTaskStart(task: "t") } == 30)
            let live = try queued(3, at: 39)
            try attempt(live, 1, start: 40, end: nil, endsJob: nil)
            #expect(try store.read { try $0.lastTaskStart(task: "t") } == 40)
            let neverStarted = try queued(4, at: 41)
            try store.write { try $0.setState(jobID: neverStarted, from: .queued, to: .failed, reason: "cancelled", at: 50) }
            #expect(try store.read { try $0.lastTaskStart(task: "t") } == 40)
            #expect(try store.read { try $0.lastTaskStart(task: "other") } == nil)
        }
    }

    /// Counts, average and p95 as the database computes them: the first duration 95% of the runs do not exceed.
    @Test(arguments: StoreEngine.all)
    func runStatisticsAreCountedByTheStore(engine: StoreEngine) throws {
        try withStore(engine) { store in
            try store.write { transaction in
                for seconds in 1...40 {
                    let id = try #require(try transaction.insertTaskRun(
                        task: "t", priority: 5, maxAttempts: 1, cause: .schedule, slot: Int64(seconds), detail: "slot", at: 100))
                    let failed = seconds % 10 == 0
                    try transaction.recordStartedAttempt(
                        jobID: id, number: 1, logPath: [], pid: 1, startTime: nil, at: 100,
                        ended: (AttemptResult(outcome: failed ? .failed : .succeeded), 100 + Double(seconds)))
                    try transaction.setState(jobID: id, from: .queued, to: failed ? .failed : .done, attempts: 1, at: 100 + Double(seconds))
                }
            }
            let statistics = try store.read { try $0.statistics(kind: .task, owner: "t") }
            #expect(statistics == RunStatistics(executions: 40, failures: 4, averageSeconds: 20.5, p95Seconds: 38))
            #expect(try store.read { try $0.statistics(kind: .file, owner: "nobody") } == RunStatistics(executions: 0, failures: 0))
            #expect(RunStatistics.p95Rank(of: 1) == 0 && RunStatistics.p95Rank(of: 20) == 18 && RunStatistics.p95Rank(of: 0) == nil)
        }
    }

    @Test(arguments: StoreEngine.all)
    func anUploadIsQueuedOncePerDoneFile(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let first = try store.write { try $0.insertUpload(path: path("r.pdf"), handler: "h", maxAttempts: 3, at: 1) }
            #expect(first != nil)
            #expect(try store.write { try $0.insertUpload(path: path("r.pdf"), handler: "h", maxAttempts: 3, at: 2) } == nil)
            #expect(try store.read { try $0.uploadCounts() } == (pending: 1, ok: 0, failed: 0))
            try store.write { try $0.setState(jobID: first!, from: .queued, to: .done, at: 3) }
            #expect(try store.read { try $0.uploadCounts() } == (pending: 0, ok: 1, failed: 0))
            #expect(try store.read { try $0.latestUpload(path: path("r.pdf")) }?.id == first)
            #expect(try store.write { try $0.insertUpload(path: path("r.pdf"), handler: "h", maxAttempts: 3, at: 4) } != nil)
        }
    }

    @Test(arguments: StoreEngine.all)
    func eventsAndRequestsWaitUntilHandled(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let event = try store.write { transaction in
                let id = try transaction.insertEvent(name: "ingested", source: "api", at: 5)
                try transaction.setEventBodyPath(id: id, Array("/state/events/1".utf8))
                return id
            }
            #expect(try store.read { try $0.pendingEvents() }.map(\.id) == [event])
            #expect(try store.read { try $0.eventName(id: event) } == "ingested")
            #expect(try store.read { try $0.eventBodyPath(id: event) } == Array("/state/events/1".utf8))
            try store.write { try $0.markEventHandled(id: event, at: 6) }
            #expect(try store.read { try $0.pendingEvents() }.isEmpty)

            let plain = try store.write { try $0.insertRequest(kind: "sweep", target: "ingest", at: 7) }
            let asked = try store.write { try $0.insertRequest(kind: "cancel", target: "12", at: 8) }
            #expect(try store.read { try $0.pendingRequests() }.map(\.id) == [plain, asked])
            #expect(try store.read { try $0.requestAnswer(id: asked) } == RequestAnswer(handled: false, result: nil))
            try store.write { transaction in
                try transaction.markRequestHandled(id: plain, at: 9)
                try transaction.answerRequest(id: asked, result: "cancelled", at: 9)
            }
            #expect(try store.read { try $0.pendingRequests() }.isEmpty)
            #expect(try store.read { try $0.requestAnswer(id: asked) } == RequestAnswer(handled: true, result: "cancelled"))
            // Several daemons read each request; only the first mark counts, so one of them handles it.
            #expect(try !store.write { try $0.markRequestHandled(id: plain, at: 10) })
            #expect(try store.read { try $0.requestAnswer(id: asked + 100) } == nil)
        }
    }

    @Test(arguments: StoreEngine.all)
    func taskStateKeepsItsFirstBaselineAndLatestSettings(engine: StoreEngine) throws {
        try withStore(engine) { store in
            #expect(try store.write { try $0.ensureTaskBaseline(task: "t", now: 1_000) } == 1_000)
            #expect(try store.write { try $0.ensureTaskBaseline(task: "t", now: 9_000) } == 1_000)
            try store.write { transaction in
                try transaction.setTaskEnabled(task: "t", false)
                try transaction.setTaskEnabled(task: "u", true)
                try transaction.setTaskWaiting(task: "t", for: ["a", "b"])
            }
            #expect(try store.read { try $0.taskEnabledOverrides() } == ["t": false, "u": true])
            #expect(try store.read { try $0.taskWaits() } == ["t": ["a", "b"]])
            try store.write { try $0.setTaskWaiting(task: "t", for: []) }
            #expect(try store.read { try $0.taskWaits() }.isEmpty)
            // The settings did not reset the baseline.
            #expect(try store.write { try $0.ensureTaskBaseline(task: "t", now: 9_000) } == 1_000)
        }
    }

    @Test(arguments: StoreEngine.all)
    func notesBreakersAndPausesAreSetAndCleared(engine: StoreEngine) throws {
        try withStore(engine) { store in
            try store.write { transaction in
                try transaction.setDaemonNote("sweep.ingest", "3 files", at: 1)
                try transaction.setDaemonNote("sweep.retry", "none due", at: 2)
                try transaction.setDaemonNote("admission", "waiting for memory", at: 3)
                try transaction.setBreaker(node: "n", owner: "handler:h", state: "open", consecutiveFailures: 5, openUntil: 90, at: 4)
                try transaction.setHandlerPaused("h", true, at: 5)
                try transaction.setHandlerPaused("g", true, at: 5)
            }
            #expect(try store.read { try $0.daemonNotes(prefix: "sweep.") }.map(\.key).sorted() == ["sweep.ingest", "sweep.retry"])
            #expect(try store.read { try $0.daemonNote("admission") } == "waiting for memory")
            let breaker = try #require(try store.read { try $0.breakers() }.first)
            #expect(breaker.owner == "handler:h" && breaker.state == "open" && breaker.consecutiveFailures == 5 && breaker.openUntil == 90)
            #expect(try store.read { try $0.pausedHandlers() } == ["h", "g"])
            try store.write { transaction in
                try transaction.setDaemonNote("admission", nil, at: 6)
                try transaction.setBreaker(node: "n", owner: "handler:h", state: "closed", consecutiveFailures: 0, openUntil: nil, at: 7)
                try transaction.setHandlerPaused("g", false, at: 8)
            }
            #expect(try store.read { try $0.daemonNote("admission") } == nil)
            #expect(try store.read { try $0.breakers() }.map(\.state) == ["closed"])
            #expect(try store.read { try $0.pausedHandlers() } == ["h"])
            try store.write { try $0.clearBreakers(node: nil) }
            #expect(try store.read { try $0.breakers() }.isEmpty)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aPrioritySetByHandIsKeptAndNoted(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let id = try store.write {
                try $0.insertJob(kind: .file, name: path("f"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
            }
            #expect(try store.read { try $0.job(id: id) }?.prioritySetByHand == false)
            try store.write { try $0.setPriority(jobID: id, state: .queued, priority: 9, at: 2) }
            let job = try #require(try store.read { try $0.job(id: id) })
            #expect(job.priority == 9 && job.prioritySetByHand && job.state == .queued)
            #expect(try store.read { try $0.transitions(jobID: id) }.last?.detail == "priority set to 9")
        }
    }

    @Test(arguments: StoreEngine.all)
    func jobListsAreFilteredAndPagedNewestFirst(engine: StoreEngine) throws {
        try withStore(engine) { store in
            var ids: [Int64] = []
            try store.write { transaction in
                for index in 0..<5 {
                    ids.append(try transaction.insertJob(
                        kind: .file, name: path("f\(index)"), handler: index % 2 == 0 ? "even" : "odd",
                        state: index < 2 ? .done : .queued, priority: 5, maxAttempts: 3, at: UnixTime(index)))
                }
                ids.append(try #require(try transaction.insertTaskRun(
                    task: "t", priority: 5, maxAttempts: 1, cause: .manual, detail: "run", at: 10)))
            }
            #expect(try store.read { try $0.jobs(JobFilter(), limit: 3) }.map(\.id) == Array(ids.reversed().prefix(3)))
            #expect(try store.read { try $0.jobs(JobFilter(beforeID: ids[3]), limit: 10) }.map(\.id) == [ids[2], ids[1], ids[0]])
            #expect(try store.read { try $0.jobs(JobFilter(handler: "even"), limit: 10) }.map(\.id) == [ids[4], ids[2], ids[0]])
            #expect(try store.read { try $0.jobs(JobFilter(state: .done), limit: 10) }.map(\.id) == [ids[1], ids[0]])
            #expect(try store.read { try $0.jobs(JobFilter(task: "t"), limit: 10) }.map(\.id) == [ids[5]])
            #expect(try store.read { try $0.jobs(JobFilter(since: 3), limit: 10) }.map(\.id) == [ids[5], ids[4], ids[3]])
            #expect(try store.read { try $0.jobs(inStates: [.queued]) }.map(\.id) == [ids[2], ids[3], ids[4], ids[5]])
            #expect(try store.read { try $0.counts() }.byState == [.done: 2, .queued: 4])
        }
    }

    @Test(arguments: StoreEngine.all)
    func historyIsNewestFirstAndCanKeepOnlyFailures(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let job = try store.write {
                try $0.insertJob(kind: .file, name: path("f"), handler: "h", state: .running, priority: 5, maxAttempts: 3, at: 1)
            }
            try store.write { transaction in
                for (number, outcome) in [(1, AttemptOutcome.failed), (2, .succeeded)] {
                    let attempt = try transaction.startAttempt(jobID: job, number: number, logPath: [], at: UnixTime(number * 10))
                    try transaction.finishAttempt(attemptID: attempt, AttemptResult(outcome: outcome), at: UnixTime(number * 10 + 1))
                }
                _ = try transaction.startAttempt(jobID: job, number: 3, logPath: [], at: 40)
            }
            #expect(try store.read { try $0.history(limit: 10, failedOnly: false) }.map(\.attempt.number) == [2, 1])
            #expect(try store.read { try $0.history(limit: 10, failedOnly: true) }.map(\.attempt.number) == [1])
            #expect(try store.read { try $0.history(limit: 1, failedOnly: false) }.first?.job.id == job)
            // By when each ended, not when it started: a long run started first and ended last comes first.
            let long = try store.write { transaction in
                let long = try transaction.insertJob(kind: .file, name: path("long"), handler: "h", state: .running, priority: 5, maxAttempts: 3, at: 1)
                let attempt = try transaction.startAttempt(jobID: long, number: 1, logPath: [], at: 5)
                try transaction.finishAttempt(attemptID: attempt, AttemptResult(outcome: .cancelled), at: 50)
                return long
            }
            #expect(try store.read { try $0.history(limit: 10, failedOnly: false) }.map(\.job.id) == [long, job, job])
            #expect(try store.read { try $0.history(limit: 10, failedOnly: true) }.map(\.job.id) == [long, job])
        }
    }

    /// `history --failed` must show every file in Failed/ and why: those that failed without an attempt (no handler,
    /// cancelled while waiting) come from here, and a cancelled attempt counts among the failures.
    @Test(arguments: StoreEngine.all)
    func failuresWithoutAnAttemptAndCancelledAttemptsAreFound(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let (neverRan, ran, cancelled) = try store.write { transaction in
                let neverRan = try transaction.insertJob(
                    kind: .file, name: path("n"), handler: nil, state: .failed, priority: 5, maxAttempts: 3, reason: "no handler", at: 5)
                let ran = try transaction.insertJob(kind: .file, name: path("r"), handler: "h", state: .running, priority: 5, maxAttempts: 3, at: 1)
                let attempt = try transaction.startAttempt(jobID: ran, number: 1, logPath: [], at: 2)
                try transaction.finishAttempt(attemptID: attempt, AttemptResult(outcome: .failed, exitCode: 1), at: 3)
                let cancelled = try transaction.insertJob(kind: .file, name: path("c"), handler: "h", state: .running, priority: 5, maxAttempts: 3, at: 1)
                let cancelledAttempt = try transaction.startAttempt(jobID: cancelled, number: 1, logPath: [], at: 6)
                try transaction.finishAttempt(attemptID: cancelledAttempt, AttemptResult(outcome: .cancelled, reason: "cancelled"), at: 7)
                return (neverRan, ran, cancelled)
            }
            // Interrupted by a stop, then failed at the next start (its handler removed): no failed attempt says why.
            let interrupted = try store.write { transaction in
                let job = try transaction.insertJob(kind: .file, name: path("i"), handler: "gone", state: .running, priority: 5, maxAttempts: 3, at: 1)
                let attempt = try transaction.startAttempt(jobID: job, number: 1, logPath: [], at: 2)
                try transaction.finishAttempt(attemptID: attempt, AttemptResult(outcome: .interrupted), at: 3)
                try transaction.setState(jobID: job, from: .running, to: .failed, reason: "no handler", at: 4)
                return job
            }
            #expect(try store.read { try $0.failedWithoutFailedAttempt(limit: 10) }.map(\.id) == [neverRan, interrupted])
            #expect(try store.read { try $0.failedWithoutFailedAttempt(limit: 0) }.isEmpty)
            #expect(try store.read { try $0.history(limit: 10, failedOnly: true) }.map(\.job.id) == [cancelled, ran])
        }
    }

    /// A reload that hands a waiting job to another handler, or changes its budget: recorded for `show` and `tasks`.
    @Test(arguments: StoreEngine.all)
    func aJobsRunSettingsCanChange(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let id = try store.write { transaction in
                try transaction.insertJob(kind: .file, name: path("a"), handler: "old", state: .queued, priority: 5, maxAttempts: 3, at: 1)
            }
            try store.write { try $0.setRunSettings(jobID: id, handler: "new", maxAttempts: 1) }
            let renamed = try #require(try store.read { try $0.job(id: id) })
            #expect(renamed.handler == "new" && renamed.maxAttempts == 1)
            try store.write { try $0.setRunSettings(jobID: id, handler: nil, maxAttempts: 4) }
            let raised = try #require(try store.read { try $0.job(id: id) })
            #expect(raised.handler == "new" && raised.maxAttempts == 4, "no handler given: it keeps its own")
        }
    }

    /// A worker that ended before its start was committed: one row with its start and end, and the job's running
    /// state recorded as a transition only, its next state written by the same transaction.
    @Test(arguments: StoreEngine.all)
    func anAttemptStartedAndEndedInOneRowReadsAsOneStartedThenFinished(engine: StoreEngine) throws {
        try withStore(engine) { store in
            let result = AttemptResult(
                outcome: .failed, exitCode: 3, userCPU: 0.25, systemCPU: 0.5, maxRSSKiB: 1234, stderrTail: Array("oops\n".utf8),
                reason: "exit 3")
            let (drafted, plain) = try store.write { transaction in
                let drafted = try transaction.insertJob(kind: .file, name: path("d"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
                try transaction.recordStartedAttempt(
                    jobID: drafted, number: 1, logPath: Array("d.log".utf8), pid: 42, startTime: nil, at: 2, ended: (result, 3))
                try transaction.addTransition(jobID: drafted, from: .queued, to: .running, detail: "attempt 1", at: 2)
                try transaction.setState(jobID: drafted, from: .running, to: .failed, attempts: 1, reason: "exit 3", at: 3)
                let plain = try transaction.insertJob(kind: .file, name: path("p"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
                try transaction.recordStartedAttempt(
                    jobID: plain, number: 1, logPath: Array("p.log".utf8), pid: 43, startTime: 99, at: 2, ended: nil)
                try transaction.setState(jobID: plain, from: .queued, to: .running, detail: "attempt 1", at: 2)
                try transaction.finishRunningAttempt(jobID: plain, result, at: 3)
                try transaction.setState(jobID: plain, from: .running, to: .failed, attempts: 1, reason: "exit 3", at: 3)
                return (drafted, plain)
            }
            let one = try #require(try store.read { try $0.attempts(jobID: drafted) }.first)
            let two = try #require(try store.read { try $0.attempts(jobID: plain) }.first)
            #expect(one.outcome == .failed && one.startedAt == 2 && one.endedAt == 3 && one.pid == 42 && one.startTime == nil)
            #expect(one.exitCode == 3 && one.userCPU == 0.25 && one.systemCPU == 0.5 && one.maxRSSKiB == 1234)
            #expect(one.stderrTail == Array("oops\n".utf8) && one.reason == "exit 3" && one.logPath == Array("d.log".utf8))
            #expect(two.outcome == one.outcome && two.endedAt == one.endedAt && two.exitCode == one.exitCode && two.startTime == 99)
            #expect(try store.read { try $0.runningAttempts() }.isEmpty)
            let steps = try store.read { try $0.transitions(jobID: drafted) }.map { "\($0.from ?? "-")>\($0.to)" }
            #expect(steps == ["->queued", "queued>running", "running>failed"])
            #expect(steps == (try store.read { try $0.transitions(jobID: plain) }.map { "\($0.from ?? "-")>\($0.to)" }))
            let job = try #require(try store.read { try $0.job(id: drafted) })
            #expect(job.state == .failed && job.attempts == 1 && job.finishedAt == 3)
        }
    }
}
