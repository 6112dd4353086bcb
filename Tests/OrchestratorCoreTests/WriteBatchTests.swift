import Testing

@testable import OrchestratorCore

@Suite struct WriteBatchTests {
    @Test func aCommitCarriesEverythingRecordedBeforeItAndFreesItsNames() {
        var batch = WriteBatch<String, String>()
        batch.record("attempt 1 ended")
        batch.record("final path of a.txt")
        batch.free(afterCommit: "a.txt")
        let commit = batch.snapshot()
        #expect(commit.writes == ["attempt 1 ended", "final path of a.txt"])
        #expect(batch.committed(commit) == ["a.txt"])
        #expect(batch.isEmpty && batch.namesToFree.isEmpty)
    }

    /// The name-reuse case (guarantee 17): a name is never free before the commit that records where its
    /// file went has succeeded, so a newcomer of that name cannot be claimed onto an unrecorded move.
    @Test func aNameIsNotFreedByACommitThatFailedOrStartedBeforeIt() {
        var batch = WriteBatch<String, String>()
        batch.record("attempt ended")
        let early = batch.snapshot()
        // While that commit runs, the file moves and its final path is recorded.
        batch.free(afterCommit: "a.txt")
        batch.record("final path of a.txt")
        #expect(batch.committed(early).isEmpty)
        #expect(batch.writes == ["final path of a.txt"] && batch.namesToFree == ["a.txt"])

        // A commit that fails (no space) changes nothing: the next try carries the same, in order.
        let failed = batch.snapshot()
        batch.record("attempt 2 started")
        #expect(batch.writes == ["final path of a.txt", "attempt 2 started"] && batch.namesToFree == ["a.txt"])
        #expect(failed.writes == ["final path of a.txt"])

        let retry = batch.snapshot()
        #expect(retry.writes == ["final path of a.txt", "attempt 2 started"])
        #expect(batch.committed(retry) == ["a.txt"])
        #expect(batch.isEmpty)
    }

    @Test func namesAreFreedInTheOrderTheirFilesMoved() {
        var batch = WriteBatch<Int, String>()
        for (i, name) in ["c", "a", "b"].enumerated() {
            batch.record(i)
            batch.free(afterCommit: name)
        }
        #expect(batch.committed(batch.snapshot()) == ["c", "a", "b"])
    }
}
