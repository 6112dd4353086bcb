/// Exponential backoff with jitter: base, 2·base, 4·base ... capped, each scaled by a random factor in
/// [0.9, 1.1] so jobs that failed together do not retry in lockstep.
public struct BackoffPolicy: Hashable, Sendable {
    public var base: Duration
    public var cap: Duration

    public init(base: Duration, cap: Duration? = nil) {
        self.base = base
        self.cap = cap ?? max(base, .seconds(3600))
    }

    /// Delay before the attempt that follows failed attempt number `failedAttempt` (1-based).
    public func delay(afterFailedAttempt failedAttempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let baseMs = max(1, base.wholeMilliseconds)
        let capMs = max(baseMs, cap.wholeMilliseconds)
        let doublings = min(max(0, failedAttempt - 1), 62)
        let (scaled, overflow) = baseMs.multipliedReportingOverflow(by: Int64(1) << Int64(doublings))
        let nominal = overflow ? capMs : min(scaled, capMs)
        let factor = Double.random(in: 0.9...1.1, using: &generator)
        return .milliseconds(max(1, Int64(Double(nominal) * factor)))
    }
}
