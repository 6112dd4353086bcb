/// Plain wall-clock matching: which local calendar minutes the fields select, with no time zone involved.
/// Local times are "local seconds": seconds since 1970-01-01T00:00 of the wall clock.
extension CronExpression {
    func matchesDay(dayOfMonth: Int, weekday: Int) -> Bool {
        let dayMatches = daysOfMonth & (1 << UInt32(dayOfMonth)) != 0
        let weekdayMatches = daysOfWeek & (1 << UInt8(weekday)) != 0
        return dayFieldsMustBothMatch ? dayMatches && weekdayMatches : dayMatches || weekdayMatches
    }

    func matches(localSeconds: Int64) -> Bool {
        let day = CivilCalendar.floorDivide(localSeconds, CivilCalendar.secondsPerDay)
        let minuteOfDay = Int((localSeconds - day * CivilCalendar.secondsPerDay) / 60)
        let date = CivilCalendar.date(dayNumber: day)
        return months & (1 << UInt16(date.month)) != 0
            && matchesDay(dayOfMonth: date.day, weekday: CivilCalendar.weekday(dayNumber: day))
            && hours & (1 << UInt32(minuteOfDay / 60)) != 0
            && minutes & (1 << UInt64(minuteOfDay % 60)) != 0
    }

    /// The first matching local minute at or after `start` (rounded up to a whole minute). Walks by days,
    /// skipping whole months and, when both day fields must match, straight to the next listed day of month.
    /// Every pattern repeats after one 400-year Gregorian cycle (146 097 days, a whole number of weeks), so
    /// finding nothing within one cycle means nothing ever matches: nil.
    func firstMatch(atOrAfter start: Int64) -> Int64? {
        let aligned = CivilCalendar.ceilingMinute(start)
        var day = CivilCalendar.floorDivide(aligned, CivilCalendar.secondsPerDay)
        var minuteOfDay = Int((aligned - day * CivilCalendar.secondsPerDay) / 60)
        let lastDay = day + 146_097 + 1
        while day <= lastDay {
            let date = CivilCalendar.date(dayNumber: day)
            if months & (1 << UInt16(date.month)) == 0 {
                day = firstDayOfNextSelectedMonth(after: date.year, date.month)
                minuteOfDay = 0
                continue
            }
            if !matchesDay(dayOfMonth: date.day, weekday: CivilCalendar.weekday(dayNumber: day)) {
                let monthLength = CivilCalendar.daysInMonth(year: date.year, month: date.month)
                if dayFieldsMustBothMatch {
                    // Jump to the next listed day of this month, or past the month's end.
                    let later = daysOfMonth & ~((UInt32(2) << UInt32(date.day)) &- 1)
                    let next = later == 0 ? monthLength + 1 : min(later.trailingZeroBitCount, monthLength + 1)
                    day += Int64(next - date.day)
                } else {
                    day += 1
                }
                minuteOfDay = 0
                continue
            }
            if let time = firstTime(atOrAfter: minuteOfDay) {
                return day * CivilCalendar.secondsPerDay + Int64(time) * 60
            }
            day += 1
            minuteOfDay = 0
        }
        return nil
    }

    /// The first selected minute of the day at or after `minuteOfDay`, nil if none is left that day.
    private func firstTime(atOrAfter minuteOfDay: Int) -> Int? {
        let hour = minuteOfDay / 60
        if hours & (1 << UInt32(hour)) != 0 {
            let later = minutes & ~((UInt64(1) << UInt64(minuteOfDay % 60)) &- 1)
            if later != 0 { return hour * 60 + later.trailingZeroBitCount }
        }
        let laterHours = hours & ~((UInt32(2) << UInt32(hour)) &- 1)
        guard laterHours != 0, minutes != 0 else { return nil }
        return laterHours.trailingZeroBitCount * 60 + minutes.trailingZeroBitCount
    }

    private func firstDayOfNextSelectedMonth(after year: Int64, _ month: Int) -> Int64 {
        let later = months & ~((UInt16(2) << UInt16(month)) &- 1)
        if later != 0 {
            return CivilCalendar.dayNumber(year: year, month: later.trailingZeroBitCount, day: 1)
        }
        return CivilCalendar.dayNumber(year: year + 1, month: months.trailingZeroBitCount, day: 1)
    }
}
