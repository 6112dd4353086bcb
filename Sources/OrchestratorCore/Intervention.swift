/// What `orchestrator cancel`, `priority` and `handler pause|resume` do to a job, decided from its state
/// alone, so that the CLI (acting on the store without a daemon) and the daemon (acting on its memory)
/// make the same decision.
public enum Intervention {
    /// What a cancel does to a job.
    public enum CancelAction: Equatable, Sendable {
        /// Waiting (queued, retry wait, breaker wait, paused): it fails at once, never run.
        case failNow
        /// Running under a live daemon: its group gets SIGTERM, SIGKILL after the grace; the attempt ends
        /// as cancelled and the job fails without a retry.
        case endRunningAttempt
        /// Marked running in the store, but no daemon runs: its daemon died. What is left of its worker
        /// group is ended, then it fails like a waiting job.
        case endLeftoverThenFail
        /// Finished or unknown: nothing to cancel (exit 65).
        case refuse(Refusal)
    }

    public enum Refusal: Equatable, Sendable {
        case unknown
        case finished(JobState)
        /// On a shared store: another daemon holds the job (it runs there, or waits in its memory).
        case otherDaemon(String)
        /// `priority` of a job that is not waiting (running).
        case notWaiting(JobState)
        /// A priority outside 1...10.
        case outOfRange(Int)
    }

    /// What a priority change does to a job.
    public enum PriorityAction: Equatable, Sendable {
        /// On the ready queue: it moves there too.
        case requeue
        /// Waiting elsewhere (retry wait, breaker wait, paused): the new priority counts when it is queued again.
        case record
        case refuse(Refusal)
    }

    /// Base priorities a user may set (the config's range).
    public static let priorities = 1...10

    /// - Parameter daemonRuns: whether a daemon owns the running attempts (else one marked running was
    ///   left by a daemon that died).
    public static func cancel(_ state: JobState?, daemonRuns: Bool) -> CancelAction {
        guard let state else { return .refuse(.unknown) }
        switch state {
        case .queued, .retryWait, .breakerWait, .paused: return .failNow
        case .running: return daemonRuns ? .endRunningAttempt : .endLeftoverThenFail
        case .done, .failed: return .refuse(.finished(state))
        }
    }

    public static func priority(_ state: JobState?, to priority: Int) -> PriorityAction {
        guard priorities.contains(priority) else { return .refuse(.outOfRange(priority)) }
        guard let state else { return .refuse(.unknown) }
        switch state {
        case .queued: return .requeue
        case .retryWait, .breakerWait, .paused: return .record
        case .running, .done, .failed: return .refuse(.notWaiting(state))
        }
    }

    /// The job's reason: `cancelled: TEXT`.
    /// How a cancel of a job that was not running is said: "before it ran", or, with attempts behind it (waiting to
    /// retry, behind a breaker, paused), "before its next attempt".
    public static func whenCancelled(attempts: Int) -> String {
        attempts == 0 ? "before it ran" : "before its next attempt (\(attempts) ran)"
    }

    public static func cancelReason(_ text: String?) -> String {
        let trimmed = (text ?? "").drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed()
        return "cancelled: " + (trimmed.isEmpty ? "by hand" : String(trimmed))
    }

    /// Why nothing was done, for the command's error line.
    public static func describe(_ refusal: Refusal) -> String {
        switch refusal {
        case .unknown: "no such job"
        case .finished(let state): "it has already finished (\(state.rawValue))"
        case .otherDaemon(let node): "daemon \(node) has it now (claimed as this request was handled); ask again"
        case .notWaiting(let state): "it is not waiting (\(state.rawValue)); only a waiting job's priority can change"
        case .outOfRange(let value): "priority \(value) is outside \(priorities.lowerBound)..\(priorities.upperBound)"
        }
    }
}

extension Intervention {
    /// What a daemon of a shared store knows when a cancel or priority request for a job arrives.
    public struct RequestFacts: Equatable, Sendable {
        /// This daemon's name.
        public var me: String
        /// Its worker runs here, or has just exited here with its end still to be decided.
        public var runsHere: Bool
        /// On this daemon's queue (in memory).
        public var queuedHere: Bool
        /// The job's state in the store; nil if the store has no such job.
        public var state: JobState?
        /// The daemon that claimed the job last (`owner`), if any.
        public var owner: String?
        /// The daemon that registered the file, if recorded.
        public var registrar: String?
        /// The daemons of the store whose heartbeat says they are alive.
        public var aliveDaemons: Set<String>

        public init(
            me: String, runsHere: Bool, queuedHere: Bool, state: JobState?, owner: String?, registrar: String?,
            aliveDaemons: Set<String>
        ) {
            self.me = me
            self.runsHere = runsHere
            self.queuedHere = queuedHere
            self.state = state
            self.owner = owner
            self.registrar = registrar
            self.aliveDaemons = aliveDaemons
        }
    }

    /// Whether this daemon takes the request: the daemon that holds the job does, and only it, so that a cancel ends
    /// the worker where it runs and a priority moves the job where it waits.
    /// - A job running here is this daemon's; one running in the store elsewhere is its owner's (this daemon's memory
    ///   of it is stale).
    /// - A waiting job on this daemon's queue is this daemon's.
    /// - A waiting job on no daemon's queue (given back while its handler was paused or its breaker open) is its last
    ///   owner's, else its registrar's; if that daemon is this one, is gone or is unknown, this daemon takes it and
    ///   ends or changes the job in the store.
    /// - An ended or unknown job is answered from the store by whichever daemon reads the request first.
    public static func takesRequest(_ facts: RequestFacts) -> Bool {
        if facts.runsHere { return true }
        guard let state = facts.state, !state.isTerminal else { return true }
        if state == .running { return facts.owner == facts.me }
        if facts.queuedHere { return true }
        guard let holder = facts.owner ?? facts.registrar, holder != facts.me else { return true }
        return !facts.aliveDaemons.contains(holder)
    }
}
