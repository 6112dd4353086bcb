import OrchestratorCore
import OrchestratorPlatform

/// What one of Inbox's watch events asks of the dispatcher, decided from the event and the rules of the config in force,
/// so that which events count for which entries is tested without a watch or a folder. The dispatcher looks at the file
/// system and keeps the timers for each step.
enum InboxIntake {
    enum Step: Equatable {
        /// Renamed in: whole by construction, claimed in its turn.
        case claim(RelativePath)
        /// Written in place: it settles (`SettleBook`); the writer's open or close counts as such.
        case activity(RelativePath, SettleBook<TimerHandle>.Writer)
        /// A new entry (a file opened for writing, a hard link, a symlink, a FIFO, a socket): complete as it stands or
        /// settling, as it turns out to be.
        case arrived(RelativePath)
        /// A folder appeared (recursive mode): it and the folders inside it are watched, and Inbox is walked, since
        /// folders and files may have been made inside it before its watch existed (`mkdir -p`, `mv` of a tree).
        case watchFolder(RelativePath)
        /// Events were lost: what the writers had open is forgotten and Inbox is walked.
        case rescan
        /// Inbox itself was removed or moved away: made again, watched and walked.
        case recreateInbox
    }

    struct Rules {
        /// An entry a handler may take (not hidden, not in a skipped folder; see `Config.isInput`).
        var isInput: (RelativePath) -> Bool
        var recursive: Bool
        /// A folder the walk and the watch leave alone (hidden, the processing area).
        var skipsFolder: (RelativePath) -> Bool
        /// The entry is still being written (a `SettleBook` entry).
        var isSettling: (RelativePath) -> Bool
    }

    /// nil: the event is nothing to the dispatcher.
    static func step(for event: WatchEvent, _ rules: Rules) -> Step? {
        switch event {
        case .renamedIn(let name):
            rules.isInput(name) ? .claim(name) : nil
        case .closedAfterWrite(let name), .closedWithoutWrite(let name):
            rules.isInput(name) ? .activity(name, .closed) : nil
        case .opened(let name):
            // Only a file still waiting to arrive: a reader's open of anything else (a worker's of its claimed file is
            // not even in Inbox) says nothing.
            rules.isInput(name) && rules.isSettling(name) ? .activity(name, .opened) : nil
        case .modified(let name):
            rules.isInput(name) ? .activity(name, .unknown) : nil
        case .created(let name):
            rules.isInput(name) ? .arrived(name) : nil
        case .directoryAppeared(let name):
            rules.recursive && !rules.skipsFolder(name) ? .watchFolder(name) : nil
        case .overflow:
            .rescan
        case .rootGone:
            .recreateInbox
        }
    }
}
