import OrchestratorCore
import Testing

@Suite struct ClaimLedgerTests {
    @Test func aHeldClaimIsHandedInWithTheJobsEnd() {
        var ledger = ClaimLedger()
        ledger.took(7, claim: 3, isTaskRun: false)
        #expect(ledger.holds(7) && ledger.claim(of: 7)?.number == 3 && ledger.held == [7: 3] && ledger.holdsAny)
        let handedIn = ledger.handIn(7)
        #expect(handedIn == ClaimLedger.Claim(number: 3, isTaskRun: false))
        #expect(!ledger.holds(7) && !ledger.holdsAny && !ledger.isLost(7) && !ledger.anyLost)
    }

    @Test func aTaskRunsClaimSaysSo() {
        var ledger = ClaimLedger()
        ledger.took(1, claim: 1, isTaskRun: true)
        ledger.took(2, claim: 5, isTaskRun: false)
        #expect(ledger.held == [1: 1, 2: 5])
        let task = ledger.handIn(1), file = ledger.handIn(2)
        #expect(task?.isTaskRun == true && file?.isTaskRun == false)
    }

    /// A renewal found the lease gone while the worker runs: the worker is ended, and its end writes nothing.
    @Test func aClaimFoundLostAtRenewalLeavesNothingToHandIn() {
        var ledger = ClaimLedger()
        ledger.took(4, claim: 2, isTaskRun: false)
        let first = ledger.renewalFoundLost(4), second = ledger.renewalFoundLost(4)
        #expect(first, "held: its worker must be ended")
        #expect(!second, "found lost twice: nothing more to do")
        #expect(ledger.isLost(4) && !ledger.holds(4) && !ledger.holdsAny)
        let handedIn = ledger.handIn(4)
        #expect(handedIn == nil, "the end of a lost claim is not written")
        #expect(ledger.isLost(4))
        // The worker's exit (or its finished file) settles it, once.
        let settled = ledger.settleLost(4), settledAgain = ledger.settleLost(4)
        #expect(settled && !settledAgain && !ledger.isLost(4) && !ledger.anyLost)
    }

    /// The stalled daemon's end reaches the store after another daemon took the job back: refused, and the file
    /// is not moved from here.
    @Test func anEndTheStoreRefusedMarksTheJobLost() {
        var ledger = ClaimLedger()
        ledger.took(9, claim: 1, isTaskRun: false)
        let handedIn = ledger.handIn(9)
        #expect(handedIn != nil && !ledger.isLost(9))
        ledger.endRefused(9)
        #expect(ledger.isLost(9) && ledger.anyLost)
        let settled = ledger.settleLost(9)
        #expect(settled && !ledger.anyLost)
    }

    @Test func aRenewalOfAJobNeverHeldChangesNothing() {
        var ledger = ClaimLedger()
        let found = ledger.renewalFoundLost(5)
        #expect(!found && !ledger.isLost(5) && !ledger.holdsAny)
    }

    /// Lost, then queued again by the store and won by this daemon once more: held afresh, under the new claim, and
    /// a late refusal of the old claim does not touch the new one.
    @Test func aJobClaimedAgainAfterItsClaimWasLostIsHeldAfresh() {
        var ledger = ClaimLedger()
        ledger.took(3, claim: 1, isTaskRun: false)
        let lost = ledger.renewalFoundLost(3)
        #expect(lost)
        ledger.took(3, claim: 2, isTaskRun: false)
        #expect(!ledger.isLost(3) && ledger.claim(of: 3)?.number == 2)
        ledger.endRefused(3)
        #expect(!ledger.isLost(3) && ledger.claim(of: 3)?.number == 2)
        let handedIn = ledger.handIn(3)
        #expect(handedIn?.number == 2)
    }
}
