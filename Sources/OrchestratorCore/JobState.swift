/// Where a job is in its life: `queued → running → done`, or `running → retry_wait → queued` while
/// attempts remain, else `failed`; `breaker_wait` while its handler's circuit is open.
public enum JobState: String, Sendable, CaseIterable, Codable {
    case queued
    case running
    case retryWait = "retry_wait"
    case breakerWait = "breaker_wait"
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
}
