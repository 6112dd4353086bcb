/// Where a job is in its life: `queued → running → done`, or `running → retry_wait → queued` while
/// attempts remain, else `failed`; `breaker_wait` while its handler's circuit is open, `paused` while its
/// handler is paused by `orchestrator handler pause`.
public enum JobState: String, Sendable, CaseIterable, Codable {
    case queued
    case running
    case retryWait = "retry_wait"
    case breakerWait = "breaker_wait"
    case paused
    case done
    case failed

    public var isTerminal: Bool { self == .done || self == .failed }
}

public enum JobKind: String, Sendable, Codable {
    case file
    case task
    /// A Done file's `upload` command; its name is the file's path relative to Done.
    case upload
}

/// How one attempt ended, as recorded in the store.
public enum AttemptOutcome: String, Sendable, Codable {
    /// Started and not yet reaped (or the daemon died while it ran).
    case running
    case succeeded
    case failed
    /// Cut short by a shutdown or a crash of the daemon; does not use up an attempt.
    case interrupted
    /// Ended by `orchestrator cancel`: the job failed for good, without a retry.
    case cancelled
}
