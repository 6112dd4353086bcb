import Testing

@testable import OrchestratorCore

@Suite struct AttemptRowDraftsTests {
    @Test func anEndBeforeTheCommitGoesIntoTheStartsRowAndTheNextStateReplacesRunning() {
        var drafts = AttemptRowDrafts<String>()
        let start = drafts.begin(job: 7)
        #expect(drafts.draft(start).end == nil && !drafts.draft(start).stateReplaced)
        let taken1 = drafts.absorbEnd(job: 7, "exit 0")
        #expect(taken1)
        drafts.replaceState(job: 7)
        #expect(drafts.draft(start).end == "exit 0" && drafts.draft(start).stateReplaced)
    }

    @Test func afterTheCommitAnEndIsWrittenOnItsOwnAndTheStartReadsPlain() {
        var drafts = AttemptRowDrafts<String>()
        let start = drafts.begin(job: 7)
        drafts.committed()
        #expect(drafts.isEmpty)
        let taken2 = drafts.absorbEnd(job: 7, "exit 0")
        #expect(!taken2)
        drafts.replaceState(job: 7)
        // A write of this start still pending (recorded after the commit's snapshot) writes the plain start,
        // which the end's own update follows.
        #expect(drafts.draft(start).end == nil && !drafts.draft(start).stateReplaced)
    }

    /// A commit that fails keeps the drafts: the retried write reads what came meanwhile.
    @Test func aFailedCommitLeavesTheDraftToBeCompleted() {
        var drafts = AttemptRowDrafts<String>()
        let start = drafts.begin(job: 1)
        _ = drafts.draft(start)  // the write ran in a transaction that was rolled back
        let taken3 = drafts.absorbEnd(job: 1, "exit 3")
        #expect(taken3)
        #expect(drafts.draft(start).end == "exit 3")
    }

    @Test func onlyTheLatestAttemptOfAJobTakesItsEndAndOnlyOnce() {
        var drafts = AttemptRowDrafts<String>()
        let first = drafts.begin(job: 1)
        let taken4 = drafts.absorbEnd(job: 1, "could not start")
        #expect(taken4)
        let second = drafts.begin(job: 1)
        let other = drafts.begin(job: 2)
        let taken5 = drafts.absorbEnd(job: 1, "exit 0")
        #expect(taken5)
        let taken6 = drafts.absorbEnd(job: 1, "a second end")
        #expect(!taken6)
        #expect(drafts.draft(first).end == "could not start")
        #expect(drafts.draft(second).end == "exit 0")
        #expect(drafts.draft(other).end == nil)
        let taken7 = drafts.absorbEnd(job: 3, "no start recorded")
        #expect(!taken7)
    }
}
