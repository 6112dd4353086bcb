import Foundation
import OrchestratorCore
import Testing

@testable import OrchestratorStore

/// What belongs to one daemon of a store (its notes for `status`, its breakers, its name) stays that daemon's when
/// several share the store.
@Suite struct StoreNodeNoteContractTests {
    private func registration(_ name: String, instance: String, pid: Int32 = 100) -> NodeRegistration {
        NodeRegistration(name: name, instance: instance, pid: pid, version: "0.1.0", configHash: "aa", roles: ["worker"])
    }

    @Test(arguments: StoreEngine.all)
    func eachDaemonKeepsItsOwnNotesBesideTheStoresOwn(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        try store.write { transaction in
            try transaction.setNodeNote(node: "web1", "health", "{web1}", at: 10)
            try transaction.setNodeNote(node: "vm2", "health", "{vm2}", at: 11)
            try transaction.setNodeNote(node: "web1", "sweep.ingest", "3 files", at: 12)
            try transaction.setNodeNote(node: "vm2", "sweep.prune", "nothing", at: 13)
            try transaction.setDaemonNote("shared.folders", "inbox /srv/in", at: 14)
        }
        // The later write of one daemon does not replace the other's.
        #expect(try store.read { try $0.nodeNote(node: "web1", "health") } == "{web1}")
        #expect(try store.read { try $0.nodeNote(node: "vm2", "health") } == "{vm2}")
        let sweeps = try store.read { try $0.nodeNotes(prefix: "sweep.") }
        #expect(sweeps == [
            NodeNote(node: "vm2", key: "sweep.prune", value: "nothing", at: 13),
            NodeNote(node: "web1", key: "sweep.ingest", value: "3 files", at: 12),
        ])
        #expect(try store.read { try $0.nodeNotes(prefix: "") }.count == 4)
        // Store-wide notes and a daemon's are apart.
        #expect(try store.read { try $0.daemonNote("health") } == nil)
        #expect(try store.read { try $0.nodeNotes(prefix: "shared.") }.isEmpty)
        #expect(try store.read { try $0.daemonNote("shared.folders") } == "inbox /srv/in")

        try store.write { try $0.setNodeNote(node: "web1", "health", nil, at: 20) }
        #expect(try store.read { try $0.nodeNote(node: "web1", "health") } == nil)
        #expect(try store.read { try $0.nodeNotes(prefix: "health") }.map(\.node) == ["vm2"])
    }

    @Test(arguments: StoreEngine.all)
    func aDaemonsStartClearsItsOwnBreakersOnly(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        try store.write { transaction in
            try transaction.setBreaker(node: "web1", owner: "handler h", state: "open", consecutiveFailures: 5, openUntil: 90, at: 1)
            try transaction.setBreaker(node: "vm2", owner: "handler h", state: "half_open", consecutiveFailures: 3, openUntil: nil, at: 2)
            try transaction.setBreaker(node: "vm2", owner: "task t", state: "open", consecutiveFailures: 2, openUntil: 80, at: 3)
        }
        let all = try store.read { try $0.breakers() }
        #expect(all.map { "\($0.node) \($0.owner) \($0.state)" } == ["vm2 handler h half_open", "vm2 task t open", "web1 handler h open"])

        try store.write { try $0.clearBreakers(node: "vm2") }
        let left = try store.read { try $0.breakers() }
        #expect(left == [BreakerRecord(node: "web1", owner: "handler h", state: "open", consecutiveFailures: 5, openUntil: 90, updatedAt: 1)])

        try store.write { try $0.clearBreakers(node: nil) }
        #expect(try store.read { try $0.breakers() }.isEmpty)
    }

    @Test(arguments: StoreEngine.all)
    func ofTwoClaimsOfOneNameTheFirstWinsUntilItsHolderStopsOrFallsSilent(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        let first = registration("web1", instance: "host-a:/srv/state", pid: 10)
        let second = registration("web1", instance: "host-b:/srv/state", pid: 20)
        #expect(try store.write { try $0.claimNodeName(first, silentAfter: 75) })
        #expect(try !store.write { try $0.claimNodeName(second, silentAfter: 75) })
        let held = try #require(try store.read { try $0.node(named: "web1") })
        #expect(held.instance == "host-a:/srv/state" && held.pid == 10 && held.stoppedAt == nil)
        // The same instance restarting after a crash (its row still looks alive) takes its name back.
        #expect(try store.write { try $0.claimNodeName(registration("web1", instance: "host-a:/srv/state", pid: 11), silentAfter: 75) })
        #expect(try store.read { try $0.node(named: "web1") }?.pid == 11)
        // A holder that stopped cleanly frees the name.
        try store.write { try $0.markNodeStopped(node: "web1", instance: "host-a:/srv/state") }
        #expect(try store.write { try $0.claimNodeName(second, silentAfter: 75) })
        let taken = try #require(try store.read { try $0.node(named: "web1") })
        #expect(taken.instance == "host-b:/srv/state" && taken.pid == 20 && taken.stoppedAt == nil)
        // So does one silent for longer than the claim allows (by the store's clock; -1: any heartbeat is too old).
        #expect(try !store.write { try $0.claimNodeName(first, silentAfter: 75) })
        #expect(try store.write { try $0.claimNodeName(first, silentAfter: -1) })
        #expect(try store.read { try $0.node(named: "web1") }?.instance == "host-a:/srv/state")
        // The loser learns it from its heartbeat.
        #expect(try !store.write { try $0.heartbeat(node: "web1", instance: "host-b:/srv/state") })
    }

    @Test(arguments: StoreEngine.all)
    func twoClaimsOfOneNameAtTheSameInstantHaveExactlyOneWinner(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let stores = [opened.store, try opened.another()]
        for round in 0..<20 {
            let name = "node\(round)"
            let wins = LockedCounter()
            let start = DispatchSemaphore(value: 0)
            let group = DispatchGroup()
            for (index, store) in stores.enumerated() {
                let claimant = registration(name, instance: "host-\(index):/srv/state", pid: Int32(100 + index))
                DispatchQueue.global().async(group: group) {
                    start.wait()
                    do {
                        if try store.write({ try $0.claimNodeName(claimant, silentAfter: 75) }) { wins.add(index) }
                    } catch {
                        wins.fail("\(error)")
                    }
                }
            }
            start.signal()
            start.signal()
            #expect(group.wait(timeout: .now() + 30) == .success)
            let (winners, failures) = wins.value
            #expect(failures.isEmpty, "\(failures)")
            #expect(winners.count == 1, "round \(round): winners \(winners)")
            let holder = try #require(try stores[0].read { try $0.node(named: name) })
            #expect(holder.instance == "host-\(winners.first ?? -1):/srv/state")
        }
    }
}

private final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var winners: [Int] = []
    private var failures: [String] = []

    func add(_ index: Int) { lock.withLock { winners.append(index) } }
    func fail(_ message: String) { lock.withLock { failures.append(message) } }
    var value: ([Int], [String]) { lock.withLock { (winners, failures) } }
}
