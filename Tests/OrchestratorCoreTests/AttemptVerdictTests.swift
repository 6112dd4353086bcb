#if canImport(Glibc)
import Glibc
#endif
import Testing

@testable import OrchestratorCore

/// Guarantee 12 (a stop is not a failure) and the race of a success with the end of the shutdown grace.
@Suite struct AttemptVerdictTests {
    let window = AttemptVerdictPolicy.stopSignalWindow

    @Test func exitZeroIsSuccessEvenWhenTheGraceRanOutAtTheSameMoment() {
        let ending = AttemptEnding(termination: .exited(0), endedByShutdown: true, at: 5_000)
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: 1_000, now: 5_000) == .succeeded)
    }

    @Test func killedByTheDaemonAtTheGraceDeadlineIsInterrupted() {
        let ending = AttemptEnding(termination: .signaled(SIGKILL), endedByShutdown: true, at: 31_000)
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: 1_000, now: 31_000) == .interrupted)
    }

    @Test func signalFromOutsideWhileTheDaemonIsStoppingIsInterrupted() {
        // pm2 treekill, daemon first: the daemon is already draining when its worker dies of SIGINT.
        let ending = AttemptEnding(termination: .signaled(SIGINT), at: 1_010)
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: 1_000, now: 1_010) == .interrupted)
    }

    @Test func signalFromOutsideWaitsForAStopSignalThatMayFollow() {
        // pm2 treekill, workers first: the verdict waits for the window.
        let ending = AttemptEnding(termination: .signaled(SIGINT), at: 2_000)
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: nil, now: 2_000) == .undecided(until: 2_000 + window))
        // The daemon's own SIGINT arrives 400 ms later: part of the stop.
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: 2_400, now: 2_400) == .interrupted)
        // No stop signal within the window: an ordinary failure.
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: nil, now: 2_000 + window) == .failed)
        // A stop that comes later than the window does not rewrite it.
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: 2_000 + window + 1, now: 4_000) == .failed)
    }

    @Test func shellsReportingAStopSignalAsAnExitStatusCountLikeTheSignal() {
        for code: Int32 in [128 + SIGINT, 128 + SIGTERM, 128 + SIGHUP, 128 + SIGQUIT] {
            let ending = AttemptEnding(termination: .exited(code), at: 100)
            #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: 50, now: 100) == .interrupted, "exit \(code)")
        }
        // An ordinary failure during a stop is still a failure.
        let ending = AttemptEnding(termination: .exited(1), at: 100)
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: 50, now: 100) == .failed)
        #expect(AttemptVerdictPolicy.decide(AttemptEnding(termination: .exited(1), at: 100), stoppingSince: nil, now: 100) == .failed)
    }

    @Test func aTimeoutIsAFailureEvenDuringAStop() {
        let ending = AttemptEnding(termination: .signaled(SIGTERM), timedOut: true, at: 100)
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: 50, now: 100) == .failed)
        #expect(AttemptVerdictPolicy.decide(ending, stoppingSince: nil, now: 100) == .failed)
    }
}

@Suite struct SpawnThrottleTests {
    @Test func aShortageLimitsToWhatRunsAndBacksOffUpToThirtySeconds() {
        var throttle = SpawnThrottle()
        #expect(throttle.allowed(configured: 16) == 16)
        #expect(throttle.shortage(running: 5, reason: "Too many open files", errno: EMFILE) == 1_000)
        #expect(throttle.allowed(configured: 16) == 5)
        #expect(throttle.reason == "Too many open files" && throttle.outOfDescriptors)
        #expect(throttle.shortage(running: 4, reason: "x", errno: EAGAIN) == 2_000)
        #expect(!throttle.outOfDescriptors, "the last shortage says what is short")
        #expect(throttle.shortage(running: 4, reason: "x", errno: EAGAIN) == 4_000)
        for _ in 0..<10 { _ = throttle.shortage(running: 4, reason: "x", errno: EAGAIN) }
        #expect(throttle.shortage(running: 4, reason: "x", errno: EAGAIN) == 30_000)
        throttle.started()
        #expect(throttle.shortage(running: 4, reason: "x", errno: EAGAIN) == 1_000)
    }

    @Test func withNothingRunningOneMayStillTry() {
        var throttle = SpawnThrottle()
        _ = throttle.shortage(running: 0, reason: "x", errno: EAGAIN)
        #expect(throttle.allowed(configured: 8) == 1)
    }

    @Test func exitsGiveSlotsBackOneAtATimeUntilTheConfiguredMaximum() {
        var throttle = SpawnThrottle()
        _ = throttle.shortage(running: 2, reason: "x", errno: EAGAIN)
        throttle.workerExited(configured: 4)
        #expect(throttle.allowed(configured: 4) == 3)
        throttle.workerExited(configured: 4)
        #expect(throttle.allowed(configured: 4) == 4)
        #expect(throttle.limit == nil)
        #expect(throttle.reason == nil)
    }

    @Test func onlyResourceErrorsAreShortages() {
        for code in [EMFILE, ENFILE, EAGAIN, ENOMEM] { #expect(SpawnThrottle.isShortage(errno: code)) }
        for code in [ENOENT, EACCES, ENOEXEC, ENOTDIR] { #expect(!SpawnThrottle.isShortage(errno: code)) }
    }
}

@Suite struct DaemonPhaseTests {
    @Test func onlyStartingAndRunningAdmitNewWork() {
        #expect(DaemonPhase.starting.admitsNewWork)
        #expect(DaemonPhase.running.admitsNewWork)
        #expect(!DaemonPhase.pausedForDisk(path: "/x").admitsNewWork)
        #expect(!DaemonPhase.draining(since: 1, deadline: nil).admitsNewWork)
        #expect(!DaemonPhase.stopped.admitsNewWork)
    }

    @Test func stoppingSinceIsTheStopSignalsArrival() {
        #expect(DaemonPhase.draining(since: 42, deadline: 100).stoppingSince == 42)
        #expect(DaemonPhase.running.stoppingSince == nil)
        #expect(DaemonPhase.pausedForDisk(path: "/x").isStopping == false)
        #expect(DaemonPhase.stopped.isStopping)
    }
}
