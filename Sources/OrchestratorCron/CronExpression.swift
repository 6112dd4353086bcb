/// A parsed five-field cron expression (spec/cron.md §2-§3), or a macro.
///
/// Decisions on the points the spec leaves open:
/// - A step larger than its field's maximum (`*/60` minutes, `*/24` hours, `*/32`, `*/13`, `*/8`, and the same
///   after a range, `0-59/60`) is rejected. A step larger than its range but within the field (`10-20/15`) is
///   fine and selects only the range's start.
/// - `@midnight` is accepted as `@daily` (cronie's alias).
/// - Macros are lowercase only, as in cronie: `@Daily` is an error whose message names the lowercase spelling.
/// - In the day-of-week field a range ending in 0 or `SUN` ends at 7, literally as the spec says, so `FRI-SUN`
///   is Friday to Sunday, and `0-0` / `SUN-SUN` are every day.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The text as given.
    public let source: String

    // Bit sets of the values each field selects. Day of week uses bits 0-6 (7 is folded into 0).
    let minutes: UInt64
    let hours: UInt32
    let daysOfMonth: UInt32
    let months: UInt16
    let daysOfWeek: UInt8
    /// Whether the text of a field begins with `*` (spec §3 and §4 decide on the text, not on the set).
    let minuteStarred: Bool
    let hourStarred: Bool
    let dayOfMonthStarred: Bool
    let dayOfWeekStarred: Bool

    /// `@reboot`: runs once per daemon start, has no calendar fire time.
    public let isReboot: Bool

    /// Whether some calendar date matches (with February having 29 days), decided from the fields alone.
    /// `@reboot` counts as able to fire: it runs once per daemon start.
    public let canEverFire: Bool

    /// Spec §4: the minute or the hour field's text begins with `*` (`@hourly` too). Such jobs skip minutes in a
    /// spring-forward gap and run in both passes of an overlap; every other job is a fixed-time job.
    public var isWildcardJob: Bool { minuteStarred || hourStarred }

    /// Whether a day must match both day fields (either field's text begins with `*`) or either of them.
    var dayFieldsMustBothMatch: Bool { dayOfMonthStarred || dayOfWeekStarred }

    public var description: String { source }

    /// Parses `text` per spec/cron.md. Throws with a message naming the field and the offending text.
    public init(parsing text: String) throws(CronError) {
        let fields = try CronParser(source: text).parse()
        source = text
        isReboot = fields.isReboot
        minutes = fields.masks[CronField.minute.rawValue]
        hours = UInt32(truncatingIfNeeded: fields.masks[CronField.hour.rawValue])
        daysOfMonth = UInt32(truncatingIfNeeded: fields.masks[CronField.dayOfMonth.rawValue])
        months = UInt16(truncatingIfNeeded: fields.masks[CronField.month.rawValue])
        let weekdays = fields.masks[CronField.dayOfWeek.rawValue]
        daysOfWeek = UInt8(truncatingIfNeeded: (weekdays | (weekdays >> 7)) & 0x7F)
        minuteStarred = fields.starred[CronField.minute.rawValue]
        hourStarred = fields.starred[CronField.hour.rawValue]
        dayOfMonthStarred = fields.starred[CronField.dayOfMonth.rawValue]
        dayOfWeekStarred = fields.starred[CronField.dayOfWeek.rawValue]
        canEverFire = fields.isReboot || Self.someDateExists(
            months: months, daysOfMonth: daysOfMonth, bothMustMatch: dayOfMonthStarred || dayOfWeekStarred)
    }

    /// With the either-field rule every month has each weekday, so some day always matches. With the both-fields
    /// rule a month/day pair must exist (each such date falls on every weekday within a 400-year cycle).
    private static func someDateExists(months: UInt16, daysOfMonth: UInt32, bothMustMatch: Bool) -> Bool {
        guard months != 0 else { return false }
        guard bothMustMatch else { return true }
        for month in 1...12 where months & (1 << month) != 0 {
            let longest = CivilCalendar.daysInMonth(year: 2000, month: month)  // a leap year: February has 29
            let possible: UInt32 = (1 << UInt32(longest + 1)) &- 2  // bits 1...longest
            if daysOfMonth & possible != 0 { return true }
        }
        return false
    }
}
