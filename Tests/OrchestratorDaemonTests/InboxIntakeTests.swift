import OrchestratorCore
import OrchestratorPlatform
import Testing

@testable import OrchestratorDaemon

/// Which of Inbox's watch events count for what, from the event and the rules alone: no watch, no folder.
@Suite struct InboxIntakeTests {
    static let hidden = RelativePath(".part")
    static let file = RelativePath("a.txt")
    static let folder = RelativePath("sub")

    static func rules(recursive: Bool = true, settling: Set<RelativePath> = []) -> InboxIntake.Rules {
        InboxIntake.Rules(
            isInput: { $0 != hidden }, recursive: recursive, skipsFolder: { $0 == RelativePath(".processing") },
            isSettling: { settling.contains($0) })
    }

    @Test func aFileRenamedInIsClaimedAndOneWrittenInPlaceSettles() {
        let rules = Self.rules()
        #expect(InboxIntake.step(for: .renamedIn(Self.file), rules) == .claim(Self.file))
        #expect(InboxIntake.step(for: .created(Self.file), rules) == .arrived(Self.file))
        #expect(InboxIntake.step(for: .modified(Self.file), rules) == .activity(Self.file, .unknown))
        #expect(InboxIntake.step(for: .closedAfterWrite(Self.file), rules) == .activity(Self.file, .closed))
        #expect(InboxIntake.step(for: .closedWithoutWrite(Self.file), rules) == .activity(Self.file, .closed))
    }

    /// An open counts only for a file still being written: a reader's open of a file that is not waiting says nothing.
    @Test func anOpenCountsOnlyForAFileStillSettling() {
        #expect(InboxIntake.step(for: .opened(Self.file), Self.rules()) == nil)
        #expect(InboxIntake.step(for: .opened(Self.file), Self.rules(settling: [Self.file])) == .activity(Self.file, .opened))
    }

    @Test func entriesNoHandlerMayTakeAreIgnored() {
        let rules = Self.rules(settling: [Self.hidden])
        let events: [WatchEvent] = [
            .renamedIn(Self.hidden), .created(Self.hidden), .modified(Self.hidden), .opened(Self.hidden),
            .closedAfterWrite(Self.hidden), .closedWithoutWrite(Self.hidden),
        ]
        for event in events { #expect(InboxIntake.step(for: event, rules) == nil, "\(event)") }
    }

    @Test func aNewFolderIsWatchedOnlyInRecursiveModeAndNotWhenSkipped() {
        #expect(InboxIntake.step(for: .directoryAppeared(Self.folder), Self.rules()) == .watchFolder(Self.folder))
        #expect(InboxIntake.step(for: .directoryAppeared(Self.folder), Self.rules(recursive: false)) == nil)
        #expect(InboxIntake.step(for: .directoryAppeared(RelativePath(".processing")), Self.rules()) == nil)
    }

    @Test func lostEventsAndALostInboxAreAlwaysActedOn() {
        #expect(InboxIntake.step(for: .overflow, Self.rules(recursive: false)) == .rescan)
        #expect(InboxIntake.step(for: .rootGone, Self.rules(recursive: false)) == .recreateInbox)
    }
}
