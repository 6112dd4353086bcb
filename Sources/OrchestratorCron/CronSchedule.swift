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
/// once. Answers are pure functions of the expression, the zone's rules and the instant. `fires(after:)` walks
/// on from one answer to the next, remembering the zone's transitions, instead of starting afresh for each
/// (`cron next --count 1000000` asks ICU a handful of questions per offset change, not per fire).
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
        var fires = Fires(schedule: self, after: instant)
        return fires.next()?.instant
    }

    /// The next `count` fire times after `instant`, fewer if it stops firing.
    public func fires(after instant: Int64, count: Int) -> [Int64] {
        var result: [Int64] = []
        var fires = Fires(schedule: self, after: instant)
        while result.count < count, let fire = fires.next() {
            result.append(fire.instant)
        }
        return result
    }

    /// The fire times after `instant`, oldest first, each with the zone's offset at that instant.
    public func fires(after instant: Int64) -> Fires {
        Fires(schedule: self, after: instant)
    }

    /// One fire time and the UTC offset in force at it (seconds east), which is what `cron next` prints.
    public struct Fire: Sendable, Equatable {
        public let instant: Int64
        public let offset: Int32
    }

    /// Successive fire times: the same answers as calling `nextFire(after:)` with each previous answer (that is
    /// how `nextFire` computes its one), but remembering the zone's changes and the last match between them.
    public struct Fires: IteratorProtocol, Sequence {
        let expression: CronExpression
        private var zone: ZoneCursor
        private var search: MatchSearch
        /// The last answer (or the starting instant); nil once there are no more.
        private var cursor: Int64?

        init(schedule: CronSchedule, after instant: Int64) {
            expression = schedule.expression
            // The search looks back up to three hours from its start (the overlap a start may lie in).
            zone = ZoneCursor(zone: schedule.zone, from: instant - CronSchedule.plainChange)
            search = MatchSearch(expression: schedule.expression)
            let fires = !expression.isReboot && expression.canEverFire
            cursor = fires ? instant : nil
        }

        public mutating func next() -> Fire? {
            guard let previous = cursor, CronSchedule.supportedInstants.contains(previous),
                let fire = fire(after: previous)
            else {
                cursor = nil
                return nil
            }
            cursor = fire.instant
            zone.forget(upTo: fire.instant - CronSchedule.plainChange)
            return fire
        }

        private mutating func fire(after instant: Int64) -> Fire? {
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
                    // A fixed-time job whose minute fell into the gap that ends at `start` runs at the first minute
                    // after it.
                    if before < offset, offset - before < CronSchedule.plainChange {
                        guard let next = search.first(atOrAfter: start + before) else { return nil }
                        if next < start + offset {
                            let fire = CivilCalendar.ceilingMinute(start + offset) - offset
                            return Fire(instant: fire, offset: zone.offset(at: fire))
                        }
                    }
                    // In the second pass of an overlap it has already run.
                    if let overlapEnd = overlapEndingAfter(start) {
                        localStart = Swift.max(localStart, overlapEnd)
                    }
                }
                guard let match = search.first(atOrAfter: localStart) else { return nil }
                guard let end, match >= end + offset else { return Fire(instant: match - offset, offset: Int32(offset)) }
                cursor = end - 1
            }
            return nil
        }

        /// If `instant` lies in the second pass of a small fall-back change, the local time (local seconds) at
        /// which that overlap ends; nil otherwise. Such a change happened less than three hours before `instant`.
        private mutating func overlapEndingAfter(_ instant: Int64) -> Int64? {
            var probe = instant - CronSchedule.plainChange
            var latest: Int64?
            while let change = zone.nextTransition(after: probe), change <= instant {
                latest = change
                probe = change
            }
            guard let change = latest else { return nil }
            let before = Int64(zone.offset(at: change - 1))
            let after = Int64(zone.offset(at: change))
            guard before > after, before - after < CronSchedule.plainChange else { return nil }
            return change + before
        }
    }
}
