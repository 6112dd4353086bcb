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

    /// Guarantee 3: a file seen created is not complete while its creator has it open, however long it pauses between
    /// writes; its close starts the settle wait. (Before, a writer pausing longer than `settle` had half a file run.)
    @Test func aCreatedFileWaitsForItsWritersCloseThenSettles() {
        var book = SettleBook<Int>(settle: 500)
        let name = RelativePath("download.bin")
        // Created: no timer while the writer has it open, and writes arm none.
        #expect(book.activity(name, status(size: 0), at: 1_000, writer: .opened) == nil)
        #expect(book.activity(name, status(size: 1_000), at: 1_100) == nil)
        // A timer armed before (a walk noted it) finds it still open: it waits for the close, with no timer.
        book.armed(name, 1)
        #expect(book.timerFired(name, status(size: 1_000), at: 5_000) == .waitingForClose)
        #expect(book.isSettling(name))
        // A second open (a reader, or another writer): one close is not enough.
        #expect(book.activity(name, status(size: 1_000), at: 5_100, writer: .opened) == nil)
        #expect(book.activity(name, status(size: 1_000), at: 5_200, writer: .closed) == nil)
        // The last close: settle from there.
        #expect(book.activity(name, status(size: 2_000), at: 6_000, writer: .closed) == 6_500)
        book.armed(name, 2)
        #expect(book.timerFired(name, status(size: 2_000), at: 6_500) == .complete)
        // A close the watch saw no open for (opened before the daemon watched) does not go below zero.
        #expect(book.activity(name, status(), at: 7_000, writer: .closed) == 7_500)
        book.armed(name, 3)
        #expect(book.timerFired(name, status(), at: 7_500) == .complete)
    }

    /// A close lost in an overflow, or one that never names the file (O_TMPFILE linked in), must not keep it for ever.
    @Test func writersAreForgottenAfterAnOverflowOrASilentIngestInterval() {
        var book = SettleBook<Int>(settle: 500)
        let open = RelativePath("open"), settling = RelativePath("settling")
        _ = book.activity(open, status(size: 5), at: 1_000, writer: .opened)
        #expect(book.activity(settling, status(), at: 1_000) == 1_500)
        book.armed(settling, 7)
        // The walk of the ingest sweep: unchanged for the whole interval, or not.
        #expect(!book.writerWentSilent(open, status(size: 5), at: 60_999, after: 60_000))
        #expect(!book.writerWentSilent(open, status(size: 6), at: 61_000, after: 60_000))
        #expect(book.writerWentSilent(open, status(size: 5), at: 61_000, after: 60_000))
        #expect(!book.writerWentSilent(settling, status(), at: 61_000, after: 60_000))  // no writer known: the timer decides
        // An overflow: the files waiting for a close go back to the settle rule (timers for those without one).
        let due = book.forgetWriters(at: 2_000)
        #expect(due.map(\.0) == [open] && due.map(\.1) == [2_500])
        book.armed(open, 8)
        #expect(book.timerFired(open, status(size: 5), at: 2_500) == .complete)
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
