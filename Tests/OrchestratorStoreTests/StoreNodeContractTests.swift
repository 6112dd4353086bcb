import Foundation
import OrchestratorCore
import Testing

@testable import OrchestratorStore

/// The daemons of a store, as `status` shows them and a starting daemon checks its name against them.
@Suite struct StoreNodeContractTests {
    private func registration(_ name: String, instance: String = "host-a:/srv/state", pid: Int32 = 100, hash: String = "aa")
        -> NodeRegistration
    {
        NodeRegistration(
            name: name, instance: instance, pid: pid, version: "0.1.0", configHash: hash, roles: ["lister", "worker"])
    }

    @Test(arguments: StoreEngine.all)
    func aRegisteredDaemonReadsBackWithItsLeasesAndAFreshHeartbeat(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        try store.write { try $0.registerNode(registration("web1")) }
        try store.write { try $0.registerNode(registration("vm2", instance: "host-b:/var/lib/o", pid: 7, hash: "bb")) }
        _ = try store.write {
            try $0.insertJob(kind: .file, name: RelativePath(Array("a".utf8)), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
        }
        _ = try store.write { try $0.claimNext(node: "vm2", lease: 60, kinds: [.file], agingStep: 0) }

        let nodes = try store.read { try $0.nodes() }
        #expect(nodes.map(\.name) == ["vm2", "web1"])
        let vm2 = try #require(nodes.first)
        #expect(vm2.instance == "host-b:/var/lib/o" && vm2.pid == 7 && vm2.version == "0.1.0" && vm2.configHash == "bb")
        #expect(vm2.roles == ["lister", "worker"] && vm2.stoppedAt == nil)
        #expect(vm2.leasesHeld == 1 && nodes[1].leasesHeld == 0)
        // The store's clock: just registered, so seconds at most, never negative beyond rounding.
        #expect(vm2.heartbeatAge > -1 && vm2.heartbeatAge < 5)
        #expect(try store.read { try $0.node(named: "web1") }?.pid == 100)
        #expect(try store.read { try $0.node(named: "nobody") } == nil)
    }

    @Test(arguments: StoreEngine.all)
    func aHeartbeatCountsOnlyForTheInstanceThatHoldsTheName(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        try store.write { try $0.registerNode(registration("web1")) }
        let before = try #require(try store.read { try $0.node(named: "web1") })
        #expect(try store.write { try $0.heartbeat(node: "web1", instance: "host-a:/srv/state") })
        let after = try #require(try store.read { try $0.node(named: "web1") })
        #expect(after.heartbeatAt >= before.heartbeatAt)
        // Another instance took the name: the old one's heartbeat is refused, so it knows to stop.
        try store.write { try $0.registerNode(registration("web1", instance: "host-c:/srv/state", pid: 9)) }
        #expect(try !store.write { try $0.heartbeat(node: "web1", instance: "host-a:/srv/state") })
        #expect(try store.write { try $0.heartbeat(node: "web1", instance: "host-c:/srv/state") })
        #expect(try !store.write { try $0.heartbeat(node: "gone", instance: "host-c:/srv/state") })
    }

    @Test(arguments: StoreEngine.all)
    func aCleanStopIsRecordedAndARestartRunsAgain(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        try store.write { try $0.registerNode(registration("web1")) }
        let started = try #require(try store.read { try $0.node(named: "web1") }).startedAt
        // A reload registers again (its config hash may change) and keeps the start.
        try store.write { try $0.registerNode(registration("web1", hash: "cc")) }
        let reloaded = try #require(try store.read { try $0.node(named: "web1") })
        #expect(reloaded.startedAt == started && reloaded.configHash == "cc")

        try store.write { try $0.markNodeStopped(node: "web1", instance: "host-a:/srv/state") }
        #expect(try store.read { try $0.node(named: "web1") }?.stoppedAt != nil)
        #expect(try !store.write { try $0.heartbeat(node: "web1", instance: "host-a:/srv/state") })
        // Another instance's stop does not mark this one's row.
        try store.write { try $0.registerNode(registration("web1", pid: 101)) }
        try store.write { try $0.markNodeStopped(node: "web1", instance: "host-z:/elsewhere") }
        let restarted = try #require(try store.read { try $0.node(named: "web1") })
        #expect(restarted.stoppedAt == nil && restarted.pid == 101)
        #expect(try store.write { try $0.heartbeat(node: "web1", instance: "host-a:/srv/state") })
    }

    /// The prune sweep forgets daemons not heard of since its cutoff (a host renamed, a container's name that will
    /// not come back), with their notes and breakers, but never the daemon that prunes: on SQLite it does not beat.
    @Test(arguments: StoreEngine.all)
    func daemonsNotHeardOfSinceTheCutoffAreForgottenWithTheirNotesAndBreakers(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        for name in ["gone1", "gone2", "self"] { try store.write { try $0.registerNode(registration(name)) } }
        try store.write { try $0.markNodeStopped(node: "gone1", instance: "host-a:/srv/state") }
        for name in ["gone1", "self"] {
            try store.write {
                try $0.setNodeNote(node: name, "health", "ok", at: 10)
                try $0.setBreaker(node: name, owner: "handler h", state: "open", consecutiveFailures: 3, openUntil: 99, at: 10)
            }
        }
        // Everyone was heard of after this cutoff: nothing goes.
        #expect(try store.read { try $0.daemonsToForget(lastHeardBefore: 1000, silentFor: 0, keeping: "self") } == 0)
        #expect(try store.write { try $0.forgetDaemons(lastHeardBefore: 1000, silentFor: 0, keeping: "self") } == 0)
        let later = Date().timeIntervalSince1970 + 3600
        #expect(try store.read { try $0.daemonsToForget(lastHeardBefore: later, silentFor: 0, keeping: "self") } == 2)
        #expect(try store.write { try $0.forgetDaemons(lastHeardBefore: later, silentFor: 0, keeping: "self") } == 2)
        #expect(try store.read { try $0.nodes() }.map(\.name) == ["self"])
        #expect(try store.read { try $0.nodeNotes(prefix: "") }.map(\.node) == ["self"])
        #expect(try store.read { try $0.breakers() }.map(\.node) == ["self"])
    }

    /// A retention shorter than the heartbeat's period: a prune forgot a live daemon's row, which then took itself for
    /// replaced and stopped, ending its workers. A daemon heard of within the silence, or holding a running job, stays.
    @Test(arguments: StoreEngine.all)
    func aDaemonHeardOfLatelyOrHoldingARunningJobIsNeverForgotten(engine: StoreEngine) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        let store = opened.store
        for name in ["lively", "busy", "self"] { try store.write { try $0.registerNode(registration(name)) } }
        let id = try store.write {
            try $0.insertJob(kind: .file, name: RelativePath(Array("f".utf8)), handler: "h", state: .queued, priority: 5, maxAttempts: 1, at: 1)
        }
        _ = try store.write { try $0.claimJob(id: id, node: "busy", lease: 3600) }
        let later = Date().timeIntervalSince1970 + 3600
        #expect(try store.read { try $0.daemonsToForget(lastHeardBefore: later, silentFor: 75, keeping: "self") } == 0)
        #expect(try store.write { try $0.forgetDaemons(lastHeardBefore: later, silentFor: 75, keeping: "self") } == 0)
        // Silent past the given silence: only the one with no running job goes.
        #expect(try store.read { try $0.daemonsToForget(lastHeardBefore: later, silentFor: 0, keeping: "self") } == 1)
        #expect(try store.write { try $0.forgetDaemons(lastHeardBefore: later, silentFor: 0, keeping: "self") } == 1)
        #expect(try store.read { try $0.nodes() }.map(\.name).sorted() == ["busy", "self"])
    }
}
