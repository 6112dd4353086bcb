@testable import OrchestratorCron

/// The first `count` fire times of `expression` after `from` (read in `tz`), formatted as `cron next` prints them.
func fireTimes(_ expression: String, tz: String, from: String, count: Int) throws -> [String] {
    let zone = try loadZone(tz)
    let schedule = CronSchedule(expression: try CronExpression(parsing: expression), zone: zone)
    return schedule.fires(after: try CronTimestamp.parse(from, in: zone), count: count)
        .map { CronTimestamp.format($0, in: zone) }
}

/// The values a bit set selects, ascending.
func values<T: FixedWidthInteger>(_ mask: T) -> [Int] {
    (0..<T.bitWidth).filter { mask & (T(1) << T(truncatingIfNeeded: $0)) != 0 }
}

/// The parse error of `text`, or nil if it parses.
func parseError(_ text: String) -> CronError? {
    do {
        _ = try CronExpression(parsing: text)
        return nil
    } catch {
        return error
    }
}
