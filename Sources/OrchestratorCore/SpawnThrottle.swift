#if canImport(Glibc)
import Glibc
#endif

/// Guarantee 14, "resource limits are not failures": when a worker cannot be started for lack of
/// resources, its job waits (no attempt spent) and the daemon runs fewer workers at once, growing back
/// one at a time as workers exit.
public struct SpawnThrottle: Sendable, Equatable {
    /// Workers allowed at once while resources are short; nil: the configured maximum.
    public private(set) var limit: Int?
    /// Starts that failed for lack of resources since the last start that succeeded.
    public private(set) var shortagesInARow = 0
    /// Why the last start failed, while the throttle holds.
    public private(set) var reason: String?
    /// The last shortage was of this process's descriptors (EMFILE): its open-file limit is what to raise.
    public private(set) var outOfDescriptors = false

    public static let firstDelay: UInt64 = 1000
    public static let maxDelay: UInt64 = 30_000

    public init() {}

    /// Errors that say "not now" rather than "never": out of fds, processes or memory.
    public static func isShortage(errno code: Int32) -> Bool {
        code == EMFILE || code == ENFILE || code == EAGAIN || code == ENOMEM
    }

    public func allowed(configured: Int) -> Int { min(configured, limit ?? configured) }

    /// A start failed for lack of resources with `running` workers alive; returns how long the job waits.
    public mutating func shortage(running: Int, reason: String, errno code: Int32) -> UInt64 {
        limit = max(1, running)
        shortagesInARow += 1
        self.reason = reason
        outOfDescriptors = code == EMFILE
        let doublings = UInt64(min(shortagesInARow - 1, 5))
        return min(Self.maxDelay, Self.firstDelay << doublings)
    }

    public mutating func started() { shortagesInARow = 0 }

    /// A worker exited and gave its resources back: one more may run, up to the configured maximum.
    public mutating func workerExited(configured: Int) {
        guard let current = limit else { return }
        if current + 1 >= configured {
            limit = nil
            reason = nil
        } else {
            limit = current + 1
        }
    }
}
