import Testing

@testable import OrchestratorDaemon

/// What becomes of a job taken from the ready queue, from facts alone: what a reload or a hand in the processing area did
/// to it while it waited.
struct StartReviewTests {
    private func facts(
        ownerExists: Bool = true, fileInPlace: Bool? = true, attempts: Int = 0, recordedBudget: Int = 3, budget: Int = 3
    ) -> StartReview.Facts {
        .init(ownerExists: ownerExists, fileInPlace: fileInPlace, attempts: attempts, recordedBudget: recordedBudget, budget: budget)
    }

    @Test func aJobRunsItsNextAttempt() {
        #expect(StartReview.decide(facts()) == .run(number: 1, recordBudget: nil))
        #expect(StartReview.decide(facts(attempts: 2)) == .run(number: 3, recordBudget: nil))
        #expect(StartReview.decide(facts(fileInPlace: nil, attempts: 1)) == .run(number: 2, recordBudget: nil))
    }

    /// A reload removed its handler or task: matched again or failed by the dispatcher, whatever else is true.
    @Test func aJobWhoseOwnerIsGoneIsHandedBack() {
        #expect(StartReview.decide(facts(ownerExists: false, fileInPlace: false, attempts: 5)) == .ownerRemoved)
    }

    /// Moved away while it waited: no worker gets a path to nothing, and no attempt is counted.
    @Test func aFileGoneFromTheProcessingAreaFailsWithoutAnAttempt() {
        #expect(StartReview.decide(facts(fileInPlace: false, budget: 5)) == .fail(
            reason: "its file is no longer in the processing area (moved or removed while it waited)", couldNotStart: true,
            recordBudget: nil))
    }

    /// `show` said "attempts: 4 of 2" before: the budget in force is recorded, raised or lowered.
    @Test func aBudgetAReloadChangedIsRecordedBeforeItRuns() {
        #expect(StartReview.decide(facts(attempts: 1, recordedBudget: 2, budget: 5)) == .run(number: 2, recordBudget: 5))
        #expect(StartReview.decide(facts(attempts: 1, recordedBudget: 5, budget: 2)) == .run(number: 2, recordBudget: 2))
    }

    /// Lowered below what it used while it waited to retry: it ends, and the budget it ended under is recorded.
    @Test func aBudgetLoweredBelowTheAttemptsMadeEndsTheJob() {
        #expect(StartReview.decide(facts(attempts: 2, recordedBudget: 3, budget: 1)) == .fail(
            reason: "its attempts are used up (max_attempts = 1 since a reload)", couldNotStart: false, recordBudget: 1))
        #expect(StartReview.decide(facts(attempts: 2, recordedBudget: 3, budget: 2)) == .fail(
            reason: "its attempts are used up (max_attempts = 2 since a reload)", couldNotStart: false, recordBudget: 2))
    }
}
