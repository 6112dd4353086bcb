import OrchestratorStore
import Testing

@testable import OrchestratorDaemon

/// What `status` makes of the daemons' own notes: each daemon's apart on a shared store, and on SQLite the newest of
/// each whichever name wrote it.
@Suite struct DaemonNotesTests {
    private let health = HealthSnapshot(at: 50, by: "daemon", problems: ["disk full"], notes: [])

    private var notes: [NodeNote] {
        [
            NodeNote(node: "old-name", key: "sweep.prune", value: "pruned 3", at: 10),
            NodeNote(node: "old-name", key: "sweep.ingest", value: "0 files", at: 11),
            NodeNote(node: "web1", key: "sweep.ingest", value: "2 files", at: 40),
            NodeNote(node: "web1", key: "health", value: health.json, at: 50),
            NodeNote(node: "web1", key: "config.loaded_at", value: "2026-12-05T07:00:00.000Z", at: 30),
            NodeNote(node: "vm2", key: "admission", value: "waiting for memory", at: 45),
            NodeNote(node: "vm2", key: "disk.checked", value: "writable", at: 46),
        ]
    }

    private func breaker(_ node: String, _ owner: String, _ state: String, at: Double) -> BreakerRecord {
        BreakerRecord(node: node, owner: owner, state: state, consecutiveFailures: 2, openUntil: 99, updatedAt: at)
    }

    @Test func eachDaemonGetsOnlyWhatItNoted() {
        let breakers = [breaker("web1", "handler h", "open", at: 5), breaker("vm2", "handler h", "closed", at: 6)]
        let byNode = DaemonNotes.byNode(notes, breakers)
        #expect(Set(byNode.keys) == ["old-name", "web1", "vm2"])
        let web1 = byNode["web1"] ?? DaemonNotes()
        #expect(web1.health == health && web1.configLoadedAt == "2026-12-05T07:00:00.000Z" && web1.admissionWait == nil)
        #expect(web1.sweeps.map(\.mode) == ["ingest"] && web1.sweeps.first?.result == "2 files")
        #expect(web1.breakers.map(\.state) == ["open"])
        let vm2 = byNode["vm2"] ?? DaemonNotes()
        #expect(vm2.health == nil && vm2.sweeps.isEmpty && vm2.admissionWait == "waiting for memory")
        #expect(vm2.breakers.map(\.state) == ["closed"] && vm2.breakerLines.isEmpty)
        #expect(web1.breakerLines.count == 1 && web1.breakerLines[0].hasPrefix("breaker:  handler h open until "))
        #expect(web1.healthLines(now: 53) == ["health:   UNHEALTHY (checked 3.0s ago by the daemon)", "  disk full"])
    }

    @Test func oneDaemonOnSQLiteShowsTheNewestOfEachWhicheverNameWroteIt() {
        let newest = DaemonNotes(
            notes: notes, breakers: [breaker("old-name", "handler h", "open", at: 1), breaker("web1", "handler h", "closed", at: 7)])
        #expect(newest.sweeps.map { "\($0.mode) \($0.result)" } == ["ingest 2 files", "prune pruned 3"])
        #expect(newest.health == health && newest.admissionWait == "waiting for memory")
        #expect(newest.breakers.map { "\($0.node) \($0.state)" } == ["web1 closed"])
        #expect(newest.sweepLines(now: 70).first == "sweep:    ingest    30.0s ago: 2 files")
    }
}
