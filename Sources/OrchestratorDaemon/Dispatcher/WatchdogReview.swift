import OrchestratorCore

/// What the watchdog sweep makes of the daemon's condition, decided from facts the dispatcher gathers (handed in, so
/// that each case is tested without a disk, a clock or a sleep). The dispatcher carries out the actions and records
/// the problems as the health snapshot: none means healthy.
struct WatchdogReview: Equatable {
    /// How Inbox's watch stands, as the dispatcher found it.
    enum InboxWatch: Equatable {
        /// A daemon without the lister role never watches Inbox: nothing to check.
        case notListing
        /// On a shared store the folders are no longer the store's (why); Inbox is neither watched nor walked.
        case astray(String)
        /// No inotify watch (it could not be set up, or it ended).
        case notWatching
        /// The watched Inbox was replaced (removed and made again, renamed over).
        case replaced
        case watched
    }

    /// A running attempt, for the timeout check.
    struct RunningAttempt: Equatable {
        var jobID: Int64
        var name: RelativePath
        /// Monotonic milliseconds.
        var startedAt: UInt64
        var timeoutMilliseconds: Int64
        /// Its timeout has already ended it (SIGTERM sent): not reported again.
        var timedOut: Bool
    }

    struct Stuck: Equatable {
        var count: Int
        var example: RelativePath
        var reason: String
    }

    struct Facts: Equatable {
        var diskProblems: [String] = []
        /// What the pause for a full disk is for, while paused.
        var pausedFor: String?
        var stuck: Stuck?
        var running: [RunningAttempt] = []
        /// Monotonic milliseconds.
        var now: UInt64 = 0
        var inbox: InboxWatch = .watched
        /// The ingest sweep's interval, as the config writes it.
        var ingestEvery = ""
        /// The state database's path, when the file the store opened is no longer there.
        var databaseGone: String?
        /// Entries in Inbox no walk or claim can reach (paths too long), said as such.
        var unreachable: String?
        /// The lock files that could not be kept in place.
        var lockProblems: [String] = []
        /// Starts that failed for lack of resources since the last that succeeded, and why the last did.
        var startShortages = 0
        var startShortage: String?
        /// The process's open-file limit, when the last shortage was of descriptors: the limit to raise.
        var openFileLimit: UInt64?
    }

    /// Starts failing for lack of resources this many times in a row with no worker running: the daemon holds
    /// (or the machine lacks) what any worker needs, and waiting alone will not bring it (an open-file limit the
    /// daemon's own descriptors nearly fill). Fewer, or with workers running, is the throttle's business.
    static let startsFailingInARow = 3

    enum Action: Equatable {
        /// Finished files whose move failed try again (not while paused: the pause's own retry tries them).
        case retryStuckMoves
        /// Ran past its timeout and the slack: ended now.
        case endOverdue(jobID: Int64)
        /// Start the inotify watch again and walk Inbox for what arrived meanwhile.
        case restartWatch
        /// Watch the Inbox that replaced the watched one.
        case rewatchReplacedInbox
    }

    /// Past its timeout a worker is ended by its own timer; one still running this much later means that timer did
    /// not fire (or the end did not take), which the sweep reports and acts on.
    static let overdueSlackMilliseconds = UInt64(HealthChecks.stuckSlack * 1000)

    private(set) var problems: [String] = []
    private(set) var actions: [Action] = []
    /// The problem that `status` cannot learn from the store (it reads another file than the daemon writes).
    private(set) var storeTrouble: String?

    init(_ facts: Facts) {
        problems = facts.diskProblems
        if let reason = facts.pausedFor { problems.append("paused: \(reason)") }
        if let stuck = facts.stuck {
            problems.append("stuck: \(stuck.count) files in the processing area (\(stuck.example): \(stuck.reason))")
            if facts.pausedFor == nil { actions.append(.retryStuckMoves) }
        }
        for attempt in facts.running where !attempt.timedOut {
            let limit = UInt64(max(0, attempt.timeoutMilliseconds)) + Self.overdueSlackMilliseconds
            guard facts.now > attempt.startedAt, facts.now - attempt.startedAt > limit else { continue }
            problems.append("job \(attempt.jobID) (\(attempt.name)) ran past its timeout; ending it")
            actions.append(.endOverdue(jobID: attempt.jobID))
        }
        switch facts.inbox {
        case .notListing, .watched:
            break
        case .astray(let why):
            problems.append(why)
        case .notWatching:
            problems.append("the inotify watch on Inbox is not active; new files are found by the ingest sweep every \(facts.ingestEvery)")
            actions.append(.restartWatch)
        case .replaced:
            actions.append(.rewatchReplacedInbox)
        }
        if let unreachable = facts.unreachable { problems.append(unreachable) }
        if facts.startShortages >= Self.startsFailingInARow, facts.running.isEmpty, let reason = facts.startShortage {
            var problem = "no worker can start: \(reason) (\(facts.startShortages) starts in a row, none running)"
            if let limit = facts.openFileLimit {
                problem += "; the open-file limit is \(limit): raise LimitNOFILE= (systemd) or ulimit -n"
            }
            problems.append(problem)
        }
        problems += facts.lockProblems
        if let path = facts.databaseGone {
            // The store writes on into the file it opened: what it records is not where `status` or the next start read.
            let trouble = "the state database \(path) was removed or replaced while the daemon runs; what it records now is lost: restart the daemon"
            problems.append(trouble)
            storeTrouble = trouble
        }
    }
}
