import Testing

@testable import OrchestratorCron

/// `--from` as read and fire times as printed.
struct TimestampTests {
    @Test(arguments: [
        ("2026-03-08T07:00:00Z", Int64(1_772_953_200)), ("2026-03-08T07:00Z", 1_772_953_200),
        ("2026-03-08T02:00:00-05:00", 1_772_953_200), ("2026-03-08T02:00-0500", 1_772_953_200),
        ("2026-03-08T12:30:00+05:30", 1_772_953_200), ("2026-03-08t07:00:00z", 1_772_953_200),
        ("2026-03-08 07:00:00+00:00", 1_772_953_200), ("2026-03-08T07:00:00.999Z", 1_772_953_200),
        ("2026-03-08T02:00:00-05", 1_772_953_200), ("1970-01-01T00:00:00Z", 0), ("1969-12-31T23:59:59Z", -1),
    ])
    func instantsWithAnOffset(text: String, instant: Int64) throws {
        #expect(try CronTimestamp.parse(text, in: try loadZone("Asia/Tokyo")) == instant)
    }

    @Test func wallTimeIsReadInTheZone() throws {
        let berlin = try loadZone("Europe/Berlin")
        #expect(try CronTimestamp.parse("2026-07-01T12:00", in: berlin) == 1_782_900_000)
        #expect(try CronTimestamp.parse("2026-07-01T12:00:00", in: berlin) == 1_782_900_000)
        #expect(try CronTimestamp.parse("2026-07-01", in: berlin) == 1_782_900_000 - 12 * 3600)
        // Gap: 02:30 on 2026-03-29 does not exist; read with +01:00 it is 03:30 CEST.
        #expect(CronTimestamp.format(try CronTimestamp.parse("2026-03-29T02:30", in: berlin), in: berlin)
            == "2026-03-29T03:30:00+02:00")
        // Overlap: 02:30 on 2026-10-25 occurs twice; the first is +02:00.
        #expect(CronTimestamp.format(try CronTimestamp.parse("2026-10-25T02:30", in: berlin), in: berlin)
            == "2026-10-25T02:30:00+02:00")
    }

    @Test(arguments: [
        "", "yesterday", "2026-13-01T00:00Z", "2026-02-30T00:00Z", "2026-02-29", "2026-1-01", "2026-01-01T24:00Z",
        "2026-01-01T12:60Z", "2026-01-01T12:00:60Z", "2026-01-01T12Z", "2026-01-01T12:00:00+25:00",
        "2026-01-01T12:00:00+05:", "2026-01-01T12:00:00 UTC", "2026-01-01T12:00:00.Z", "2026-01-01T",
        "20260101T120000Z", " 2026-01-01T12:00Z",
    ])
    func refused(text: String) throws {
        #expect(throws: CronError.self) { try CronTimestamp.parse(text, in: try loadZone("UTC")) }
    }

    @Test func formatUsesTheOffsetInForceAtTheInstant() throws {
        let newYork = try loadZone("America/New_York")
        #expect(CronTimestamp.format(1_772_953_200, in: newYork) == "2026-03-08T03:00:00-04:00")
        #expect(CronTimestamp.format(1_772_953_199, in: newYork) == "2026-03-08T01:59:59-05:00")
        #expect(CronTimestamp.format(0, in: try loadZone("UTC")) == "1970-01-01T00:00:00+00:00")
        #expect(CronTimestamp.format(0, in: try loadZone("Etc/UTC")) == "1970-01-01T00:00:00+00:00")
        #expect(CronTimestamp.format(1_775_311_200, in: try loadZone("Australia/Lord_Howe")) == "2026-04-05T01:00:00+11:00")
        #expect(CronTimestamp.format(-1, in: try loadZone("UTC")) == "1969-12-31T23:59:59+00:00")
        #expect(CronTimestamp.format(1_000_000_000, in: try loadZone("Asia/Kolkata")) == "2001-09-09T07:16:40+05:30")
    }

    @Test func civilCalendarRoundTripsAndKnowsWeekdays() {
        for day in stride(from: Int64(-800_000), through: 800_000, by: 997) {
            let date = CivilCalendar.date(dayNumber: day)
            #expect(CivilCalendar.dayNumber(year: date.year, month: date.month, day: date.day) == day)
        }
        #expect(CivilCalendar.weekday(dayNumber: 0) == 4)  // Thursday
        #expect(CivilCalendar.weekday(dayNumber: -1) == 3)
        #expect(CivilCalendar.date(dayNumber: CivilCalendar.dayNumber(year: 2100, month: 2, day: 28) + 1) == (2100, 3, 1))
        #expect(CivilCalendar.date(dayNumber: CivilCalendar.dayNumber(year: 2000, month: 2, day: 28) + 1) == (2000, 2, 29))
    }
}
