/// When a cron expression fires in a zone: the one code path for `cron next` and the daemon's scheduler.
///
/// The fields describe wall-clock minutes in the zone. Around a change of the zone's offset smaller than
/// three hours (spec §4):
/// - spring forward (gap): a wildcard job's minutes in the gap do not happen; a fixed-time job with a matching
///   minute in the gap (on a day the expression matches) runs once, at the first minute after the jump;
/// - fall back (overlap): a wildcard job runs in both passes; a fixed-time job only in the first.
/// A change of three hours or more is matched plainly: missing wall times are skipped, doubled ones run twice.
///
/// The search walks the zone's constant-offset stretches and, within each, finds the next matching wall-clock
/// minute by days (see `CronExpression.firstMatch`), so sparse expressions (29 February on a Sunday) answer at
/// once. Answers are pure functions of the expression, the zone's rules and the instant.
public struct CronSchedule: Sendable {
    public let expression: CronExpression
    public let zone: any ZoneRules

    /// Offset changes at least this large are changes of a zone's rules, not daylight saving: no catch-up or
    /// de-duplication (Samoa skipping 30 December 2011).
    static let plainChange: Int64 = 3 * 3600

    /// Instants beyond about ±30 000 years are outside the calendar arithmetic's comfortable range: nil.
    static let supportedInstants: ClosedRange<Int64> = -(1 << 40)...(1 << 40)

    public init(expression: CronExpression, zone: any ZoneRules) {
        self.expression = expression
        self.zone = zone
    }

    /// The first fire time strictly after `instant` (Unix seconds), nil for an expression that can never fire
    /// and for `@reboot`. Calling it again with the answer gives the next one: the sequence is strictly
    /// increasing and has no duplicates.
    public func nextFire(after instant: Int64) -> Int64? {
        guard !expression.isReboot, expression.canEverFire, Self.supportedInstants.contains(instant) else {
            return nil
        }
        var search = MatchSearch(expression: expression)
        let fixedTime = !expression.isWildcardJob
        var cursor = instant
        // Each round covers one stretch of constant offset; a match is at most one 400-year cycle away.
        for _ in 0..<100_000 {
            let start = cursor + 1
            let offset = Int64(zone.offset(at: start))
            let end = zone.nextTransition(after: start)
            var localStart = start + offset
            if fixedTime {
                let before = Int64(zone.offset(at: start - 1))
                // A fixed-time job whose minute fell into the gap that ends at `start` runs at the first minute after it.
                if before < offset, offset - before < Self.plainChange {
                    guard let next = search.first(atOrAfter: start + before) else { return nil }
                    if next < start + offset {
                        return CivilCalendar.ceilingMinute(start + offset) - offset
                    }
                }
                // In the second pass of an overlap it has already run.
                if let overlapEnd = overlapEndingAfter(start) {
                    localStart = max(localStart, overlapEnd)
                }
            }
            guard let match = search.first(atOrAfter: localStart) else { return nil }
            guard let end else { return match - offset }
            if match < end + offset { return match - offset }
            cursor = end - 1
        }
        return nil
    }

    /// The next `count` fire times after `instant`, fewer if it stops firing.
    public func fires(after instant: Int64, count: Int) -> [Int64] {
        var result: [Int64] = []
        var cursor = instant
        while result.count < count, let next = nextFire(after: cursor) {
            result.append(next)
            cursor = next
        }
        return result
    }

    /// If `instant` lies in the second pass of a small fall-back change, the local time (local seconds) at which
    /// that overlap ends; nil otherwise. Such a change happened less than three hours before `instant`.
    private func overlapEndingAfter(_ instant: Int64) -> Int64? {
        var probe = instant - Self.plainChange
        var latest: Int64?
        while let change = zone.nextTransition(after: probe), change <= instant {
            latest = change
            probe = change
        }
        guard let change = latest else { return nil }
        let before = Int64(zone.offset(at: change - 1))
        let after = Int64(zone.offset(at: change))
        guard before > after, before - after < Self.plainChange else { return nil }
        return change + before
    }
}
