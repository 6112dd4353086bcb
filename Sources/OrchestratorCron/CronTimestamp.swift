/// ISO-8601 timestamps as `cron next` reads (`--from`) and prints them.
public enum CronTimestamp {
    /// `2026-03-08T03:00:00-04:00`: the wall-clock time in `zone` with the offset in force at `instant`
    /// (`+00:00` for UTC; `±HH:MM:SS` only for historical offsets with seconds).
    public static func format(_ instant: Int64, in zone: any ZoneRules) -> String {
        var writer = CronTimestampWriter()
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: CronTimestampWriter.maximumLineLength) {
            buffer in
            let length = writer.writeLine(instant, offset: zone.offset(at: instant), to: buffer.baseAddress!)
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<(length - 1)]), as: UTF8.self)
        }
    }

    /// Reads `YYYY-MM-DDTHH:MM[:SS[.fraction]]` with an optional `Z` or `±HH:MM` / `±HHMM` / `±HH` (a space or
    /// `t` may stand for `T`; a date alone means its midnight). With an offset it is that instant (fractions of
    /// a second are dropped: fire times are whole minutes). Without one it is wall-clock time in `zone`: the
    /// first occurrence if the time occurs twice, and read with the offset in force before the jump if it falls
    /// in a gap (New York 2026-03-08 02:30 is 03:30 EDT).
    public static func parse(_ text: String, in zone: any ZoneRules) throws(CronError) -> Int64 {
        var reader = TimestampReader(bytes: Array(text.utf8))
        func fail(_ reason: String) -> CronError {
            .invalidTimestamp(text, reason: reason + " (expected ISO-8601 such as 2026-03-08T02:30:00-05:00)")
        }
        guard let year = reader.digits(4), reader.take("-"), let month = reader.digits(2), reader.take("-"),
            let day = reader.digits(2)
        else { throw fail("not a date") }
        guard (1...12).contains(month) else { throw fail("month \(month) does not exist") }
        guard (1...CivilCalendar.daysInMonth(year: Int64(year), month: month)).contains(day) else {
            throw fail("day \(day) does not exist in \(pad(year, 4))-\(pad(month, 2))")
        }
        var hour = 0
        var minute = 0
        var second = 0
        if reader.take("T") || reader.take("t") || reader.take(" ") {
            guard let h = reader.digits(2), reader.take(":"), let m = reader.digits(2) else {
                throw fail("not a time of day")
            }
            (hour, minute) = (h, m)
            if reader.take(":") {
                guard let s = reader.digits(2) else { throw fail("not a time of day") }
                second = s
                if reader.take(".") || reader.take(",") {
                    guard reader.skipDigits() > 0 else { throw fail("empty fraction of a second") }
                }
            }
            guard hour <= 23, minute <= 59, second <= 59 else { throw fail("time of day out of range") }
        }
        let local = CivilCalendar.dayNumber(year: Int64(year), month: month, day: day) * CivilCalendar.secondsPerDay
            + Int64(hour * 3600 + minute * 60 + second)
        if reader.atEnd { return instant(ofWallTime: local, in: zone) }
        var offset: Int64
        if reader.take("Z") || reader.take("z") {
            offset = 0
        } else {
            let negative: Bool
            if reader.take("+") { negative = false } else if reader.take("-") { negative = true } else {
                throw fail("unexpected text after the time")
            }
            guard let hours = reader.digits(2) else { throw fail("malformed UTC offset") }
            var minutes = 0
            if reader.take(":") {
                guard let m = reader.digits(2) else { throw fail("malformed UTC offset") }
                minutes = m
            } else if let m = reader.digits(2) {
                minutes = m
            }
            guard hours <= 23, minutes <= 59 else { throw fail("UTC offset out of range") }
            offset = Int64(hours * 3600 + minutes * 60) * (negative ? -1 : 1)
        }
        guard reader.atEnd else { throw fail("unexpected text after the UTC offset") }
        return local - offset
    }

    /// The instant a wall-clock time (local seconds) denotes in `zone`: its first occurrence; inside a gap, read
    /// with the offset in force before the jump.
    static func instant(ofWallTime local: Int64, in zone: any ZoneRules) -> Int64 {
        // Walk the constant-offset stretches around it, oldest first (offsets stay within ±26 hours).
        var start = local - 30 * 3600
        while true {
            let offset = Int64(zone.offset(at: start))
            let end = zone.nextTransition(after: start)
            let candidate = local - offset
            if candidate >= start, end.map({ candidate < $0 }) ?? true { return candidate }
            guard let end, end <= local + 30 * 3600 else { return candidate }
            let after = Int64(zone.offset(at: end))
            // A gap at `end` that swallows this wall time: read it with the offset before the jump.
            if local >= end + offset, local < end + after { return local - offset }
            start = end
        }
    }

    private static func pad<T: BinaryInteger>(_ value: T, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
