import Foundation

/// The latest `GET /api/v1/status` answer, shared by requests while it is fresh: each answer reads the store and
/// lists Inbox, so twenty pollers a second would cost the daemon as much as twenty. Fresh means younger than
/// `maximumAge`, or than four times what the answer took to compute (at most `longestAge`): with months of
/// history an answer takes a good part of a second, and a dashboard polling every second would keep a core
/// busy on it. Any change made through the API clears it, so a client never reads its own change stale; a change
/// from the command line shows once the answer is no longer fresh.
final class StatusMemo: @unchecked Sendable {
    static let maximumAge: UInt64 = 250_000_000  // ns
    static let costFactor: UInt64 = 4
    static let longestAge: UInt64 = 5_000_000_000  // ns

    private let lock = NSLock()
    private var latest: (text: String, at: UInt64, lifetime: UInt64, generation: UInt64)?
    private var generation: UInt64 = 0

    /// How long an answer that took `cost` (ns) to compute stays fresh.
    static func lifetime(cost: UInt64) -> UInt64 {
        min(longestAge, max(maximumAge, cost.multipliedReportingOverflow(by: costFactor).partialValue))
    }

    /// The remembered answer if it is fresh at `now` (monotonic ns), else `compute`'s, remembered unless a change
    /// came while it was computed. `clock` reads the time after computing, to know what the answer cost.
    func answer(
        now: UInt64, clock: () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }, compute: () throws -> String
    ) rethrows -> String {
        let (cached, started) = lock.withLock { () -> (String?, UInt64) in
            if let latest, latest.generation == generation, now >= latest.at, now - latest.at < latest.lifetime {
                return (latest.text, generation)
            }
            return (nil, generation)
        }
        if let cached { return cached }
        let text = try compute()
        let finished = clock()
        let lifetime = Self.lifetime(cost: finished >= now ? finished - now : 0)
        lock.withLock { if generation == started { latest = (text, now, lifetime, started) } }
        return text
    }

    func invalidate() {
        lock.withLock {
            generation += 1
            latest = nil
        }
    }
}
