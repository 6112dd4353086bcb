import OrchestratorStore
import Testing

@testable import OrchestratorDaemon

/// The prune's one line (log, `status`, `sweep`) says what each engine did with the space: SQLite hands pages back
/// and shrinks its file pair; a PostgreSQL server reclaims the space itself, which "0 pages freed" misstated.
@Suite struct PruneSummaryTests {
    func outcome(_ reclaim: ReclaimResult) -> Pruner.Outcome {
        var outcome = Pruner.Outcome()
        outcome.rows.jobs = 3
        outcome.reclaim = reclaim
        (outcome.bytesBefore, outcome.bytesAfter, outcome.seconds) = (2_000_000, 1_000_000, 1.25)
        return outcome
    }

    @Test func sqliteSaysWhatPagesWentBackAndWhatItsFilesTakeNow() {
        let summary = outcome(ReclaimResult(switchedToIncremental: false, pagesFreed: 7)).summary
        #expect(summary.hasPrefix("deleted 3 jobs (0 attempts, 0 transitions)"), "\(summary)")
        #expect(summary.hasSuffix("; 7 pages freed; database and WAL 2.0 MB -> 1.0 MB in 1.2s"), "\(summary)")
    }

    @Test func aServerThatReclaimsTheSpaceItselfIsNotSaidToHaveFreedNothing() {
        let summary = outcome(ReclaimResult(switchedToIncremental: false, pagesFreed: 0, byTheServer: true)).summary
        #expect(summary.hasSuffix("; the store's tables 2.0 MB -> 1.0 MB (the server reclaims the space itself) in 1.2s"), "\(summary)")
        #expect(!summary.contains("pages freed") && !summary.contains("WAL"), "\(summary)")
    }
}
