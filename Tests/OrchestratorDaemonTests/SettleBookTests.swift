import OrchestratorCore
import OrchestratorPlatform
import Testing

@testable import OrchestratorDaemon

/// When an Inbox entry counts as arrived, with the clock handed in.
@Suite struct SettleBookTests {
    static let second: Int64 = 1_000_000_000

    func status(size: Int64 = 10, modifiedAt: Int64 = 100 * second, kind: FileStatus.Kind = .regular, links: UInt64 = 1)
        -> FileStatus
    {
        FileStatus(size: size, modified: modifiedAt, device: 1, inode: 7, kind: kind, linkCount: links)
    }

    /// Guarantee 11: a hard link, or content older than `settle` (a maildir message linked in), is complete as it
    /// stands; guarantee 10: so is anything that is not a regular file (it goes to Failed/ unopened).
    @Test func completeEntriesAreClaimedOnArrivalAndFreshFilesWait() {
        let now = 100 * Self.second
        func complete(_ s: FileStatus) -> Bool {
            SettleBook<Int>.completeOnArrival(s, wallNanoseconds: now, settle: 5_000)
        }
        #expect(!complete(status(modifiedAt: now)))  // being written, for all we know
        #expect(complete(status(modifiedAt: now, links: 2)))  // ln into Inbox
        #expect(complete(status(modifiedAt: now - 6 * Self.second)))  // old content
        #expect(!complete(status(modifiedAt: now - 4 * Self.second)))
        for kind in [FileStatus.Kind.symlink, .fifo, .socket, .characterDevice] {
            #expect(complete(status(modifiedAt: now, kind: kind)))
        }
    }

    @Test func aFileUnchangedForSettleIsCompleteAndOneStillWrittenIsLookedAtAgain() {
        var book = SettleBook<Int>(settle: 500)
        let name = RelativePath("big.iso")
        #expect(book.activity(name, status(size: 1), at: 1_000) == 1_500)
        book.armed(name, 1)
        // More events while the timer is armed: no second timer.
        #expect(book.activity(name, status(size: 2), at: 1_200) == nil)
        // The timer fires; the last activity was at 1,200: not yet.
        #expect(book.timerFired(name, status(size: 2), at: 1_500) == .lookAgain(at: 1_700))
        book.armed(name, 2)
        // It grew without an event (a write through mmap, or a lost event): the wait starts again.
        #expect(book.timerFired(name, status(size: 3), at: 1_700) == .lookAgain(at: 2_200))
        book.armed(name, 3)
        #expect(book.timerFired(name, status(size: 3), at: 2_200) == .complete)
        #expect(book.isEmpty)
    }

    @Test func aFileThatVanishedOrWasClaimedIsForgotten() {
        var book = SettleBook<Int>(settle: 500)
        let a = RelativePath("a"), b = RelativePath("b")
        _ = book.activity(a, status(), at: 0)
        book.armed(a, 10)
        _ = book.activity(b, status(), at: 0)
        book.armed(b, 11)
        #expect(book.timerFired(a, nil, at: 500) == .forgotten)
        #expect(!book.isSettling(a))
        #expect(book.remove(b) == 11)  // claimed by a rename event: its timer is cancelled
        #expect(book.timerFired(b, status(), at: 500) == .forgotten)
        _ = book.activity(a, status(), at: 600)
        book.armed(a, 12)
        #expect(book.removeAll() == [12])  // stopping
    }

    /// A reload that changes `settle` applies to files already waiting.
    @Test func aNewSettleAppliesToTheNextLook() {
        var book = SettleBook<Int>(settle: 5_000)
        let name = RelativePath("x")
        _ = book.activity(name, status(), at: 0)
        book.settle = 100
        #expect(book.timerFired(name, status(), at: 100) == .complete)
    }
}
