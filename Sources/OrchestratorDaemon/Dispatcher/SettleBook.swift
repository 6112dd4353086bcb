import OrchestratorCore
import OrchestratorPlatform

/// When an entry in Inbox counts as arrived, and the files still being written until then.
///
/// A file written in place is complete once `settle` has passed with its size and mtime unchanged. An entry
/// that is complete as it stands is claimed at once: a hard link (`link()` brings no other event, guarantee
/// 11), a file whose content is older than `settle` (a maildir-style link, a copy with its times kept), and
/// anything that is not a regular file (it goes to Failed/ unopened, guarantee 10). Pure: the caller looks at
/// the file system, keeps the timers and passes the clock; `Timer` is its timer handle.
struct SettleBook<Timer> {
    struct Entry {
        var status: FileStatus
        var lastActivity: UInt64
        var timer: Timer?
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

    /// It was written to (or has just arrived) and looks like `status`. Returns when a timer must fire for it,
    /// if it has none yet; then `armed` gives the timer.
    mutating func activity(_ name: RelativePath, _ status: FileStatus, at now: UInt64) -> UInt64? {
        if entries[name] != nil {
            entries[name]?.status = status
            entries[name]?.lastActivity = now
            return nil
        }
        entries[name] = Entry(status: status, lastActivity: now, timer: nil)
        return now + settle
    }

    mutating func armed(_ name: RelativePath, _ timer: Timer) {
        entries[name]?.timer = timer
    }

    enum Verdict: Equatable {
        /// Unchanged for `settle`: claim it.
        case complete
        /// Still being written: look again at this time (arm a timer, then `armed`).
        case lookAgain(at: UInt64)
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
