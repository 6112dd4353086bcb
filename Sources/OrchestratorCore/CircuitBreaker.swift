/// One handler's or task's circuit breaker: after `threshold` consecutive failed attempts it opens for
/// `cooldown`; then one trial attempt (half-open) decides whether it closes or opens again. While it is
/// open, jobs wait without spending attempts. Time is handed in (monotonic milliseconds).
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed
        case open(until: UInt64)
        /// The cooldown is over; `probing` while the one trial attempt runs.
        case halfOpen(probing: Bool)
    }

    public let threshold: Int
    public let cooldown: UInt64
    public private(set) var state: State = .closed
    public private(set) var consecutiveFailures = 0

    public init(threshold: Int, cooldown: UInt64) {
        self.threshold = max(1, threshold)
        self.cooldown = cooldown
    }

    /// Whether a job may start now. In half-open state the first caller becomes the probe and later
    /// callers wait for its result.
    public mutating func admit(at now: UInt64) -> Bool {
        switch state {
        case .closed:
            return true
        case .open(let until):
            guard now >= until else { return false }
            state = .halfOpen(probing: true)
            return true
        case .halfOpen(let probing):
            guard !probing else { return false }
            state = .halfOpen(probing: true)
            return true
        }
    }

    /// When an open breaker lets the next probe through; nil unless open.
    public var reopensAt: UInt64? {
        if case .open(let until) = state { return until }
        return nil
    }

    public var isOpen: Bool { state != .closed }

    public mutating func recordSuccess() {
        consecutiveFailures = 0
        state = .closed
    }

    /// Returns true when this failure opened the circuit.
    @discardableResult
    public mutating func recordFailure(at now: UInt64) -> Bool {
        consecutiveFailures += 1
        switch state {
        case .halfOpen:
            state = .open(until: now + cooldown)
            return true
        case .closed where consecutiveFailures >= threshold:
            state = .open(until: now + cooldown)
            return true
        case .closed, .open:
            return false
        }
    }

    /// An attempt that was admitted but ended without a verdict (cut short by shutdown).
    public mutating func recordNoVerdict() {
        if case .halfOpen = state { state = .halfOpen(probing: false) }
    }
}
