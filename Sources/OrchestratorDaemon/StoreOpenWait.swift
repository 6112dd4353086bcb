import OrchestratorStore

/// Guarantee 15 at start: when the state dir's disk is too full for SQLite even to open the database (create
/// it, set up its write-ahead log, migrate it), `watch` waits for space instead of exiting, where a service
/// manager's restart would only fail again. This is the waiting's schedule, decided from the times handed in
/// (offsets on one monotonic clock), so it is tested without sleeping; `StoreOpening` carries it out.
struct StoreOpenWait: Equatable {
    static let firstDelay: Duration = .seconds(1)
    static let maxDelay: Duration = .seconds(30)
    /// What systemd is told (`EXTEND_TIMEOUT_USEC`) beyond the next attempt: room for the attempt itself,
    /// which may wait out SQLite's busy timeout.
    static let timeoutSlack: Duration = .seconds(30)

    /// An open that failed for lack of space (SQLite's FULL or IOERR, ENOSPC, EDQUOT, EIO: the store's one
    /// policy) heals when space returns; a corrupt or unreadable database, or one locked by another process,
    /// does not come right by waiting here, so `watch` exits 1 as before.
    /// A store's server that cannot be reached is waited for the same way: it comes back by itself.
    static func waits(for failure: StoreFailure) -> Bool { failure == .outOfSpace || failure == .unreachable }

    /// systemd's watchdog interval (half of `WATCHDOG_USEC`), nil when nobody asked for pings.
    let pingInterval: Duration?
    private(set) var failures = 0
    private(set) var nextAttempt: Duration = .zero
    private(set) var nextPing: Duration?

    init(pingInterval: Duration?, now: Duration) {
        self.pingInterval = pingInterval
        nextPing = pingInterval.map { now + $0 }
    }

    /// Records a failed open at `now`; the delay before the next attempt: 1 s, doubling to 30 s.
    mutating func failed(at now: Duration) -> Duration {
        failures += 1
        var delay = Self.firstDelay
        for _ in 1..<failures where delay < Self.maxDelay { delay = min(Self.maxDelay, delay * 2) }
        nextAttempt = now + delay
        return delay
    }

    /// When to wake next: the next watchdog ping or the next attempt, whichever comes first.
    var nextWake: Duration { nextPing.map { min($0, nextAttempt) } ?? nextAttempt }

    struct Due: Equatable {
        var ping = false
        var attempt = false
    }

    /// What is due on waking at `now` (possibly early: a signal that was not a stop also wakes the wait). A ping
    /// schedules the next one from `now`, so pings never come closer together than the interval, and never
    /// further apart than it plus how late the wake was.
    mutating func woke(at now: Duration) -> Due {
        var due = Due()
        if let ping = nextPing, let interval = pingInterval, now >= ping {
            due.ping = true
            nextPing = now + interval
        }
        due.attempt = now >= nextAttempt
        return due
    }

    /// How long systemd is to wait for the next message before it counts the start as failed: until the next
    /// attempt, with slack for the attempt.
    func extendTimeout(at now: Duration) -> Duration { max(.zero, nextAttempt - now) + Self.timeoutSlack }

    /// Free space as the log line gives it.
    static func describe(freeBytes: UInt64?) -> String {
        guard let free = freeBytes else { return "free space unknown" }
        if free < 1 << 10 { return "\(free) bytes free" }
        if free < 1 << 20 { return "\(free >> 10) KiB free" }
        return "\(free >> 20) MiB free"
    }
}
