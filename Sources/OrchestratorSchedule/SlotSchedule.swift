import OrchestratorConfig
import OrchestratorCron

/// When a scheduled task's slots fall, in Unix milliseconds. A slot is the task's identity for one run:
/// the daemon records (task, slot) before running it, so no slot ever runs twice.
public struct SlotSchedule: Sendable {
    enum Kind: Sendable {
        /// Multiples of the interval since the Unix epoch (SPEC §4).
        case interval(milliseconds: Int64)
        case cron(CronSchedule)
        /// `@reboot`: once per daemon start, no calendar slots.
        case reboot
    }

    let kind: Kind

    /// The schedule of an `every` or `cron` trigger; nil for an event trigger. `hostZone` is used for a
    /// cron task without `tz`. Expressions and zones were validated with the config, so a failure here
    /// is reported as the same error.
    public init?(trigger: Trigger, hostZone: @autoclosure () -> any ZoneRules) throws(CronError) {
        switch trigger {
        case .every(let interval):
            kind = .interval(milliseconds: max(1, interval.wholeMilliseconds))
        case .cron(let text, let zoneName):
            let expression = try CronExpression(parsing: text)
            if expression.isReboot {
                kind = .reboot
            } else {
                let zone = try zoneName.map { name throws(CronError) in try loadZone(name) } ?? hostZone()
                kind = .cron(CronSchedule(expression: expression, zone: zone))
            }
        case .event:
            return nil
        }
    }

    /// Runs once at each daemon start instead of on slots.
    public var isReboot: Bool {
        if case .reboot = kind { return true }
        return false
    }

    /// The first slot strictly after `instant`; nil if there is none (`@reboot`, or a cron expression
    /// that stops firing).
    public func nextSlot(after instant: Int64) -> Int64? {
        switch kind {
        case .interval(let step):
            return (instant.floorDivided(by: step) + 1) * step
        case .cron(let schedule):
            // Cron fires on whole minutes; a slot strictly after `instant` is a fire strictly after its second.
            guard let fire = schedule.nextFire(after: instant.floorDivided(by: 1000)) else { return nil }
            return fire * 1000
        case .reboot:
            return nil
        }
    }

    /// The latest slot in `(floor, instant]`, nil if there is none: the one missed slot that
    /// `catch_up = "once"` runs after the daemon was down.
    ///
    /// Cron has no "previous fire", so the search looks forward from windows that grow backwards from
    /// `instant`; the first window holding a fire is walked to its end, a bounded number of steps.
    public func latestSlot(after floor: Int64, atOrBefore instant: Int64) -> Int64? {
        guard floor < instant else { return nil }
        switch kind {
        case .interval(let step):
            let latest = instant.floorDivided(by: step) * step
            return latest > floor ? latest : nil
        case .reboot:
            return nil
        case .cron:
            let hour: Int64 = 3_600_000
            var window = hour
            while true {
                let start = max(floor, instant - window)
                if var slot = nextSlot(after: start), slot <= instant {
                    while let next = nextSlot(after: slot), next <= instant { slot = next }
                    return slot
                }
                if start == floor { return nil }
                window = window > Int64.max / 8 ? Int64.max : window * 8
            }
        }
    }
}

extension Int64 {
    /// Division rounding towards negative infinity (slots before 1970 stay aligned).
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
