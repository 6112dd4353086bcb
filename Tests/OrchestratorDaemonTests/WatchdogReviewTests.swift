import OrchestratorCore
import Testing

@testable import OrchestratorDaemon

/// The watchdog sweep's decisions from facts handed in: no disk, no clock, no sleep.
@Suite struct WatchdogReviewTests {
    @Test func nothingWrongIsHealthyAndDoesNothing() {
        let review = WatchdogReview(.init(now: 1_000_000))
        #expect(review.problems.isEmpty && review.actions.isEmpty)
    }

    /// A worker past its timeout is ended by its own timer; the sweep steps in only past the slack, once.
    @Test func anAttemptIsOverdueOnlyPastItsTimeoutAndTheSlack() {
        let slack = WatchdogReview.overdueSlackMilliseconds
        func attempt(_ id: Int64, startedAt: UInt64, timedOut: Bool = false) -> WatchdogReview.RunningAttempt {
            .init(jobID: id, name: RelativePath("f\(id).txt"), startedAt: startedAt, timeoutMilliseconds: 60_000, timedOut: timedOut)
        }
        let now: UInt64 = 10_000_000
        let review = WatchdogReview(.init(
            running: [
                attempt(1, startedAt: now - 60_000 - slack),  // exactly at the limit: not yet
                attempt(2, startedAt: now - 60_000 - slack - 1),
                attempt(3, startedAt: now - 600_000, timedOut: true),  // its timeout already ended it
                attempt(4, startedAt: now + 5),  // a start stamped after this reading of the clock
            ],
            now: now))
        #expect(review.actions == [.endOverdue(jobID: 2)])
        #expect(review.problems == ["job 2 (f2.txt) ran past its timeout; ending it"])
    }

    /// Workers that cannot start at all (an open-file limit the daemon's own descriptors nearly fill) make the daemon
    /// unhealthy, with the limit to raise; a shortage while workers run, or a first one, is the throttle's business.
    @Test func startsThatKeepFailingWithNothingRunningAreAProblem() {
        let tooMany = "cannot create output pipes: Too many open files"
        let failing = WatchdogReview(.init(startShortages: 3, startShortage: tooMany, openFileLimit: 24))
        #expect(failing.problems == [
            "no worker can start: cannot create output pipes: Too many open files (3 starts in a row, none running); "
                + "the open-file limit is 24: raise LimitNOFILE= (systemd) or ulimit -n",
        ])
        let memory = WatchdogReview(.init(startShortages: 5, startShortage: "cannot run w: Cannot allocate memory"))
        #expect(memory.problems == ["no worker can start: cannot run w: Cannot allocate memory (5 starts in a row, none running)"])
        #expect(WatchdogReview(.init(startShortages: 2, startShortage: tooMany, openFileLimit: 24)).problems.isEmpty)
        let running = WatchdogReview.RunningAttempt(
            jobID: 1, name: RelativePath("a.txt"), startedAt: 0, timeoutMilliseconds: 60_000, timedOut: false)
        #expect(WatchdogReview(.init(running: [running], startShortages: 9, startShortage: tooMany)).problems.isEmpty)
    }

    /// Stuck moves are reported and retried; while paused for a full disk the pause's own retry tries them.
    @Test func stuckMovesRetryUnlessPaused() {
        let stuck = WatchdogReview.Stuck(count: 3, example: RelativePath("a.txt"), reason: "rename a to b: No space left on device")
        let running = WatchdogReview(.init(stuck: stuck))
        #expect(running.actions == [.retryStuckMoves])
        #expect(running.problems == ["stuck: 3 files in the processing area (a.txt: rename a to b: No space left on device)"])
        let paused = WatchdogReview(.init(pausedFor: "no space on /srv/done", stuck: stuck))
        #expect(paused.actions.isEmpty)
        #expect(paused.problems.first == "paused: no space on /srv/done")
    }

    @Test(arguments: [
        (WatchdogReview.InboxWatch.watched, [WatchdogReview.Action](), 0),
        (.notListing, [], 0),
        (.replaced, [.rewatchReplacedInbox], 0),  // watched again at once: not a problem
        (.notWatching, [.restartWatch], 1),
        (.astray("Inbox is now /elsewhere"), [], 1),  // neither watched nor walked until it is the store's again
    ])
    func inboxWatch(state: WatchdogReview.InboxWatch, actions: [WatchdogReview.Action], problems: Int) {
        let review = WatchdogReview(.init(inbox: state, ingestEvery: "5m"))
        #expect(review.actions == actions)
        #expect(review.problems.count == problems)
        if state == .notWatching { #expect(review.problems == ["the inotify watch on Inbox is not active; new files are found by the ingest sweep every 5m"]) }
    }

    /// Entries no path can reach: counted per walk (a claim refused twice counts once), said with a few examples, and
    /// gone once a walk finds none.
    @Test func unreachableEntriesAreCountedPerWalk() {
        var entries = UnreachableEntries()
        #expect(entries.problem == nil)
        entries.walkStarted()
        entries.claimRefused(RelativePath("a/long.txt"))
        entries.claimRefused(RelativePath("a/long.txt"))
        entries.walkFound(count: 2, examples: [RelativePath("L00"), RelativePath("L01")])
        #expect(entries.count == 3)
        #expect(entries.examples == [RelativePath("a/long.txt"), RelativePath("L00"), RelativePath("L01")])
        let review = WatchdogReview(.init(unreachable: entries.problem))
        #expect(review.problems.count == 1 && review.problems[0].hasPrefix("3 entries in Inbox with a path too long"))
        entries.walkStarted()
        entries.walkFound(count: 0, examples: [])
        #expect(entries.problem == nil)
    }

    /// Every problem at once, in the order the health snapshot lists them.
    @Test func problemsKeepTheirOrder() {
        let review = WatchdogReview(.init(
            diskProblems: ["disk: 1% free on /srv"], pausedFor: "no space on /srv",
            inbox: .notWatching, ingestEvery: "1h", databaseGone: "/srv/state/orchestrator.sqlite",
            lockProblems: ["the lock file /srv/Inbox/.orchestrator.lock was replaced"]))
        #expect(review.problems.map { String($0.prefix(12)) } == [
            "disk: 1% fre", "paused: no s", "the inotify ", "the lock fil", "the state da",
        ])
    }

    /// Only a database file gone from under the daemon is what `status` cannot learn from the store it reads.
    @Test func aGoneDatabaseIsTheStoresTrouble() {
        let gone = WatchdogReview(.init(databaseGone: "/srv/state/orchestrator.sqlite-wal"))
        #expect(gone.storeTrouble == gone.problems.first)
        #expect(gone.storeTrouble?.contains("orchestrator.sqlite-wal was removed or replaced") == true)
        #expect(WatchdogReview(.init(diskProblems: ["disk: 1% free on /srv"], pausedFor: "no space on /srv")).storeTrouble == nil)
    }
}
