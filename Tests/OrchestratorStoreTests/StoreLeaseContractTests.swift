import Dispatch
import Foundation
import OrchestratorCore
import Testing

@testable import OrchestratorStore

private func path(_ text: String) -> RelativePath { RelativePath(Array(text.utf8)) }

/// Claims under a lease, as several daemons on one store use them (issue 10): what every engine must do, and the
/// races that broke other queues (river#1302: a rescue overwriting a finished job; a stale completion after a lost
/// lease). The races run on two handles of the same ledger, on two threads, many times; each round's assertion
/// holds whichever side wins.
@Suite struct StoreLeaseContractTests {
    private func withStore(_ engine: StoreEngine, _ body: (any Store, @Sendable () throws -> any Store) throws -> Void) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        try body(opened.store, opened.another)
    }

    private func queue(_ store: any Store, _ name: String, priority: Int = 5, kind: JobKind = .file, at time: UnixTime = 1) throws -> Int64 {
        try store.write {
            try $0.insertJob(kind: kind, name: path(name), handler: "h", state: .queued, priority: priority, maxAttempts: 3, at: time)
        }
    }

    private func claim(_ store: any Store, _ node: String, lease: Double = 60) throws -> JobRecord? {
        try store.write { try $0.claimNext(node: node, lease: lease, kinds: [.file], agingStep: 0) }
    }

    @Test(arguments: StoreEngine.all)
    func aClaimTakesTheMostUrgentDueJobOnceUnderALease(engine: StoreEngine) throws {
        try withStore(engine) { store, _ in
            let older = try queue(store, "older", priority: 5)
            let urgent = try queue(store, "urgent", priority: 7)
            let later = try queue(store, "later", priority: 9)
            try store.write { try $0.setState(jobID: later, from: .queued, to: .queued, notBefore: 4_000_000_000, at: 1) }
            _ = try queue(store, "a-task", priority: 10, kind: .task)
            let newer = try queue(store, "newer", priority: 5)

            let first = try #require(try claim(store, "node-a"))
            #expect(first.id == urgent && first.state == .running && first.owner == "node-a" && first.attempts == 1 && first.claims == 1)
            let now = Date().timeIntervalSince1970
            #expect((first.leaseUntil ?? 0) > now + 30 && (first.leaseUntil ?? 0) < now + 90, "a 60 s lease on the store's clock")
            #expect(try claim(store, "node-b")?.id == older, "equal priority: the older first")
            #expect(try claim(store, "node-a")?.id == newer)
            #expect(try claim(store, "node-b") == nil, "not due yet, or not a file job")
            #expect(try store.read { try $0.transitions(jobID: urgent) }.last?.detail == "claimed by node-a")
        }
    }

    /// A paused handler's job is passed by, and is not "due" for the wake-up timer either: claimed, it could only be
    /// given back, again at every look while the pause lasts (a transition row each time). Resumed, it is taken.
    @Test(arguments: StoreEngine.all)
    func aPausedHandlersJobIsNeitherClaimedNorDueUntilItsResume(engine: StoreEngine) throws {
        try withStore(engine) { store, _ in
            let held = try store.write {
                try $0.insertJob(kind: .file, name: path("held"), handler: "paused", state: .queued, priority: 9, maxAttempts: 3, at: 1)
            }
            let other = try queue(store, "other", priority: 5)
            try store.write { try $0.setHandlerPaused("paused", true, at: 1) }
            #expect(try claim(store, "n")?.id == other, "the paused handler's job is passed by, whatever its priority")
            #expect(try claim(store, "n") == nil)
            _ = try store.write { try $0.finishClaimed(jobID: other, node: "n", claim: 1, to: .done, attempts: 1, notBefore: nil, reason: nil, detail: nil, at: 2) }
            #expect(try store.read { try $0.nextClaimable(kinds: [.file]) } == nil, "nothing due: only the resume brings work")
            try store.write { try $0.setHandlerPaused("paused", false, at: 3) }
            #expect(try store.read { try $0.nextClaimable(kinds: [.file]) } != nil)
            #expect(try claim(store, "n")?.id == held)
            #expect(try store.read { try $0.transitions(jobID: held) }.filter { $0.detail?.hasPrefix("given back") == true }.isEmpty)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aJobWaitingLongEnoughOvertakesAHigherPriority(engine: StoreEngine) throws {
        try withStore(engine) { store, _ in
            let now = Date().timeIntervalSince1970
            let waiting = try queue(store, "waiting", priority: 5, at: now - 1000)
            let fresh = try queue(store, "fresh", priority: 8, at: now)
            // One step of aging per 100 s: the old job has 5 + 10 steps, capped at 10.
            let first = try store.write { try $0.claimNext(node: "n", lease: 60, kinds: [.file], agingStep: 100) }
            #expect(first?.id == waiting)
            #expect(try claim(store, "n")?.id == fresh)
        }
    }

    @Test(arguments: StoreEngine.all)
    func concurrentClaimersNeverTakeTheSameJob(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            var all: Set<Int64> = []
            try store.write { transaction in
                for index in 0..<120 {
                    all.insert(try transaction.insertJob(
                        kind: .file, name: path("f\(index)"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1))
                }
            }
            let handles = try (0..<3).map { _ in try another() }
            let claimed = LockedList()
            let failures = LockedList()
            DispatchQueue.concurrentPerform(iterations: handles.count) { index in
                do {
                    while let job = try claim(handles[index], "node-\(index)") { claimed.append(job.id) }
                } catch {
                    failures.append(-1)
                    Issue.record("claimer \(index): \(error)")
                }
            }
            #expect(failures.values.isEmpty)
            #expect(claimed.values.count == all.count, "each job claimed once")
            #expect(Set(claimed.values) == all)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aCompletionWhileTheLeaseHoldsStandsAndRescueLeavesItAlone(engine: StoreEngine) throws {
        try withStore(engine) { store, _ in
            let id = try queue(store, "f")
            let job = try #require(try claim(store, "node-a"))
            #expect(try store.write { try $0.rescueExpiredLeases(at: 2) }.isEmpty)
            #expect(try store.write {
                try $0.finishClaimed(jobID: id, node: "node-a", claim: job.claims, to: .done, notBefore: nil, reason: nil, at: 3)
            })
            #expect(try store.write { try $0.rescueExpiredLeases(at: 4) }.isEmpty)
            let done = try #require(try store.read { try $0.job(id: id) })
            #expect(done.state == .done && done.owner == "node-a" && done.leaseUntil == nil && done.finishedAt == 3)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aStaleCompletionAfterALostLeaseIsRefused(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            let id = try queue(store, "f")
            // Node A's lease has run out the moment it was given.
            let stale = try #require(try claim(store, "node-a", lease: -1))
            _ = try store.write { try $0.startAttempt(jobID: id, number: 1, logPath: [], at: 2) }
            let other = try another()
            #expect(try other.write { try $0.rescueExpiredLeases(at: 5) } == [id])
            let rescued = try #require(try store.read { try $0.job(id: id) })
            #expect(rescued.state == .queued && rescued.owner == nil && rescued.attempts == 0, "an interrupted run spends no attempt")
            #expect(try store.read { try $0.attempts(jobID: id) }.map(\.outcome) == [.interrupted])

            // Node A itself claims the job again: same node and attempt number, but a new claim.
            let fresh = try #require(try claim(other, "node-a"))
            #expect(fresh.attempts == 1 && fresh.claims == stale.claims + 1)
            #expect(!(try store.write {
                try $0.finishClaimed(jobID: id, node: "node-a", claim: stale.claims, to: .done, notBefore: nil, reason: nil, at: 6)
            }), "the old claim's completion is refused")
            #expect(try store.read { try $0.job(id: id) }?.state == .running)
            #expect(try other.write {
                try $0.finishClaimed(jobID: id, node: "node-a", claim: fresh.claims, to: .failed, notBefore: nil, reason: "exit 1", at: 7)
            })
            #expect(try store.read { try $0.job(id: id) }?.state == .failed)
        }
    }

    /// The job's end that also ends its attempt (one statement on PostgreSQL): written together while the claim holds,
    /// neither once it is lost, where the rescue's "interrupted" stands.
    @Test(arguments: StoreEngine.all)
    func aJobsEndThatEndsItsAttemptTooIsGuardedAsOne(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            let held = try queue(store, "held")
            let job = try #require(try claim(store, "node-a"))
            let result = AttemptResult(outcome: .succeeded, exitCode: 0, userCPU: 0.5, maxRSSKiB: 900, stderrTail: Array("ok".utf8))
            var refusals = 0
            try store.write { transaction in
                try transaction.recordStartedAttempt(jobID: held, number: 1, logPath: [], pid: 7, startTime: nil, at: 2, ended: nil)
                try transaction.finishClaimed(
                    jobID: held, node: "node-a", claim: job.claims, to: .done, attempts: nil, notBefore: nil, reason: nil, detail: nil,
                    at: 3, endingAttempt: (result, 2.5)) { refusals += 1 }
            }
            #expect(refusals == 0)
            #expect(try store.read { try $0.job(id: held) }?.state == .done)
            let attempt = try #require(try store.read { try $0.attempts(jobID: held) }.first)
            #expect(attempt.outcome == .succeeded && attempt.endedAt == 2.5 && attempt.exitCode == 0 && attempt.maxRSSKiB == 900)
            #expect(attempt.stderrTail == Array("ok".utf8) && attempt.userCPU == 0.5)

            let lost = try queue(store, "lost")
            let stale = try #require(try claim(store, "node-a", lease: -1))
            _ = try store.write { try $0.startAttempt(jobID: lost, number: 1, logPath: [], at: 4) }
            #expect(try another().write { try $0.rescueExpiredLeases(at: 5) } == [lost])
            try store.write { transaction in
                try transaction.finishClaimed(
                    jobID: lost, node: "node-a", claim: stale.claims, to: .done, attempts: nil, notBefore: nil, reason: nil, detail: nil,
                    at: 6, endingAttempt: (result, 6)) { refusals += 1 }
            }
            #expect(refusals == 1)
            #expect(try store.read { try $0.job(id: lost) }?.state == .queued)
            #expect(try store.read { try $0.attempts(jobID: lost) }.map(\.outcome) == [.interrupted])
        }
    }

    @Test(arguments: StoreEngine.all)
    func aCompletionRacingARescueHasExactlyOneWinner(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            let rescuer = try another()
            for round in 0..<25 {
                let id = try queue(store, "r\(round)")
                let job = try #require(try claim(store, "node-a", lease: -1))
                let completed = LockedList()
                let rescued = LockedList()
                DispatchQueue.concurrentPerform(iterations: 2) { side in
                    do {
                        if side == 0 {
                            let won = try store.write {
                                try $0.finishClaimed(jobID: id, node: "node-a", claim: job.claims, to: .done, notBefore: nil, reason: nil, at: 9)
                            }
                            if won { completed.append(id) }
                        } else {
                            for taken in try rescuer.write({ try $0.rescueExpiredLeases(at: 9) }) { rescued.append(taken) }
                        }
                    } catch {
                        Issue.record("round \(round), side \(side): \(error)")
                    }
                }
                let final = try #require(try store.read { try $0.job(id: id) })
                #expect(completed.values.count + rescued.values.count == 1, "round \(round): completed \(completed.values), rescued \(rescued.values)")
                #expect(final.state == (completed.values.isEmpty ? .queued : .done), "round \(round): a rescue never overwrites a completion")
                if final.state == .queued {
                    // Out of the way of the next round's claim.
                    try store.write { try $0.setState(jobID: id, from: .queued, to: .failed, at: 10) }
                }
            }
        }
    }

    /// The interleaving that broke river (#1302), made to happen every time: the completion has updated the row but
    /// not committed when the rescue looks for expired leases. The rescue must not wait for it and then take the
    /// job back: it passes over the row (PostgreSQL) or runs after the commit (SQLite), and the job stays done.
    @Test(arguments: StoreEngine.all)
    func aRescueDuringAnUncommittedCompletionLeavesTheJobDone(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            let rescuer = try another()
            let id = try queue(store, "f")
            let job = try #require(try claim(store, "node-a", lease: -1))
            let completionWritten = DispatchSemaphore(value: 0)
            let rescueReturned = DispatchSemaphore(value: 0)
            let rescued = LockedList()
            DispatchQueue.concurrentPerform(iterations: 2) { side in
                do {
                    if side == 0 {
                        try store.write { transaction in
                            _ = try transaction.finishClaimed(jobID: id, node: "node-a", claim: job.claims, to: .done, notBefore: nil, reason: nil, at: 9)
                            completionWritten.signal()
                            // Holds the transaction open while the rescue runs; a rescue that waits for this row is
                            // let through after half a second, so that it can do its damage and fail the test.
                            _ = rescueReturned.wait(timeout: .now() + 0.5)
                        }
                    } else {
                        completionWritten.wait()
                        for taken in try rescuer.write({ try $0.rescueExpiredLeases(at: 9) }) { rescued.append(taken) }
                        rescueReturned.signal()
                    }
                } catch {
                    Issue.record("side \(side): \(error)")
                }
            }
            #expect(rescued.values.isEmpty)
            let final = try #require(try store.read { try $0.job(id: id) })
            #expect(final.state == .done && final.finishedAt == 9)
            #expect(try store.read { try $0.attempts(jobID: id) }.allSatisfy { $0.outcome != .interrupted })
        }
    }

    @Test(arguments: StoreEngine.all)
    func aRescueRacingAFreshClaimNeverHandsOutAHeldJob(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            let claimer = try another()
            for round in 0..<20 {
                let held = try queue(store, "held\(round)")
                _ = try #require(try claim(store, "node-a", lease: -1))
                let got = LockedList()
                let rescued = LockedList()
                DispatchQueue.concurrentPerform(iterations: 2) { side in
                    do {
                        if side == 0 {
                            for taken in try store.write({ try $0.rescueExpiredLeases(at: 9) }) { rescued.append(taken) }
                        } else if let job = try claim(claimer, "node-b") {
                            got.append(job.id)
                        }
                    } catch {
                        Issue.record("round \(round), side \(side): \(error)")
                    }
                }
                // Node B gets the held job only once the rescue has put it back in the queue.
                #expect(rescued.values == [held], "round \(round)")
                if got.values == [held] {
                    let job = try #require(try store.read { try $0.job(id: held) })
                    #expect(job.owner == "node-b" && job.claims == 2)
                } else {
                    #expect(got.values.isEmpty, "round \(round): node B took \(got.values)")
                    #expect(try store.read { try $0.job(id: held) }?.state == .queued)
                }
                try store.write { try $0.setState(jobID: held, from: nil, to: .failed, at: 10) }
            }
        }
    }

    @Test(arguments: StoreEngine.all)
    func renewingExtendsOnlyTheNodesOwnRunningLeases(engine: StoreEngine) throws {
        try withStore(engine) { store, _ in
            for name in ["a1", "a2", "b1"] { _ = try queue(store, name) }
            let a1 = try #require(try claim(store, "node-a", lease: 1))
            _ = try claim(store, "node-a", lease: 1)
            let b1 = try #require(try claim(store, "node-b", lease: 1))
            #expect(try store.write { try $0.renewLeases(node: "node-a", lease: 600) } == 2)
            let renewed = try #require(try store.read { try $0.job(id: a1.id) })
            #expect((renewed.leaseUntil ?? 0) > (a1.leaseUntil ?? 0) + 500)
            #expect(try store.read { try $0.job(id: b1.id) }?.leaseUntil == b1.leaseUntil)
            #expect(try store.write { try $0.renewLeases(node: "node-c", lease: 600) } == 0)
        }
    }
}

/// Values appended from several threads.
final class LockedList: @unchecked Sendable {  // `items` only under `lock`
    private let lock = NSLock()
    private var items: [Int64] = []

    func append(_ value: Int64) { lock.withLock { items.append(value) } }
    var values: [Int64] { lock.withLock { items } }
}
