import OrchestratorCore
import OrchestratorPlatform

/// When an entry in Inbox counts as arrived, and the files still being written until then.
///
/// A file written in place is complete once `settle` has passed with its size and mtime unchanged and nobody has it
/// open: opens and closes seen by the watch (IN_OPEN, IN_CLOSE_*) are counted, and while one is open (its creator
/// writing it) it waits for the close, however long the writer pauses in between (guarantee 3). An entry
/// that is complete as it stands is claimed at once: a hard link (`link()` brings no other event, guarantee
/// 11), a file whose content is older than `settle` (a maildir-style link, a copy with its times kept), and
/// anything that is not a regular file (it goes to Failed/ unopened, guarantee 10). Pure: the caller looks at
/// the file system, keeps the timers and passes the clock; `Timer` is its timer handle.
struct SettleBook<Timer> {
    struct Entry {
        var status: FileStatus
        var lastActivity: UInt64
        var timer: Timer?
        /// Opens seen and not yet closed: while any, not complete, however long it stays unchanged. Opens made
        /// before the watch saw them are not counted (their closes do not go below zero).
        var openCount = 0
        var writerHasItOpen: Bool { openCount > 0 }
    }

    /// What an event says of the file's writer.
    enum Writer {
        /// Opened (IN_OPEN): right after its creation, its creator's open.
        case opened
        /// Closed (IN_CLOSE_WRITE or IN_CLOSE_NOWRITE).
        case closed
        /// Created, written to, or seen by a walk: nothing about who has it open.
        case unknown
    }

    /// Milliseconds unchanged before a file counts as complete.
    var settle: UInt64
    private(set) var entries: [RelativePath: Entry] = [:]

    init(settle: UInt64) {
        self.settle = settle
    }

    var isEmpty: Bool { entries.isEmpty }

    func isSettling(_ name: RelativePath) -> Bool { entries[name] != nil }

    /// A new entry: claim it now, or note it as written to.
    static func completeOnArrival(_ status: FileStatus, wallNanoseconds: Int64, settle: UInt64) -> Bool {
        !status.isRegular || status.linkCount > 1 || wallNanoseconds - status.modified >= Int64(settle) * 1_000_000
    }

    /// It was written to (or has just arrived, or was closed) and looks like `status`. Returns when a timer must fire
    /// for it, if it has none yet; then `armed` gives the timer.
    mutating func activity(_ name: RelativePath, _ status: FileStatus, at now: UInt64, writer: Writer = .unknown) -> UInt64? {
        var entry = entries[name] ?? Entry(status: status, lastActivity: now, timer: nil)
        entry.status = status
        entry.lastActivity = now
        switch writer {
        case .opened: entry.openCount += 1
        case .closed: entry.openCount = max(0, entry.openCount - 1)
        case .unknown: break
        }
        entries[name] = entry
        // One timer at a time; none while the writer has it open (its close brings the next).
        return entry.timer == nil && !entry.writerHasItOpen ? now + settle : nil
    }

    /// A walk of Inbox found it waiting for a close: true (take it as complete) when it has not changed for `silence`
    /// (the ingest sweep's interval). A close that never came under the file's name must not keep it for ever; a
    /// writer silent that long is taken as done.
    func writerWentSilent(_ name: RelativePath, _ status: FileStatus, at now: UInt64, after silence: UInt64) -> Bool {
        guard let entry = entries[name], entry.writerHasItOpen, entry.status == status else { return false }
        return now >= entry.lastActivity && now - entry.lastActivity >= silence
    }

    /// Events were lost (inotify's queue overflowed): a close among them would leave its file waiting for ever. The
    /// files waiting for their writer's close go back to the settle rule alone; returns when their timers fire.
    mutating func forgetWriters(at now: UInt64) -> [(RelativePath, UInt64)] {
        var due: [(RelativePath, UInt64)] = []
        for (name, entry) in entries where entry.writerHasItOpen {
            entries[name]?.openCount = 0
            if entry.timer == nil { due.append((name, now + settle)) }
        }
        return due
    }

    mutating func armed(_ name: RelativePath, _ timer: Timer) {
        entries[name]?.timer = timer
    }

    enum Verdict: Equatable {
        /// Unchanged for `settle`: claim it.
        case complete
        /// Still being written: look again at this time (arm a timer, then `armed`).
        case lookAgain(at: UInt64)
        /// Someone still has it open: the close (`activity` with `.closed`) arms the next timer.
        case waitingForClose
        /// Gone from Inbox, or never settling.
        case forgotten
    }

    /// Its timer fired; `status` is how it looks now (nil: gone).
    mutating func timerFired(_ name: RelativePath, _ status: FileStatus?, at now: UInt64) -> Verdict {
        guard var entry = entries[name] else { return .forgotten }
        entry.timer = nil
        guard let status else {
            entries[name] = nil
            return .forgotten
        }
        if status != entry.status {
            entry.status = status
            entry.lastActivity = now
        }
        if entry.writerHasItOpen {
            entries[name] = entry
            return .waitingForClose
        }
        if now - entry.lastActivity >= settle {
            entries[name] = nil
            return .complete
        }
        entries[name] = entry
        return .lookAgain(at: entry.lastActivity + settle)
    }

    /// Stops tracking it (claimed another way, or the daemon stops); returns its timer to cancel.
    mutating func remove(_ name: RelativePath) -> Timer? {
        entries.removeValue(forKey: name)?.timer
    }

    /// Stops tracking everything; returns the timers to cancel.
    mutating func removeAll() -> [Timer] {
        let timers = entries.values.compactMap(\.timer)
        entries.removeAll()
        return timers
    }
}
