import Foundation
import OrchestratorCore
import Testing

@testable import OrchestratorStore

/// A daemon that knows which job it wants (one it queued itself) claims that one, and ends its attempt only while
/// its claim holds: the attempt row of a job another daemon has since claimed again is that daemon's.
@Suite struct StoreClaimJobContractTests {
    func queue(_ store: any Store, _ name: String) throws -> Int64 {
        try store.write {
            try $0.insertJob(
                kind: .file, name: RelativePath(Array(name.utf8)), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aJobIsClaimedByIdOnlyWhileQueuedAndDue(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        let id = try queue(store, "a")
        let later = try queue(store, "later")
        try store.write { try $0.setState(jobID: later, from: .queued, to: .queued, notBefore: 4_000_000_000, at: 1) }

        let claimed = try #require(try store.write { try $0.claimJob(id: id, node: "web1", lease: 30) })
        #expect(claimed.state == .running && claimed.owner == "web1" && claimed.claims == 1 && claimed.attempts == 1)
        #expect(try store.read { try $0.transitions(jobID: id) }.last?.detail == "claimed by web1")
        #expect(try store.write { try $0.claimJob(id: id, node: "vm2", lease: 30) } == nil, "already running")
        #expect(try store.write { try $0.claimJob(id: later, node: "vm2", lease: 30) } == nil, "not due yet")
        #expect(try store.write { try $0.claimJob(id: id + 100, node: "vm2", lease: 30) } == nil, "no such job")
    }

    @Test(arguments: StoreEngine.all)
    func anInterruptedClaimGivesItsAttemptBackAndKeepsTheDetail(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        let id = try queue(store, "a")
        let claimed = try #require(try store.write { try $0.claimJob(id: id, node: "web1", lease: 30) })
        #expect(try store.write {
            try $0.finishClaimed(
                jobID: id, node: "web1", claim: claimed.claims, to: .queued, attempts: 0, notBefore: nil, reason: nil,
                detail: "interrupted by shutdown", at: 5)
        })
        let job = try #require(try store.read { try $0.job(id: id) })
        #expect(job.state == .queued && job.attempts == 0 && job.owner == "web1" && job.leaseUntil == nil, "the owner stays: the daemon that ran it last")
        #expect(try store.read { try $0.transitions(jobID: id) }.last?.detail == "interrupted by shutdown")
        // Claimed again, it counts its attempt again, and a failure records the count the dispatcher gives.
        let again = try #require(try store.write { try $0.claimJob(id: id, node: "web1", lease: 30) })
        #expect(again.attempts == 1 && again.claims == 2)
        #expect(try store.write {
            try $0.finishClaimed(
                jobID: id, node: "web1", claim: again.claims, to: .retryWait, attempts: 1, notBefore: 50, reason: "exit 1", at: 6)
        })
        let waiting = try #require(try store.read { try $0.job(id: id) })
        #expect(waiting.state == .retryWait && waiting.attempts == 1 && waiting.notBefore == 50 && waiting.reason == "exit 1")
    }

    @Test(arguments: StoreEngine.all)
    func anAttemptIsEndedOnlyUnderTheClaimThatStartedIt(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        let id = try queue(store, "a")
        let stale = try #require(try store.write { try $0.claimJob(id: id, node: "web1", lease: -1) })
        _ = try store.write { try $0.startAttempt(jobID: id, number: 1, logPath: [], at: 2) }
        #expect(try store.write { try $0.rescueExpiredLeases(at: 3) } == [id])
        // Another daemon claims it and starts its own attempt.
        let fresh = try #require(try store.write { try $0.claimJob(id: id, node: "vm2", lease: 30) })
        _ = try store.write { try $0.startAttempt(jobID: id, number: 1, logPath: [], at: 4) }

        let late = AttemptResult(outcome: .succeeded, exitCode: 0)
        #expect(try !store.write { try $0.finishClaimedAttempt(jobID: id, node: "web1", claim: stale.claims, late, at: 5) })
        #expect(try store.read { try $0.attempts(jobID: id) }.map(\.outcome) == [.interrupted, .running], "vm2's attempt runs on")
        #expect(try store.write {
            try $0.finishClaimedAttempt(jobID: id, node: "vm2", claim: fresh.claims, AttemptResult(outcome: .failed, exitCode: 3), at: 6)
        })
        let attempts = try store.read { try $0.attempts(jobID: id) }
        #expect(attempts.map(\.outcome) == [.interrupted, .failed] && attempts.last?.exitCode == 3)
    }
}

extension StoreClaimJobContractTests {
    @Test(arguments: StoreEngine.all)
    func aJobNobodyRunsIsEndedOnlyWhileNobodyRunsIt(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        let queued = try queue(store, "a")
        #expect(try store.write {
            try $0.finishUnclaimed(jobID: queued, to: .failed, attempts: nil, reason: "cancelled", detail: "cancelled by hand", at: 5)
        })
        let ended = try #require(try store.read { try $0.job(id: queued) })
        #expect(ended.state == .failed && ended.finishedAt == 5 && ended.reason == "cancelled")
        let last = try store.read { try $0.transitions(jobID: queued) }.last
        #expect(last?.from == "queued" && last?.to == "failed" && last?.detail == "cancelled by hand")
        #expect(try !store.write { try $0.finishUnclaimed(jobID: queued, to: .failed, attempts: nil, reason: "again", detail: nil, at: 6) })

        let running = try queue(store, "b")
        _ = try store.write { try $0.claimJob(id: running, node: "vm2", lease: 30) }
        #expect(try !store.write { try $0.finishUnclaimed(jobID: running, to: .failed, attempts: nil, reason: "x", detail: nil, at: 7) })
        #expect(try store.read { try $0.job(id: running) }?.state == .running, "vm2's run is not ended from outside")
    }

    /// The forms a daemon uses on its busiest path, whose answers an engine may give only with the COMMIT: the same
    /// claims and refusals as the forms answered at once, known by the time the write returns.
    @Test(arguments: StoreEngine.all)
    func answersGivenWithTheCommitAreTheSameAsAnswersGivenAtOnce(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        let id = try queue(store, "a")
        let answer = try store.write { transaction -> StoreAnswer<JobRecord?> in
            _ = try transaction.insertJob(
                kind: .file, name: RelativePath(Array("pending".utf8)), handler: "h", state: .queued, priority: 5, maxAttempts: 3,
                at: 1)
            return try transaction.claimJobAnswered(id: id, node: "web1", lease: 30)
        }
        let claimed = try #require(answer.value ?? nil)
        #expect(claimed.id == id && claimed.state == .running && claimed.owner == "web1" && claimed.claims == 1)
        let refusedClaim = try store.write { try $0.claimJobAnswered(id: id, node: "vm2", lease: 30) }
        #expect(refusedClaim.value == .some(nil), "answered, and the answer is that it is not claimable")

        // vm2 rescues and claims it again: web1's end is refused, vm2's goes through.
        try store.write { try $0.setState(jobID: id, from: .running, to: .queued, at: 2) }
        let fresh = try #require(try store.write { try $0.claimJob(id: id, node: "vm2", lease: 30) })
        var refusals: [String] = []
        try store.write { transaction in
            try transaction.finishClaimed(
                jobID: id, node: "web1", claim: claimed.claims, to: .done, attempts: nil, notBefore: nil, reason: nil,
                detail: nil, at: 3) { refusals.append("web1") }
            try transaction.finishClaimed(
                jobID: id, node: "vm2", claim: fresh.claims, to: .done, attempts: nil, notBefore: nil, reason: nil,
                detail: nil, at: 4) { refusals.append("vm2") }
        }
        #expect(refusals == ["web1"])
        let done = try #require(try store.read { try $0.job(id: id) })
        #expect(done.state == .done && done.owner == "vm2")
    }
}
