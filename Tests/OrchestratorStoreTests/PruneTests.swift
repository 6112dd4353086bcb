import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorCron
import OrchestratorSchedule
import Testing
@testable import OrchestratorStore

/// A store in a fresh temporary directory, removed when the test ends.
final class TemporaryStore {
    let directory: String
    let store: SQLiteStore

    init() throws {
        directory = NSTemporaryDirectory() + "orch-store-\(UUID().uuidString.prefix(8))"
        store = try SQLiteStore(directory: directory)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

private func name(_ text: String) -> RelativePath { RelativePath(Array(text.utf8)) }

extension Store {
    /// A file job that ran once and finished at `at`; `moved`: its file reached Done/Failed.
    func finishedFile(_ file: String, at time: UnixTime, succeeded: Bool = true, moved: Bool = true) throws -> Int64 {
        try write { transaction in
            let id = try transaction.insertJob(
                kind: .file, name: name(file), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: time - 1)
            try transaction.setState(jobID: id, from: .queued, to: .running, attempts: 1, at: time - 1)
            let attempt = try transaction.startAttempt(jobID: id, number: 1, logPath: Array("/logs/job-\(id)-attempt-1.log".utf8), at: time - 1)
            try transaction.finishAttempt(attemptID: attempt, AttemptResult(outcome: succeeded ? .succeeded : .failed), at: time)
            try transaction.setState(jobID: id, from: .running, to: succeeded ? .done : .failed, at: time)
            if moved { try transaction.setFinalPath(jobID: id, name(file)) }
            return id
        }
    }

    /// A task run of `slot` that finished at `at`.
    func finishedTaskRun(_ task: String, slot: Int64?, cause: TaskCause = .schedule, eventID: Int64? = nil, at time: UnixTime) throws -> Int64 {
        try write { transaction in
            let id = try #require(try transaction.insertTaskRun(
                task: task, priority: 5, maxAttempts: 1, cause: cause, slot: slot, eventID: eventID, detail: "test", at: time - 1))
            try transaction.setState(jobID: id, from: .queued, to: .running, attempts: 1, at: time - 1)
            let attempt = try transaction.startAttempt(jobID: id, number: 1, logPath: [], at: time - 1)
            try transaction.finishAttempt(attemptID: attempt, AttemptResult(outcome: .succeeded), at: time)
            try transaction.setState(jobID: id, from: .running, to: .done, at: time)
            return id
        }
    }
}

/// The retention contract on every engine (what the prune sweep may delete and what it must keep), then SQLite's
/// own page reclaiming.
@Suite struct PruneTests {
    @Test(arguments: StoreEngine.all)
    func oldFinishedFileJobsGoWithTheirAttemptsAndTransitions(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        let old = try (0..<5).map { try store.finishedFile("old-\($0)", at: 1000 + Double($0)) }
        let oldFailed = try store.finishedFile("old-failed", at: 1010, succeeded: false)
        let recent = try store.finishedFile("recent", at: 5000)
        let counts = try store.prune(finishedBefore: 2000)
        #expect(counts.jobs == 6)
        #expect(counts.attempts == 6)
        #expect(counts.transitions == 6 * 3)
        #expect(try ledger.jobIDs() == [recent])
        #expect(try ledger.count("attempt") == 1)
        #expect(try ledger.count("transition") == 3)
        #expect(try store.read { try $0.job(id: old[0]) } == nil)
        #expect(try store.read { try $0.job(id: oldFailed) } == nil)
    }

    @Test(arguments: StoreEngine.all)
    func liveJobsAndFilesStillInTheProcessingAreaAreKept(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        let unmoved = try store.finishedFile("unmoved", at: 1000, moved: false)
        let queued = try store.write {
            try $0.insertJob(kind: .file, name: name("queued"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 900)
        }
        let retrying = try store.write { transaction in
            let id = try transaction.insertJob(
                kind: .file, name: name("retrying"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 900)
            try transaction.setState(jobID: id, from: .queued, to: .retryWait, attempts: 1, notBefore: 3000, at: 1000)
            return id
        }
        _ = try store.finishedFile("newest", at: 5000)
        let counts = try store.prune(finishedBefore: 2000)
        #expect(counts.jobs == 0)
        #expect(try ledger.jobIDs().isSuperset(of: [unmoved, queued, retrying]))
    }

    @Test(arguments: StoreEngine.all)
    func theNewestRowIsKeptSoThatNoIDIsEverReused(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        let ids = try (0..<3).map { try store.finishedFile("f\($0)", at: 1000 + Double($0)) }
        let oldEvent = try store.write { try $0.insertEvent(name: "e", source: "test", at: 1000) }
        let newestEvent = try store.write { try $0.insertEvent(name: "e", source: "test", at: 1000) }
        try store.write {
            try $0.markEventHandled(id: oldEvent, at: 1000)
            try $0.markEventHandled(id: newestEvent, at: 1000)
        }
        let counts = try store.prune(finishedBefore: 2000)
        #expect(counts.jobs == 2 && counts.events == 1)
        #expect(try ledger.jobIDs() == [ids[2]])
        let next = try store.finishedFile("next", at: 3000)
        #expect(next == ids[2] + 1)
        let nextEvent = try store.write { try $0.insertEvent(name: "e", source: "test", at: 3000) }
        #expect(nextEvent == newestEvent + 1)
    }

    @Test(arguments: StoreEngine.all)
    func deletesInBatchesUntilNothingOldIsLeft(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        for index in 0..<35 { _ = try store.finishedFile("f\(index)", at: 1000 + Double(index)) }
        var batches = 0
        let counts = try store.prune(finishedBefore: 2000, batchSize: 10, shouldContinue: {
            batches += 1
            return true
        })
        // 34 of 35 (the newest row stays): 10 + 10 + 10 + 4; then one round for events and requests.
        #expect(counts.jobs == 34)
        #expect(batches == 5)
        #expect(try ledger.count("job") == 1)
    }

    @Test(arguments: StoreEngine.all)
    func dryRunCountsWhatThePruneDeletes(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        for index in 0..<7 { _ = try store.finishedFile("f\(index)", at: 1000 + Double(index)) }
        _ = try store.finishedTaskRun("t", slot: 1_000_000, at: 1000)
        _ = try store.finishedTaskRun("t", slot: 2_000_000, at: 1001)
        _ = try store.finishedTaskRun("t", slot: 3_000_000, at: 1002)
        let request = try store.write { try $0.insertRequest(kind: "sweep", target: "all", at: 1000) }
        _ = try store.write { try $0.insertRequest(kind: "sweep", target: "all", at: 1000) }
        _ = try store.write { try $0.markRequestHandled(id: request, at: 1000) }
        let predicted = try store.read { try $0.pruneCounts(finishedBefore: 2000) }
        let deleted = try store.prune(finishedBefore: 2000)
        #expect(predicted == deleted)
        #expect(deleted.jobs == 9 && deleted.requests == 1)
    }

    // MARK: Tasks

    @Test(arguments: StoreEngine.all)
    func theRunsTheSchedulerReadsAreKept(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        // Slots in order, but the manual run finished last and the slot 4 run started last of the scheduled.
        for slot in 1...4 { _ = try store.finishedTaskRun("t", slot: Int64(slot) * 60_000, at: 1000 + Double(slot)) }
        let manual = try store.finishedTaskRun("t", slot: nil, cause: .manual, at: 1100)
        _ = try store.finishedTaskRun("other", slot: 60_000, at: 1000)
        let before = try store.read { reader in
            (try reader.lastScheduledSlot(task: "t"), try reader.latestTaskRuns(), try reader.lastTaskStart(task: "t"),
             try reader.lastScheduledSlot(task: "other"), try reader.lastTaskStart(task: "other"))
        }
        // The newest job overall is kept anyway; a later file job makes the test about the task rules.
        _ = try store.finishedFile("newest", at: 5000)
        _ = try store.prune(finishedBefore: 2000)
        let after = try store.read { reader in
            (try reader.lastScheduledSlot(task: "t"), try reader.latestTaskRuns(), try reader.lastTaskStart(task: "t"),
             try reader.lastScheduledSlot(task: "other"), try reader.lastTaskStart(task: "other"))
        }
        #expect(after.0 == before.0 && after.0 == 240_000)
        #expect(after.1 == before.1)
        #expect(after.1["t"]?.jobID == manual)
        #expect(after.2 == before.2)
        #expect(after.3 == before.3 && after.4 == before.4)
        // t: slots 1-3 went, slot 4 (highest slot) and the manual run (latest) stayed.
        #expect(try ledger.count("job") == 4)
    }

    @Test(arguments: StoreEngine.all)
    func aPrunedSlotIsNeverRunAgain(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        let minute: Int64 = 60_000
        let utc = try loadZone("UTC")
        let schedule = try #require(try SlotSchedule(trigger: .every(.seconds(60)), hostZone: utc))
        let baseline = 10 * minute
        for slot in 11...20 { _ = try store.finishedTaskRun("t", slot: Int64(slot) * minute, at: Double(slot) * 60 + 1) }
        // A `task run` after the last slot: the latest run, so only the slot rule keeps slot 20's row.
        _ = try store.finishedTaskRun("t", slot: nil, cause: .manual, at: 20 * 60 + 10)
        _ = try store.finishedFile("newest", at: 1_000_000)
        let nowMs = 20 * minute + 30_000
        let pruned = try store.prune(finishedBefore: 100_000)
        #expect(pruned.jobs == 9)
        // What the dispatcher's start does with catch_up = "once": nothing, the last slot already ran.
        let lastSlot = try store.read { try $0.lastScheduledSlot(task: "t") }
        #expect(schedule.latestSlot(after: lastSlot ?? baseline, atOrBefore: nowMs) == nil)
        // And a slot pruned long ago is in the past: the next one armed is after now.
        #expect(schedule.nextSlot(after: max(nowMs, lastSlot ?? nowMs)) == 21 * minute)
        // The key of the kept slot still refuses a second run of it.
        let again = try store.write {
            try $0.insertTaskRun(task: "t", priority: 5, maxAttempts: 1, cause: .catchUp, slot: 20 * minute, detail: "test", at: 2000)
        }
        #expect(again == nil)
    }

    @Test(arguments: StoreEngine.all)
    func taskRunsOfAnEventNotYetHandledAreKept(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        let pending = try store.write { try $0.insertEvent(name: "e", source: "test", at: 1000) }
        let handled = try store.write { try $0.insertEvent(name: "e", source: "test", at: 1000) }
        try store.write { try $0.markEventHandled(id: handled, at: 1000) }
        let ofPending = try store.finishedTaskRun("a", slot: nil, cause: .event, eventID: pending, at: 1001)
        _ = try store.finishedTaskRun("a", slot: nil, cause: .event, eventID: handled, at: 1002)
        _ = try store.finishedTaskRun("a", slot: nil, cause: .event, eventID: handled + 100, at: 1003)
        _ = try store.finishedFile("newest", at: 5000)
        _ = try store.prune(finishedBefore: 2000)
        // The run of the pending event, the latest run of a (event + 100), the newest job.
        #expect(try ledger.jobIDs().contains(ofPending))
        #expect(try ledger.count("job") == 3)
        #expect(try store.read { try $0.pendingEvents().map(\.id) } == [pending])
    }

    // MARK: Space

    /// On a full disk the write-ahead log keeps the space it took, and no write goes through until a checkpoint starts
    /// it over: a paused daemon hands it back before it tries its writes again.
    @Test func theLogsSpaceIsHandedBack() throws {
        let temp = try TemporaryStore()
        let store = temp.store
        try store.write { transaction in
            for index in 0..<500 {
                _ = try transaction.insertJob(
                    kind: .file, name: name("file-\(index)"), handler: "h", state: .done, priority: 5, maxAttempts: 3, at: 1000)
            }
        }
        let log = temp.directory + "/orchestrator.sqlite-wal"
        let size = { ((try? FileManager.default.attributesOfItem(atPath: log))?[.size] as? NSNumber)?.intValue ?? -1 }
        #expect(size() > 0)
        store.reclaimLogSpace()
        #expect(size() == 0)
        #expect(try store.read { try $0.counts().byState[.done] } == 500, "nothing lost")
    }

    @Test func aNewDatabaseUsesIncrementalVacuumAndShrinksAfterAPrune() throws {
        let temp = try TemporaryStore()
        let store = temp.store
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") } == 2)
        try store.write { transaction in
            for index in 0..<3000 {
                let id = try transaction.insertJob(
                    kind: .file, name: name("file-\(index)-" + String(repeating: "x", count: 200)), handler: "h",
                    state: .done, priority: 5, maxAttempts: 3, at: 1000)
                try transaction.setFinalPath(jobID: id, name("done-\(index)"))
            }
        }
        _ = try store.reclaimFreePages()
        let full = try store.pool.read { try Int.fetchOne($0, sql: "PRAGMA page_count") ?? 0 }
        _ = try store.prune(finishedBefore: 2000)
        let reclaim = try store.reclaimFreePages()
        let after = try store.pool.read { try Int.fetchOne($0, sql: "PRAGMA page_count") ?? 0 }
        #expect(!reclaim.switchedToIncremental)
        #expect(reclaim.pagesFreed > 0)
        #expect(after < full / 4)
    }

    @Test func anOlderDatabaseSwitchesToIncrementalVacuumOnce() throws {
        let temp = try TemporaryStore()
        // A database made before auto_vacuum was set: switch it off with a full VACUUM, as it was.
        try temp.store.pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA auto_vacuum = NONE")
            try db.execute(sql: "VACUUM")
        }
        #expect(try temp.store.pool.read { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") } == 0)
        let reopened = try SQLiteStore(directory: temp.directory)
        let first = try reopened.reclaimFreePages()
        #expect(first.switchedToIncremental)
        #expect(try reopened.pool.read { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") } == 2)
        #expect(try reopened.reclaimFreePages().switchedToIncremental == false)
    }

    @Test(arguments: StoreEngine.all)
    func aPrunedLogIsMarkedOnItsAttempt(engine: StoreEngine) throws {
        let ledger = try engine.open()
        defer { ledger.cleanUp() }
        let store = ledger.store
        let id = try store.finishedFile("f", at: 1000)
        try store.write { try $0.markLogPruned(jobID: id, logPath: Array("/logs/job-\(id)-attempt-1.log".utf8), at: 3000) }
        #expect(try store.read { try $0.attempts(jobID: id) }.map(\.logPrunedAt) == [3000])
    }
}
