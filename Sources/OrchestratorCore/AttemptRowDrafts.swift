/// Attempt starts recorded for the next commit but not committed yet, and what happened to them meanwhile.
///
/// A short worker often ends before the commit that records its start (starts wait for the next cycle's commit). Its
/// end then goes into the start's row, one insert instead of an insert and an update, and the job's next state
/// replaces "running" in the same transaction, so the job row is updated once: the start's write records only the
/// transition. The write reads its draft when it runs (a commit that fails runs it again with what came since).
///
/// Once a commit has carried a start, its draft is dropped and what comes later is written as usual. Dropping is
/// always safe: a start's write that finds no draft writes the plain start, and the end's own update follows it.
public struct AttemptRowDrafts<End> {
    public struct Draft {
        /// How the attempt ended, when that came before its start was committed.
        public var end: End?
        /// A later write of the same commit sets the job's next state: the start writes only its transition.
        public var stateReplaced = false
    }

    private var drafts: [UInt64: Draft] = [:]
    private var latestOfJob: [Int64: UInt64] = [:]
    private var nextSerial: UInt64 = 0

    public init() {}

    public var isEmpty: Bool { drafts.isEmpty }

    /// A start of `job` recorded for the next commit; its write reads `draft(serial)` when it runs.
    public mutating func begin(job: Int64) -> UInt64 {
        nextSerial += 1
        drafts[nextSerial] = Draft()
        latestOfJob[job] = nextSerial
        return nextSerial
    }

    /// The draft as a write should use it now; a dropped one is a plain start.
    public func draft(_ serial: UInt64) -> Draft { drafts[serial] ?? Draft() }

    /// The running attempt of `job` ended. True if its start is not committed yet: the end is written with it,
    /// and the caller records no update of its own.
    public mutating func absorbEnd(job: Int64, _ end: End) -> Bool {
        guard let serial = latestOfJob[job], drafts[serial]?.end == nil else { return false }
        drafts[serial]?.end = end
        return true
    }

    /// `job` leaves "running" by a write recorded now, after its start's: if that start is not committed yet, it
    /// records only its transition.
    public mutating func replaceState(job: Int64) {
        guard let serial = latestOfJob[job] else { return }
        drafts[serial]?.stateReplaced = true
    }

    /// A commit succeeded: every start recorded so far is in the store, and what comes now is written on its own.
    public mutating func committed() {
        guard !drafts.isEmpty else { return }
        drafts.removeAll(keepingCapacity: true)
        latestOfJob.removeAll(keepingCapacity: true)
    }
}
