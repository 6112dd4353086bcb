import Foundation

/// The latest `GET /api/v1/status` answer, shared by requests within `maximumAge`: each answer reads the
/// store and lists Inbox (milliseconds with a large history), so twenty pollers a second would cost the daemon
/// as much as twenty. Any change made through the API clears it, so a client never reads its own change stale;
/// a change from the command line shows within `maximumAge`.
final class StatusMemo: @unchecked Sendable {
    static let maximumAge: UInt64 = 250_000_000  // ns

    private let lock = NSLock()
    private var latest: (text: String, at: UInt64, generation: UInt64)?
    private var generation: UInt64 = 0

    /// The remembered answer if it is younger than `maximumAge` at `now` (monotonic ns), else `compute`'s,
    /// remembered unless a change came while it was computed.
    func answer(now: UInt64, compute: () throws -> String) rethrows -> String {
        let (cached, started) = lock.withLock { () -> (String?, UInt64) in
            if let latest, latest.generation == generation, now >= latest.at, now - latest.at < Self.maximumAge {
                return (latest.text, generation)
            }
            return (nil, generation)
        }
        if let cached { return cached }
        let text = try compute()
        lock.withLock { if generation == started { latest = (text, now, started) } }
        return text
    }

    func invalidate() {
        lock.withLock {
            generation += 1
            latest = nil
        }
    }
}
