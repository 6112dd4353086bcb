import Testing

@testable import OrchestratorCore

@Suite struct NameLedgerTests {
    @Test func aNameIsTakenFromClaimUntilItsOwnJobReleasesIt() {
        var ledger = NameLedger()
        let name = RelativePath("a.txt")
        ledger.claimed(name)
        #expect(ledger.holder(of: name) == .claiming)
        ledger.assign(name, to: 7)
        #expect(ledger.holder(of: name) == .job(7))
        // Another job's release (a recovered duplicate, say) does not free it.
        _ = ledger.release(name, job: 8)
        #expect(ledger.isTaken(name))
        _ = ledger.release(name, job: 7)
        #expect(!ledger.isTaken(name))
    }

    @Test func releasingANameWakesTheSameNameItsFoldersAndWhatIsBelowIt() {
        var ledger = NameLedger()
        ledger.assign(RelativePath("a"), to: 1)
        for waiting in ["a", "a/b", "a/b/c", "ab", "b/a", "x"] { ledger.wait(RelativePath(waiting)) }
        let woken = ledger.release(RelativePath("a"), job: 1)
        #expect(woken == [RelativePath("a"), RelativePath("a/b"), RelativePath("a/b/c")])
        #expect(ledger.waitingCount == 3)
        // A nested file leaving wakes the folder-named file that waited for the folder to go.
        ledger.assign(RelativePath("b/a"), to: 2)
        ledger.wait(RelativePath("b"))
        #expect(ledger.release(RelativePath("b/a"), job: 2) == [RelativePath("b"), RelativePath("b/a")])
    }
}
