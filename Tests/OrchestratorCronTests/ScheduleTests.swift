import Foundation
import Testing

@testable import OrchestratorCron

/// Fire times away from daylight-saving changes: steps, names, the day rule, rare dates.
struct ScheduleTests {
    @Test func stepsRestartEveryHour() throws {
        #expect(try fireTimes("*/7 * * * *", tz: "UTC", from: "2026-01-01T00:50:00Z", count: 3) == [
            "2026-01-01T00:56:00+00:00", "2026-01-01T01:00:00+00:00", "2026-01-01T01:07:00+00:00",
        ])
    }

    @Test func strictlyAfterFrom() throws {
        #expect(try fireTimes("0 12 * * *", tz: "UTC", from: "2026-05-01T12:00:00Z", count: 1) == ["2026-05-02T12:00:00+00:00"])
        #expect(try fireTimes("0 12 * * *", tz: "UTC", from: "2026-05-01T11:59:59Z", count: 1) == ["2026-05-01T12:00:00+00:00"])
        #expect(try fireTimes("* * * * *", tz: "UTC", from: "2026-05-01T11:59:30Z", count: 2) == [
            "2026-05-01T12:00:00+00:00", "2026-05-01T12:01:00+00:00",
        ])
    }

    @Test func eitherDayFieldWhenBothAreRestricted() throws {
        // 2026-01-01 is a Thursday: the 1st, the 15th and every Friday.
        #expect(try fireTimes("0 0 1,15 * FRI", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 8) == [
            "2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00", "2026-01-15T00:00:00+00:00",
            "2026-01-16T00:00:00+00:00", "2026-01-23T00:00:00+00:00", "2026-01-30T00:00:00+00:00",
            "2026-02-01T00:00:00+00:00", "2026-02-06T00:00:00+00:00",
        ])
    }

    @Test func bothDayFieldsWhenOneTextStartsWithAStar() throws {
        // Odd-numbered days that are Mondays: January 2026 Mondays are 5, 12, 19, 26; February 2, 9, 16, 23.
        #expect(try fireTimes("0 0 */2 * MON", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 4) == [
            "2026-01-05T00:00:00+00:00", "2026-01-19T00:00:00+00:00", "2026-02-09T00:00:00+00:00",
            "2026-02-23T00:00:00+00:00",
        ])
        #expect(try fireTimes("0 0 13 * *", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 2) == [
            "2026-01-13T00:00:00+00:00", "2026-02-13T00:00:00+00:00",
        ])
    }

    @Test func writtenOutFullRangesAreRestricted() throws {
        // `13 * 0-6`: the 13th or any day of the week, so every day.
        #expect(try fireTimes("0 0 13 * 0-6", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 3) == [
            "2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00",
        ])
    }

    @Test func namesRangesAndSunday() throws {
        // Weekdays in January to March at 09:30; 2026-03-27 is a Friday.
        #expect(try fireTimes("30 9 * jan-mar MON-FRI", tz: "UTC", from: "2026-03-27T10:00:00Z", count: 2) == [
            "2026-03-30T09:30:00+00:00", "2026-03-31T09:30:00+00:00",
        ])
        #expect(try fireTimes("0 0 * * FRI-SUN", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 4) == [
            "2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00",
            "2026-01-09T00:00:00+00:00",
        ])
        #expect(try fireTimes("0 0 * * 7", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 1) == ["2026-01-04T00:00:00+00:00"])
    }

    @Test func macros() throws {
        #expect(try fireTimes("@yearly", tz: "UTC", from: "2026-06-01T00:00:00Z", count: 1) == ["2027-01-01T00:00:00+00:00"])
        #expect(try fireTimes("@monthly", tz: "UTC", from: "2026-06-01T00:00:00Z", count: 1) == ["2026-07-01T00:00:00+00:00"])
        #expect(try fireTimes("@weekly", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 1) == ["2026-01-04T00:00:00+00:00"])
        #expect(try fireTimes("@hourly", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 1) == ["2026-01-01T01:00:00+00:00"])
        #expect(try fireTimes("@midnight", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 1) == ["2026-01-02T00:00:00+00:00"])
    }

    @Test func february29AcrossTheYear2100() throws {
        #expect(try fireTimes("0 0 29 2 *", tz: "UTC", from: "2096-03-01T00:00:00Z", count: 2) == [
            "2104-02-29T00:00:00+00:00", "2108-02-29T00:00:00+00:00",
        ])
    }

    @Test func february29OnASundayIsDecadesApart() throws {
        // `*/7` is Sunday only and starts with `*`, so both day fields must match.
        let expected = [
            "2032-02-29T00:00:00+00:00", "2060-02-29T00:00:00+00:00", "2088-02-29T00:00:00+00:00",
            "2128-02-29T00:00:00+00:00", "2156-02-29T00:00:00+00:00",
        ]
        #expect(try fireTimes("0 0 29 2 */7", tz: "UTC", from: "2026-01-01T00:00:00Z", count: 5) == expected)
        // In a zone with daylight saving the walk crosses about 60 changes between two answers.
        #expect(try fireTimes("0 0 29 2 */7", tz: "Europe/Berlin", from: "2088-03-01T00:00:00", count: 1) == [
            "2128-02-29T00:00:00+01:00",
        ])
    }

    /// Monday 1 or 29 February (`*/28` is the 1st and the 29th): checked against Foundation's calendar, day by day.
    @Test func february29OnAMonday() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var expected: [Int64] = []
        var day = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01
        while expected.count < 12 {
            let parts = calendar.dateComponents([.month, .day, .weekday], from: day)
            if parts.month == 2 && (parts.day == 1 || parts.day == 29) && parts.weekday == 2 {
                expected.append(Int64(day.timeIntervalSince1970) + 7 * 3600)
            }
            day = calendar.date(byAdding: .day, value: 1, to: day)!
        }
        let schedule = CronSchedule(expression: try CronExpression(parsing: "0 7 */28 2 MON"), zone: try loadZone("UTC"))
        #expect(schedule.fires(after: 1_767_225_600, count: 12) == expected)
    }

    @Test func rareDatesAnswerAtOnce() throws {
        let cases = ["0 0 29 2 */7", "0 0 29 2 *", "59 23 31 12 */7", "0 0 */28 2 MON", "0 0 30 2 *", "0 0 31 4,6 *"]
        for zoneName in ["UTC", "America/New_York", "Australia/Lord_Howe"] {
            let zone = try loadZone(zoneName)
            for text in cases {
                let schedule = CronSchedule(expression: try CronExpression(parsing: text), zone: zone)
                for start in stride(from: Int64(0), to: 4_000_000_000, by: 400_000_000) {
                    let clock = ContinuousClock()
                    let elapsed = clock.measure { _ = schedule.nextFire(after: start) }
                    // A minute-by-minute search would need millions of steps for these (seconds, even
                    // optimised); a day-wise one takes microseconds. The bound tolerates a loaded CI machine.
                    #expect(elapsed < .milliseconds(500), "\(text) in \(zoneName) from \(start): \(elapsed)")
                }
            }
        }
    }

    @Test func neverFiringExpressionsGiveNil() throws {
        for text in ["0 0 30 2 *", "0 0 31 2 *", "0 0 31 4,6,9,11 *", "0 0 30 2 */7", "@reboot"] {
            let schedule = CronSchedule(expression: try CronExpression(parsing: text), zone: try loadZone("UTC"))
            #expect(schedule.nextFire(after: 0) == nil, "\(text)")
        }
    }

    @Test func sequencesAreStrictlyIncreasingAndFireOnWholeMinutes() throws {
        let schedule = CronSchedule(expression: try CronExpression(parsing: "*/13 */5 * * *"), zone: try loadZone("UTC"))
        let fires = schedule.fires(after: 1_000_000_007, count: 500)
        #expect(fires.count == 500)
        #expect(zip(fires, fires.dropFirst()).allSatisfy { $0 < $1 })
        #expect(fires.allSatisfy { $0 % 60 == 0 })
    }
}
