import Testing

@testable import OrchestratorPlatform

/// Which processes an earlier daemon left behind (the daemonising-worker fault: a grandchild that outlived its
/// worker and a clean stop), decided from what /proc shows.
@Suite struct OrphanFinderTests {
    private func environment(_ entries: String...) -> [UInt8] {
        entries.flatMap { Array($0.utf8) + [0] }
    }

    @Test func leadersAreWorkersAndOtherMarkedProcessesAreStrays() {
        let candidates = [
            OrphanFinder.Candidate(pid: 100, environment: environment("PATH=/bin", "ORCH_STATE_DIR=/srv/o/state"), sessionID: 100),
            // The grandchild of a worker that ran `setsid sh -c '… &'`: its own session, still marked.
            OrphanFinder.Candidate(pid: 205, environment: environment("ORCH_STATE_DIR=/srv/o/state", "HOME=/root"), sessionID: 204),
            OrphanFinder.Candidate(pid: 300, environment: environment("PATH=/bin"), sessionID: 300),
        ]
        let found = OrphanFinder.classify(candidates, stateDirectory: "/srv/o/state") { 1000 + UInt64($0) }
        #expect(found.workers == [WorkerHandle(pid: 100, startTime: 1100)])
        #expect(found.strays == [205])
    }

    @Test func anotherInstanceWhosePathMerelyStartsTheSameIsLeftAlone() {
        let candidates = [
            OrphanFinder.Candidate(pid: 10, environment: environment("ORCH_STATE_DIR=/srv/o/state2"), sessionID: 10),
            OrphanFinder.Candidate(pid: 11, environment: environment("ORCH_STATE_DIR=/srv/o/state/sub"), sessionID: 11),
            OrphanFinder.Candidate(pid: 12, environment: environment("X_ORCH_STATE_DIR=/srv/o/state"), sessionID: 12),
            // The marker inside another variable's value is not the marker.
            OrphanFinder.Candidate(pid: 13, environment: environment("NOTE=ORCH_STATE_DIR=/srv/o/state"), sessionID: 13),
        ]
        let found = OrphanFinder.classify(candidates, stateDirectory: "/srv/o/state") { _ in 1 }
        #expect(found.workers.isEmpty && found.strays.isEmpty)
    }

    @Test func aProcessThatExitedWhileBeingReadIsSkippedAndOnlyMarkedOnesAreAsked() {
        var asked: [Int32] = []
        let candidates = [
            OrphanFinder.Candidate(pid: 7, environment: environment("ORCH_STATE_DIR=/s"), sessionID: 7),
            OrphanFinder.Candidate(pid: 8, environment: environment("PATH=/bin"), sessionID: 8),
        ]
        let found = OrphanFinder.classify(candidates, stateDirectory: "/s") { pid in
            asked.append(pid)
            return nil
        }
        #expect(found.workers.isEmpty && found.strays.isEmpty)
        #expect(asked == [7])
    }
}
