import OrchestratorStore
import Testing

@testable import OrchestratorDaemon

@Suite struct NodeLivenessTests {
    private func node(
        _ name: String = "web1", instance: String = "a:/s", age: Double, stopped: Bool = false, hash: String = "h1"
    ) -> NodeRecord {
        NodeRecord(
            registration: NodeRegistration(
                name: name, instance: instance, pid: 42, version: "0.1.0", configHash: hash, roles: ["worker"]),
            startedAt: 0, heartbeatAt: 100, stoppedAt: stopped ? 100 : nil, heartbeatAge: age, leasesHeld: 0)
    }

    @Test func aSharedStoresDaemonIsAliveWhileItBeatsAndSilentAfterTwoMissedBeats() {
        #expect(NodeLiveness.condition(of: node(age: 29), shared: true, stateDirDaemonRuns: false) == .running)
        #expect(NodeLiveness.condition(of: node(age: 75), shared: true, stateDirDaemonRuns: false) == .running)
        #expect(NodeLiveness.condition(of: node(age: 75.5), shared: true, stateDirDaemonRuns: true) == .silent)
        #expect(NodeLiveness.condition(of: node(age: 500, stopped: true), shared: true, stateDirDaemonRuns: false) == .stopped)
    }

    @Test func onSQLiteTheStateDirsLockSaysWhetherTheDaemonRuns() {
        // It never beats there: an hour-old heartbeat is a daemon that runs.
        #expect(NodeLiveness.condition(of: node(age: 3600), shared: false, stateDirDaemonRuns: true) == .running)
        #expect(NodeLiveness.condition(of: node(age: 1), shared: false, stateDirDaemonRuns: false) == .silent)
        #expect(NodeLiveness.condition(of: node(age: 1, stopped: true), shared: false, stateDirDaemonRuns: false) == .stopped)
    }

    @Test func aNameIsRefusedOnlyWhileAnotherInstanceIsAliveUnderIt() throws {
        #expect(NodeLiveness.nameConflict(nil, instance: "a:/s") == nil)
        // The same instance restarting after a SIGKILL: its row still looks alive, and is its own.
        #expect(NodeLiveness.nameConflict(node(instance: "a:/s", age: 2), instance: "a:/s") == nil)
        let conflict = try #require(NodeLiveness.nameConflict(node(instance: "b:/t", age: 2), instance: "a:/s"))
        #expect(conflict.contains("\"web1\"") && conflict.contains("b:/t") && conflict.contains("pid 42") && conflict.contains("[node] name"))
        // Stopped cleanly, or silent past two heartbeats: the name is free to take.
        #expect(NodeLiveness.nameConflict(node(instance: "b:/t", age: 2, stopped: true), instance: "a:/s") == nil)
        #expect(NodeLiveness.nameConflict(node(instance: "b:/t", age: 76), instance: "a:/s") == nil)
    }

    @Test func daemonsThatDisagreeOnTheConfigAreNamedWithTheirHashes() throws {
        #expect(NodeLiveness.configDisagreement([]) == nil)
        #expect(NodeLiveness.configDisagreement([node(age: 1), node("vm2", age: 1)]) == nil)
        let text = try #require(
            NodeLiveness.configDisagreement([node(age: 1, hash: "0123456789abcdef"), node("vm2", age: 1, hash: "fedcba9876543210")]))
        #expect(text.contains("web1 0123456789ab") && text.contains("vm2 fedcba987654"))
    }
}
