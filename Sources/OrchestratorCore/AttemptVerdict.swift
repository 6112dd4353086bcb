#if canImport(Glibc)
import Glibc
#endif

/// How an attempt's worker ended, as far as its verdict goes.
public struct AttemptEnding: Sendable, Equatable {
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    public var termination: Termination
    /// The daemon ended it at its timeout.
    public var timedOut: Bool
    /// The daemon ended it because the shutdown grace ran out.
    public var endedByShutdown: Bool
    /// `orchestrator cancel` ended it.
    public var cancelled: Bool
    /// When it was reaped (monotonic milliseconds).
    public var at: UInt64

    public init(
        termination: Termination, timedOut: Bool = false, endedByShutdown: Bool = false, cancelled: Bool = false, at: UInt64
    ) {
        self.termination = termination
        self.timedOut = timedOut
        self.endedByShutdown = endedByShutdown
        self.cancelled = cancelled
        self.at = at
    }
}

public enum AttemptVerdict: Sendable, Equatable {
    case succeeded
    case failed
    /// Cut short by a stop: the attempt does not count and the file runs again at the next start.
    case interrupted
    /// Ended by `orchestrator cancel`: the job fails for good, no retry.
    case cancelled
    /// Ended by a signal from outside while the daemon still runs. A service manager that signals the
    /// whole tree (pm2's `treekill`) may reach the workers before the daemon, so the verdict waits until
    /// `until` for the daemon's own stop signal.
    case undecided(until: UInt64)
}

/// Guarantee 12, "a stop is not a failure", and the race of a worker that finishes as the grace runs out.
public enum AttemptVerdictPolicy {
    /// How long before the daemon's own stop signal a worker's death still counts as part of the stop.
    public static let stopSignalWindow: UInt64 = 1000

    /// - Parameters:
    ///   - stoppingSince: when the daemon's stop signal arrived, nil while it runs.
    ///   - now: the current monotonic time, to tell whether the window is over.
    public static func decide(_ ending: AttemptEnding, stoppingSince: UInt64?, now: UInt64) -> AttemptVerdict {
        // A worker that reports success has done its work, whatever was sent to it meanwhile.
        if ending.termination == .exited(0) { return .succeeded }
        // Whatever else happened meanwhile (a timeout, a stop), the user asked for it not to run again.
        if ending.cancelled { return .cancelled }
        if ending.timedOut { return .failed }
        if ending.endedByShutdown { return .interrupted }
        guard endedLikeAStop(ending.termination) else { return .failed }
        if let since = stoppingSince {
            return since <= ending.at + stopSignalWindow ? .interrupted : .failed
        }
        let windowEnds = ending.at + stopSignalWindow
        return now < windowEnds ? .undecided(until: windowEnds) : .failed
    }

    /// Killed by a signal, or exited the way shells and runtimes report one (128 + the signal's number)
    /// for the signals service managers stop with.
    static func endedLikeAStop(_ termination: AttemptEnding.Termination) -> Bool {
        switch termination {
        case .signaled: return true
        case .exited(let code): return stopSignals.contains(code - 128)
        }
    }

    static let stopSignals: Set<Int32> = [SIGHUP, SIGINT, SIGQUIT, SIGTERM]
}
