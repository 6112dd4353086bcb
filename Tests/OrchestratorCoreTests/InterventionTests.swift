#if canImport(Glibc)
import Glibc
#endif
import Testing

@testable import OrchestratorCore

/// What `cancel` and `priority` do to a job in each state, and how a cancelled worker's end is judged.
@Suite struct InterventionTests {
    @Test func cancelFailsEveryWaitingJobAtOnce() {
        for state in [JobState.queued, .retryWait, .breakerWait, .paused] {
            #expect(Intervention.cancel(state, daemonRuns: true) == .failNow, "\(state)")
            #expect(Intervention.cancel(state, daemonRuns: false) == .failNow, "\(state)")
        }
    }

    @Test func cancelEndsARunningAttemptOnlyThroughItsDaemon() {
        #expect(Intervention.cancel(.running, daemonRuns: true) == .endRunningAttempt)
        // Without a daemon, "running" is what a daemon that died left behind.
        #expect(Intervention.cancel(.running, daemonRuns: false) == .endLeftoverThenFail)
    }

    @Test func cancelRefusesFinishedAndUnknownJobs() {
        #expect(Intervention.cancel(.done, daemonRuns: true) == .refuse(.finished(.done)))
        #expect(Intervention.cancel(.failed, daemonRuns: false) == .refuse(.finished(.failed)))
        #expect(Intervention.cancel(nil, daemonRuns: true) == .refuse(.unknown))
    }

    @Test func priorityMovesQueuedJobsAndRecordsForOtherWaitingOnes() {
        #expect(Intervention.priority(.queued, to: 9) == .requeue)
        for state in [JobState.retryWait, .breakerWait, .paused] {
            #expect(Intervention.priority(state, to: 1) == .record, "\(state)")
        }
    }

    @Test func priorityRefusesRunningFinishedUnknownAndOutOfRange() {
        #expect(Intervention.priority(.running, to: 5) == .refuse(.notWaiting(.running)))
        #expect(Intervention.priority(.done, to: 5) == .refuse(.notWaiting(.done)))
        #expect(Intervention.priority(nil, to: 5) == .refuse(.unknown))
        #expect(Intervention.priority(.queued, to: 0) == .refuse(.outOfRange(0)))
        #expect(Intervention.priority(.queued, to: 11) == .refuse(.outOfRange(11)))
        // Out of range is refused whatever the job: it is bad input before it is a question of state.
        #expect(Intervention.priority(nil, to: 11) == .refuse(.outOfRange(11)))
    }

    @Test func cancelReasonCarriesTheUsersText() {
        #expect(Intervention.cancelReason("backend down") == "cancelled: backend down")
        #expect(Intervention.cancelReason("  spaced out \n") == "cancelled: spaced out")
        #expect(Intervention.cancelReason(nil) == "cancelled: by hand")
        #expect(Intervention.cancelReason("   ") == "cancelled: by hand")
    }

    // MARK: The cancelled worker's verdict

    @Test func aCancelledWorkerKilledByItsSignalIsCancelledNotFailedOrUndecided() {
        let ending = AttemptEnding(termination: .signaled(SIGTERM), cancelled: true, at: 1000)
        // Without the cancel this would wait for a stop signal (pm2's treekill), then fail and retry.
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: nil, now: 1000) == .cancelled)
        let killed = AttemptEnding(termination: .signaled(SIGKILL), cancelled: true, at: 1000)
        #expect(AttemptVerdictPolicy.decide(killed, stoppingSince: nil, now: 1000) == .cancelled)
    }

    @Test func aCancelledWorkerThatExitsNonZeroOrTimesOutIsCancelled() {
        let exited = AttemptEnding(termination: .exited(143), cancelled: true, at: 1000)
        #expect(AttemptVerdictPolicy.decide(exited, stoppingSince: nil, now: 1000) == .cancelled)
        let timedOut = AttemptEnding(termination: .signaled(SIGKILL), timedOut: true, cancelled: true, at: 1000)
        #expect(AttemptVerdictPolicy.decide(timedOut, stoppingSince: nil, now: 1000) == .cancelled)
        // A stop that ends it as well does not bring it back at the next start.
        let stopped = AttemptEnding(termination: .signaled(SIGKILL), endedByShutdown: true, cancelled: true, at: 1000)
        #expect(AttemptVerdictPolicy.decide(stopped, stoppingSince: 900, now: 1000) == .cancelled)
    }

    @Test func aWorkerThatFinishedItsWorkAsTheCancelArrivedSucceeded() {
        let ending = AttemptEnding(termination: .exited(0), cancelled: true, at: 1000)
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: nil, now: 1000) == .succeeded)
    }

    // MARK: Ready queue

    func drain(_ queue: inout ReadyQueue<String>, at now: UInt64) -> [String] {
        var order: [String] = []
        while let entry = queue.pop(at: now) { order.append(entry.id) }
        return order
    }

    @Test func reprioritizeMovesAQueuedEntryAndKeepsItsPlaceByArrival() {
        var queue = ReadyQueue<String>(agingStep: 0)
        queue.push("a", priority: 5, at: 10)
        queue.push("b", priority: 5, at: 20)
        queue.push("c", priority: 9, at: 30)
        queue.push("d", priority: 9, at: 40)
        // b arrived before c and d: at priority 9 it goes first among them; a stays at 5.
        let moved = queue.reprioritize("b", to: 9)
        #expect(moved)
        #expect(queue.count == 4)
        #expect(drain(&queue, at: 100) == ["b", "c", "d", "a"])
    }

    @Test func reprioritizeDownwardsLetsTheOthersPass() {
        var queue = ReadyQueue<String>(agingStep: 0)
        queue.push("first", priority: 5, at: 10)
        queue.push("second", priority: 5, at: 20)
        let moved = queue.reprioritize("first", to: 1)
        #expect(moved)
        #expect(drain(&queue, at: 100) == ["second", "first"])
    }

    @Test func reprioritizeKeepsTheAgingEarnedSoFar() {
        var queue = ReadyQueue<String>(agingStep: 100)
        queue.push("old", priority: 5, at: 0)
        let moved = queue.reprioritize("old", to: 2)
        #expect(moved)
        queue.push("new", priority: 5, at: 1000)
        // "old" has waited 1000 ms: 2 + 10 steps is capped at 10, above "new"'s 5.
        #expect(drain(&queue, at: 1000) == ["old", "new"])
    }

    @Test func reprioritizeOfAnIDNotQueuedChangesNothing() {
        var queue = ReadyQueue<String>(agingStep: 0)
        queue.push("a", priority: 5, at: 0)
        let moved = queue.reprioritize("missing", to: 9)
        #expect(!moved)
        #expect(queue.count == 1)
        #expect(drain(&queue, at: 1) == ["a"])
    }
}

/// Which daemon of a shared store takes a cancel or priority request: the job's holder, and only it.
@Suite struct RequestHolderTests {
    private func facts(
        runsHere: Bool = false, queuedHere: Bool = false, state: JobState? = .queued, owner: String? = nil,
        registrar: String? = nil, alive: Set<String> = ["a", "b"]
    ) -> Intervention.RequestFacts {
        Intervention.RequestFacts(
            me: "a", runsHere: runsHere, queuedHere: queuedHere, state: state, owner: owner, registrar: registrar,
            aliveDaemons: alive)
    }

    @Test func aJobRunningHereIsTakenHereWhateverTheStoreSays() {
        #expect(Intervention.takesRequest(facts(runsHere: true, state: .running, owner: "b")))
        #expect(Intervention.takesRequest(facts(runsHere: true, state: .done)))
    }

    @Test func aJobRunningElsewhereIsItsOwners() {
        #expect(!Intervention.takesRequest(facts(state: .running, owner: "b")))
        // Queued here a moment ago, claimed by another daemon since: the memory is stale.
        #expect(!Intervention.takesRequest(facts(queuedHere: true, state: .running, owner: "b")))
        // Recorded as running here, its worker already reaped: this daemon answers (it finished).
        #expect(Intervention.takesRequest(facts(state: .running, owner: "a")))
    }

    @Test func aWaitingJobIsTakenByTheDaemonWhoseQueueHasIt() {
        #expect(Intervention.takesRequest(facts(queuedHere: true, registrar: "b")))
        #expect(!Intervention.takesRequest(facts(registrar: "b")))
    }

    @Test func aJobOnNoQueueIsItsLastOwnersElseItsRegistrars() {
        #expect(!Intervention.takesRequest(facts(state: .paused, owner: "b", registrar: "a")))
        #expect(Intervention.takesRequest(facts(state: .paused, owner: "a", registrar: "b")))
        #expect(Intervention.takesRequest(facts(state: .breakerWait, registrar: "a")))
        #expect(!Intervention.takesRequest(facts(state: .breakerWait, registrar: "b")))
    }

    @Test func aJobWhoseHolderIsGoneOrUnknownIsTakenByWhoeverReadsTheRequest() {
        #expect(Intervention.takesRequest(facts(state: .queued, registrar: "b", alive: ["a"])))
        #expect(Intervention.takesRequest(facts(state: .retryWait, owner: "b", alive: ["a"])))
        #expect(Intervention.takesRequest(facts(state: .queued)))
    }

    @Test func anEndedOrUnknownJobIsAnsweredByWhoeverReadsTheRequest() {
        #expect(Intervention.takesRequest(facts(state: .done, owner: "b")))
        #expect(Intervention.takesRequest(facts(state: .failed, owner: "b")))
        #expect(Intervention.takesRequest(facts(state: nil)))
    }
}
