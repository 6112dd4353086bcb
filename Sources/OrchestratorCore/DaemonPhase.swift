/// Where the daemon is in its life. One value instead of flags, so that every check asks one question
/// ("may new work begin?", "is it stopping?") of one state.
public enum DaemonPhase: Equatable, Sendable {
    /// Recovering the store and the folders; claims made here are the recovery's own.
    case starting
    case running
    /// A store write or a move failed for lack of space: nothing new is claimed or started, running
    /// workers go on, the failed write is retried.
    case pausedForDisk(path: String)
    /// A stop signal arrived at `since` (monotonic milliseconds): nothing new starts; running workers have
    /// until `deadline` (nil: none were running).
    case draining(since: UInt64, deadline: UInt64?)
    case stopped

    /// Files may be claimed and workers started.
    public var admitsNewWork: Bool {
        switch self {
        case .starting, .running: true
        case .pausedForDisk, .draining, .stopped: false
        }
    }

    /// A stop signal has arrived (or the daemon has stopped).
    public var isStopping: Bool {
        switch self {
        case .draining, .stopped: true
        case .starting, .running, .pausedForDisk: false
        }
    }

    public var isPausedForDisk: Bool {
        if case .pausedForDisk = self { return true }
        return false
    }

    /// When the stop signal arrived, if it has.
    public var stoppingSince: UInt64? {
        if case .draining(let since, _) = self { return since }
        return nil
    }
}
