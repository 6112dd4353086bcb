import OrchestratorConfig
import OrchestratorSchedule
import OrchestratorStore
import Testing

@testable import OrchestratorDaemon

/// What becomes of a due task run, from facts handed in: no store, no clock, no timer.
@Suite struct TaskDueReviewTests {
    typealias Facts = TaskDueReview.Facts

    static func book(_ runs: Int64...) -> TaskRunBook {
        var book = TaskRunBook()
        for run in runs { _ = book.add(run) }
        return book
    }

    static let succeeded = RunSummary(startedAt: 100, finishedAt: 110, result: .succeeded)

    @Test func aDisabledTaskRunsOnlyByHand() {
        for cause in [TaskCause.schedule, .catchUp, .reboot, .event] {
            #expect(TaskDueReview(Facts(cause: cause, enabled: false)).verdict == .drop(.disabled))
        }
        #expect(TaskDueReview(Facts(cause: .manual, enabled: false)).verdict == .run(endsWaiting: false))
        #expect(TaskDueReview.Drop.disabled.level == .debug)
    }

    /// A slot does not pile runs up behind a slow task; events and `task run` always queue.
    @Test func overlapLimitsScheduledRunsOnly() {
        let oneLive = Self.book(1), twoLive = Self.book(1, 2)
        #expect(TaskDueReview(Facts(cause: .schedule, overlap: .skip, runs: oneLive)).verdict == .drop(.overlapping))
        #expect(TaskDueReview(Facts(cause: .schedule, overlap: .queue, runs: oneLive)).verdict == .run(endsWaiting: false))
        #expect(TaskDueReview(Facts(cause: .catchUp, overlap: .queue, runs: twoLive)).verdict == .drop(.overlapping))
        #expect(TaskDueReview(Facts(cause: .event, overlap: .skip, runs: twoLive)).verdict == .run(endsWaiting: false))
        #expect(TaskDueReview(Facts(cause: .manual, overlap: .skip, runs: twoLive)).verdict == .run(endsWaiting: false))
    }

    /// Waiting for a prerequisite of the same slot is said once, quietly; a prerequisite that failed is news each time.
    @Test func aRunWaitsForItsPrerequisitesAndSaysSoOnlyWhenItIsNews() {
        let first = TaskDueReview(Facts(cause: .schedule, after: ["fetch"]))
        #expect(first.verdict == .wait(for: ["fetch"], say: .debug))
        let again = TaskDueReview(Facts(cause: .schedule, after: ["fetch"], hasPending: true))
        #expect(again.verdict == .wait(for: ["fetch"], say: nil))
        let failed = RunSummary(startedAt: 100, finishedAt: 110, result: .failed)
        let afterFailure = TaskDueReview(Facts(cause: .schedule, after: ["fetch", "parse"], latest: ["fetch": failed], hasPending: true))
        #expect(afterFailure.verdict == .wait(for: ["fetch", "parse"], say: .info))
    }

    /// A prerequisite that succeeded before this task's last start counts as not run since.
    @Test func aPrerequisiteMustHaveSucceededSinceTheLastStart() {
        let stale = TaskDueReview(Facts(cause: .schedule, after: ["fetch"], ownLastStart: 120, latest: ["fetch": Self.succeeded]))
        #expect(stale.verdict == .wait(for: ["fetch"], say: .debug))
        let fresh = TaskDueReview(Facts(cause: .schedule, after: ["fetch"], ownLastStart: 90, latest: ["fetch": Self.succeeded]))
        #expect(fresh.verdict == .run(endsWaiting: false))
        let released = TaskDueReview(Facts(cause: .schedule, after: ["fetch"], latest: ["fetch": Self.succeeded], hasPending: true))
        #expect(released.verdict == .run(endsWaiting: true))
    }

    /// A reload took the task's `after` away while a run of it waited: that run goes now and its wait ends (before, it
    /// ran at the next slot and `tasks` kept saying "waiting for ...").
    @Test func aRunThatWaitedGoesWhenItsPrerequisitesAreTakenAway() {
        #expect(TaskDueReview(Facts(cause: .schedule, after: [], hasPending: true)).verdict == .run(endsWaiting: true))
        #expect(TaskDueReview(Facts(cause: .event, after: [], hasPending: true)).verdict == .run(endsWaiting: true))
        #expect(TaskDueReview(Facts(cause: .schedule, after: [])).verdict == .run(endsWaiting: false))
    }

    @Test func aPrerequisiteThatCannotRunDropsTheSlotWithTheReason() {
        let missing = RunSummary(startedAt: 100, finishedAt: 100, result: .commandMissing)
        let review = TaskDueReview(Facts(cause: .event, after: ["fetch"], latest: ["fetch": missing], hasPending: true))
        guard case .drop(let drop) = review.verdict else {
            Issue.record("expected a drop, got \(review.verdict)")
            return
        }
        #expect(drop == .prerequisiteCannotRun("prerequisite fetch cannot run: its command is missing"))
        #expect(drop.level == .warning)
    }

    /// `task run` ignores prerequisites as it ignores `enabled` and `overlap`.
    @Test func aRunByHandDoesNotWaitForPrerequisites() {
        let review = TaskDueReview(Facts(cause: .manual, after: ["fetch"], hasPending: true))
        #expect(review.verdict == .run(endsWaiting: false))
    }

    /// The store is read for other daemons' runs only when the verdict turns on them: not for a run dropped anyway.
    @Test func onlyARunThatReachesItsPrerequisitesAsksForThem() {
        let after = ["fetch"]
        #expect(TaskDueReview.asksPrerequisites(Facts(cause: .schedule, after: after)))
        #expect(TaskDueReview.asksPrerequisites(Facts(cause: .event, runs: Self.book(1, 2), after: after)))
        #expect(!TaskDueReview.asksPrerequisites(Facts(cause: .schedule)), "no prerequisites")
        #expect(!TaskDueReview.asksPrerequisites(Facts(cause: .manual, after: after)), "task run ignores them")
        #expect(!TaskDueReview.asksPrerequisites(Facts(cause: .schedule, enabled: false, after: after)), "dropped: disabled")
        #expect(!TaskDueReview.asksPrerequisites(Facts(cause: .schedule, runs: Self.book(1), after: after)), "dropped: overlap")
    }

    @Test func thePlanPutsARunByHandFirstAndLetsASharedStoreDecideOverlap() {
        let top = 10
        #expect(
            TaskDueReview.plan(cause: .manual, priority: 3, overlap: .queue, sharedStore: true, topPriority: top)
                == .init(priority: 10, detail: "task run", liveLimit: nil))
        #expect(
            TaskDueReview.plan(cause: .schedule, priority: 3, overlap: .queue, sharedStore: true, topPriority: top)
                == .init(priority: 3, detail: "scheduled slot", liveLimit: 2))
        #expect(
            TaskDueReview.plan(cause: .catchUp, priority: 3, overlap: .skip, sharedStore: true, topPriority: top)
                == .init(priority: 3, detail: "missed slot (catch_up = once)", liveLimit: 1))
        #expect(TaskDueReview.plan(cause: .event, priority: 3, overlap: .skip, sharedStore: true, topPriority: top).liveLimit == nil)
        #expect(TaskDueReview.plan(cause: .reboot, priority: 3, overlap: .skip, sharedStore: false, topPriority: top).liveLimit == nil)
    }

    /// Another daemon's newer run or start wins; an older one in the store does not undo what this daemon knows.
    @Test func theStoresRunsAreTakenOnlyWhenNewer() {
        let mine = RunSummary(startedAt: 200, finishedAt: 210, result: .failed)
        let older = RunSummary(startedAt: 100, finishedAt: 110, result: .succeeded)
        let newer = RunSummary(startedAt: 300, finishedAt: 310, result: .succeeded)
        let merged = TaskDueReview.merged(
            ["a": mine, "b": mine], starts: ["a": 200, "b": 200],
            stored: ["a": older, "b": newer, "c": newer], storedStarts: ["a": 150, "b": 300, "c": 300])
        #expect(merged.latest == ["a": mine, "b": newer, "c": newer])
        #expect(merged.starts == ["a": 200, "b": 300, "c": 300])
    }
}
