import Dispatch
import Foundation
import OrchestratorCore
import Testing

@testable import OrchestratorStore

/// A task's runs on a store several daemons share: the store decides `overlap` for a firing and lets one run of a
/// task run at a time, whichever daemon queued it or claims it. The races run on several handles of one ledger.
@Suite struct StoreTaskRunContractTests {
    private func fire(
        _ store: any Store, _ task: String = "t", slot: Int64, liveLimit: Int = 1, cause: TaskCause = .schedule
    ) throws -> TaskFiring {
        try store.write {
            try $0.fireTaskSlot(
                task: task, priority: 5, maxAttempts: 1, cause: cause, slot: slot, liveLimit: liveLimit, detail: "scheduled slot", at: 1)
        }
    }

    private func end(_ store: any Store, _ run: JobRecord, node: String) throws {
        #expect(try store.write {
            try $0.finishClaimed(jobID: run.id, node: node, claim: run.claims, to: .done, notBefore: nil, reason: nil, at: 2)
        })
    }

    @Test(arguments: StoreEngine.all)
    func aFiringWhileARunOfTheTaskIsLiveAnywhereIsSkipped(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        guard case .queued(let first) = try fire(store, slot: 1000) else {
            Issue.record("the first slot was not queued")
            return
        }
        #expect(try fire(store, slot: 1000) == .slotTaken, "its slot is taken")
        #expect(try fire(store, slot: 2000) == .overlapping(live: 1), "queued, not yet running, is live")
        #expect(try fire(store, "other", slot: 2000) != .overlapping(live: 1), "another task is not held back")
        let running = try #require(try store.write { try $0.claimTaskRun(id: first, node: "n1", lease: 30) })
        #expect(try fire(store, slot: 3000) == .overlapping(live: 1), "running on n1")
        try end(store, running, node: "n1")
        guard case .queued = try fire(store, slot: 4000) else {
            Issue.record("a slot after the run ended was not queued")
            return
        }
        // Skipped slots are not recorded: the slot of the run that ran last is the one catch-up counts from.
        #expect(try store.read { try $0.lastScheduledSlot(task: "t") } == 4000)
        #expect(try opened.count("job") == 3)
    }

    @Test(arguments: StoreEngine.all)
    func overlapQueueKeepsOneRunWaitingBehindTheLiveOne(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        guard case .queued(let first) = try fire(store, slot: 1000, liveLimit: 2) else {
            Issue.record("the first slot was not queued")
            return
        }
        _ = try #require(try store.write { try $0.claimTaskRun(id: first, node: "n1", lease: 30) })
        guard case .queued = try fire(store, slot: 2000, liveLimit: 2) else {
            Issue.record("one run may wait behind the running one")
            return
        }
        #expect(try fire(store, slot: 3000, liveLimit: 2) == .overlapping(live: 2))
    }

    @Test(arguments: StoreEngine.all)
    func aTaskRunIsNotClaimedWhileAnotherRunOfItsTaskRuns(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        let runs = try store.write { transaction in
            try (1...2).map { event in
                try #require(try transaction.insertTaskRun(task: "t", priority: 5, maxAttempts: 1, cause: .event, eventID: Int64(event), detail: "event", at: 1))
            }
        }
        let other = try #require(try store.write {
            try $0.insertTaskRun(task: "u", priority: 1, maxAttempts: 1, cause: .event, eventID: 1, detail: "event", at: 1)
        })
        let first = try #require(try store.write { try $0.claimNextTaskRun(node: "n1", lease: 30, agingStep: 0) })
        #expect(first.id == runs[0] && first.owner == "n1" && first.state == .running, "best first: priority, then age")
        #expect(try store.write { try $0.claimTaskRun(id: runs[1], node: "n2", lease: 30) } == nil, "t runs on n1")
        #expect(try store.write { try $0.claimNextTaskRun(node: "n2", lease: 30, agingStep: 0) }?.id == other, "u may run")
        #expect(try store.write { try $0.claimNextTaskRun(node: "n2", lease: 30, agingStep: 0) } == nil)
        // Not due while t runs: a daemon would otherwise wake for it at once, again and again.
        let next = try store.read { try $0.nextClaimable(kinds: [.task]) }
        #expect(next.map { $0.at > $0.now + 20 } ?? false, "only the leases: \(String(describing: next))")
        try end(store, first, node: "n1")
        #expect(try store.read { try $0.nextClaimable(kinds: [.task]) }?.delay == 0)
        #expect(try store.write { try $0.claimTaskRun(id: runs[1], node: "n2", lease: 30) }?.owner == "n2")
        #expect(try store.write { try $0.claimTaskRun(id: other, node: "n3", lease: 30) } == nil, "not queued any more")
    }

    /// Three daemons fire different slots of one task at the same moment (as their clocks differ, or a missed slot
    /// beside a due one): with `overlap = "skip"` exactly one is queued, every round.
    @Test(arguments: StoreEngine.all)
    func concurrentFiringsOfOneTaskQueueOneRun(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let handles = try (0..<3).map { _ in try opened.another() }
        for round in 0..<100 {
            let queued = LockedCount()
            let barrier = Barrier(handles.count)
            together(handles.count) { index in
                barrier.arrive()
                do {
                    if case .queued = try fire(handles[index], "r\(round)", slot: Int64(1000 * index)) { queued.add() }
                } catch {
                    Issue.record("firing \(index): \(error)")
                }
            }
            #expect(queued.value == 1, "round \(round): \(queued.value) runs queued")
        }
    }

    /// Three daemons claim runs of one task at once, by id (their own queued runs) and best first (others'): one
    /// claim wins, every round.
    @Test(arguments: StoreEngine.all)
    func concurrentClaimsOfOneTaskRunOneRun(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let handles = try (0..<4).map { _ in try opened.another() }
        for round in 0..<100 {
            let ids = try opened.store.write { transaction in
                try (0..<handles.count).map { event in
                    try #require(try transaction.insertTaskRun(
                        task: "r\(round)", priority: 5, maxAttempts: 1, cause: .event, eventID: Int64(event), detail: "event", at: 1))
                }
            }
            let claimed = LockedCount()
            let barrier = Barrier(handles.count)
            together(handles.count) { index in
                barrier.arrive()
                do {
                    let run = index % 2 == 0
                        ? try handles[index].write { try $0.claimTaskRun(id: ids[index], node: "n\(index)", lease: 30) }
                        : try handles[index].write { try $0.claimNextTaskRun(node: "n\(index)", lease: 30, agingStep: 0) }
                    if run != nil { claimed.add() }
                } catch {
                    Issue.record("claimer \(index): \(error)")
                }
            }
            #expect(claimed.value == 1, "round \(round): \(claimed.value) runs of one task running")
            #expect(try opened.integers("SELECT count(*) FROM job WHERE state = 'running' AND name = \(Self.nameLiteral(engine, "r\(round)"))") == [1])
        }
    }

    private static func nameLiteral(_ engine: StoreEngine, _ name: String) -> String {
        let hex = name.utf8.map { String(format: "%02x", $0) }.joined()
        return engine.name == "postgres" ? "'\\x\(hex)'::bytea" : "x'\(hex)'"
    }
}

/// A counter several threads add to.
final class LockedCount: @unchecked Sendable {  // `count` only under `lock`
    private let lock = NSLock()
    private var count = 0

    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// Lets threads go on only once all of them have arrived, so that their transactions start together.
final class Barrier: @unchecked Sendable {  // `waiting` only under `condition`
    private let condition = NSCondition()
    private var waiting: Int

    init(_ count: Int) { waiting = count }

    func arrive() {
        condition.lock()
        defer { condition.unlock() }
        waiting -= 1
        if waiting == 0 { condition.broadcast() }
        while waiting > 0 { condition.wait() }
    }
}

/// Runs `body` on `count` threads of its own at once (a dispatch queue's pool may be narrower than `count`, and a
/// barrier would then never open) and returns when all have finished.
func together(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        Thread { body(index); group.leave() }.start()
    }
    group.wait()
}
