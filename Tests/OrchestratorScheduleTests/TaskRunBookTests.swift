import OrchestratorConfig
import Testing

@testable import OrchestratorSchedule

@Suite struct TaskRunBookTests {
    @Test func oneRunIsActiveTheOthersWaitInOrder() {
        var book = TaskRunBook()
        let added = [book.add(1), book.add(2), book.add(3)]
        #expect(added == [true, false, false])
        #expect(book.live == [1, 2, 3])
        let next = [book.finished(1), book.finished(2), book.finished(3)]
        #expect(next == [2, 3, nil])
        #expect(book.isEmpty)
    }

    @Test func aRunQueuedByHandGoesAheadOfHeldRunsAfterEarlierOnes() {
        var book = TaskRunBook()
        _ = book.add(1)
        _ = book.add(2)
        let byHand: Set<Int64> = [10, 11]
        _ = book.add(10, ahead: true, isAhead: { byHand.contains($0) })
        _ = book.add(11, ahead: true, isAhead: { byHand.contains($0) })
        #expect(book.held == [10, 11, 2])
    }

    @Test func overlapSkipAdmitsNothingWhileARunIsLiveQueueAdmitsOneWaiting() {
        var book = TaskRunBook()
        #expect(book.admitsScheduled(overlap: .skip))
        _ = book.add(1)
        #expect(!book.admitsScheduled(overlap: .skip))
        #expect(book.admitsScheduled(overlap: .queue))
        _ = book.add(2)
        #expect(!book.admitsScheduled(overlap: .queue))
    }

    @Test func heldRunsThatEndedMeanwhileAreSkipped() {
        var book = TaskRunBook()
        _ = book.add(1)
        _ = book.add(2)
        _ = book.add(3)
        let next = book.finished(1, stillLive: { $0 != 2 })
        #expect(next == 3)
        // A held run that ends (dropped by a reload) leaves the book without becoming active.
        _ = book.add(4)
        let after = book.finished(4)
        #expect(after == nil)
        #expect(book.active == 3 && book.held.isEmpty)
    }
}
