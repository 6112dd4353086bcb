import Testing

@testable import OrchestratorCron

/// Spec §4, worked by hand. New York 2026: 2026-03-08 02:00 EST → 03:00 EDT, 2026-11-01 02:00 EDT → 01:00 EST.
/// Berlin 2026: 03-29 02:00 → 03:00, 10-25 03:00 → 02:00. Lord Howe 2026: 04-05 02:00 (+11) → 01:30 (+10:30),
/// 10-04 02:00 (+10:30) → 02:30 (+11). Troll 2026: 03-29 01:00 (+00) → 03:00 (+02), 10-25 03:00 → 01:00.
struct DaylightSavingTests {
    // MARK: Spring forward, wildcard jobs: minutes in the gap do not happen.

    @Test func everyFifteenMinutesKeepsRealTimeSpacingThroughTheGap() throws {
        #expect(try fireTimes("*/15 * * * *", tz: "America/New_York", from: "2026-03-08T01:30", count: 4) == [
            "2026-03-08T01:45:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:15:00-04:00",
            "2026-03-08T03:30:00-04:00",
        ])
        #expect(try fireTimes("*/15 * * * *", tz: "Europe/Berlin", from: "2026-03-29T01:40", count: 2) == [
            "2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00",
        ])
        #expect(try fireTimes("*/15 * * * *", tz: "Australia/Lord_Howe", from: "2026-10-04T01:40", count: 3) == [
            "2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00",
        ])
    }

    @Test func hourlyAtHalfPastSkipsTheMissingHour() throws {
        #expect(try fireTimes("30 * * * *", tz: "America/New_York", from: "2026-03-08T00:00", count: 3) == [
            "2026-03-08T00:30:00-05:00", "2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00",
        ])
    }

    @Test func wildcardMinutesInsideTheGapHourAreNotCaughtUp() throws {
        #expect(try fireTimes("* 2 * * *", tz: "America/New_York", from: "2026-03-08T00:00", count: 1) == [
            "2026-03-09T02:00:00-04:00",
        ])
        #expect(try fireTimes("*/5 2 * * *", tz: "Europe/Berlin", from: "2026-03-29T00:00", count: 1) == [
            "2026-03-30T02:00:00+02:00",
        ])
    }

    // MARK: Spring forward, fixed-time jobs: once, at the first minute after the jump.

    @Test func dailyJobInTheGapRunsOnceAtTheFirstMinuteAfterTheJump() throws {
        #expect(try fireTimes("30 2 * * *", tz: "America/New_York", from: "2026-03-07T12:00", count: 3) == [
            "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00",
        ])
        #expect(try fireTimes("30 2 * * *", tz: "Europe/Berlin", from: "2026-03-28T12:00", count: 2) == [
            "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
        ])
        // Lord Howe jumps 30 minutes: 02:15 does not exist, 02:30 does.
        #expect(try fireTimes("15 2 * * *", tz: "Australia/Lord_Howe", from: "2026-10-03T12:00", count: 2) == [
            "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00",
        ])
        #expect(try fireTimes("30 2 * * *", tz: "Australia/Lord_Howe", from: "2026-10-03T12:00", count: 2) == [
            "2026-10-04T02:30:00+11:00", "2026-10-05T02:30:00+11:00",
        ])
        // Troll jumps two hours.
        #expect(try fireTimes("30 1 * * *", tz: "Antarctica/Troll", from: "2026-03-28T12:00", count: 2) == [
            "2026-03-29T03:00:00+02:00", "2026-03-30T01:30:00+02:00",
        ])
    }

    @Test func severalMatchesInTheGapAndOneAfterItAreStillOneRun() throws {
        #expect(try fireTimes("0,30 2,3 * * *", tz: "America/New_York", from: "2026-03-08T00:00", count: 3) == [
            "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:00:00-04:00",
        ])
        #expect(try fireTimes("0,15 2 * * *", tz: "Australia/Lord_Howe", from: "2026-10-03T12:00", count: 2) == [
            "2026-10-04T02:30:00+11:00", "2026-10-05T02:00:00+11:00",
        ])
    }

    @Test func daysTheExpressionDoesNotMatchAreNotCaughtUp() throws {
        // 2026-03-08 is a Sunday; the job runs on weekdays only.
        #expect(try fireTimes("30 2 * * 1-5", tz: "America/New_York", from: "2026-03-07T12:00", count: 1) == [
            "2026-03-09T02:30:00-04:00",
        ])
        #expect(try fireTimes("30 2 * * 0", tz: "America/New_York", from: "2026-03-07T12:00", count: 1) == [
            "2026-03-08T03:00:00-04:00",
        ])
    }

    @Test func usRulesBefore2007() throws {
        // 2006: first Sunday of April and last Sunday of October.
        #expect(try fireTimes("30 2 * * *", tz: "America/New_York", from: "2006-03-11T12:00", count: 1) == [
            "2006-03-12T02:30:00-05:00",
        ])
        #expect(try fireTimes("30 2 * * *", tz: "America/New_York", from: "2006-04-01T12:00", count: 2) == [
            "2006-04-02T03:00:00-04:00", "2006-04-03T02:30:00-04:00",
        ])
        #expect(try fireTimes("30 1 * * *", tz: "America/New_York", from: "2006-10-28T12:00", count: 2) == [
            "2006-10-29T01:30:00-04:00", "2006-10-30T01:30:00-05:00",
        ])
    }

    // MARK: Fall back, wildcard jobs: both passes.

    @Test func everyFifteenMinutesRunsInBothPasses() throws {
        #expect(try fireTimes("*/15 * * * *", tz: "America/New_York", from: "2026-11-01T00:50", count: 10) == [
            "2026-11-01T01:00:00-04:00", "2026-11-01T01:15:00-04:00", "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:45:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:15:00-05:00",
            "2026-11-01T01:30:00-05:00", "2026-11-01T01:45:00-05:00", "2026-11-01T02:00:00-05:00",
            "2026-11-01T02:15:00-05:00",
        ])
        #expect(try fireTimes("*/15 * * * *", tz: "Australia/Lord_Howe", from: "2026-04-05T01:20", count: 5) == [
            "2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30",
            "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30",
        ])
        #expect(try fireTimes("*/30 * * * *", tz: "Europe/Berlin", from: "2026-10-25T01:50", count: 6) == [
            "2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00", "2026-10-25T03:30:00+01:00",
        ])
    }

    @Test func hourlyAtHalfPastRunsTwiceAnHourApart() throws {
        #expect(try fireTimes("30 * * * *", tz: "America/New_York", from: "2026-11-01T00:00", count: 4) == [
            "2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:30:00-05:00",
        ])
        #expect(try fireTimes("0 * * * *", tz: "Antarctica/Troll", from: "2026-10-25T00:30", count: 5) == [
            "2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T01:00:00+00:00",
            "2026-10-25T02:00:00+00:00", "2026-10-25T03:00:00+00:00",
        ])
    }

    // MARK: Fall back, fixed-time jobs: the first pass only.

    @Test func dailyJobInTheOverlapRunsOnceWithTheEarlierOffset() throws {
        #expect(try fireTimes("0 1 * * *", tz: "America/New_York", from: "2026-10-31T12:00", count: 2) == [
            "2026-11-01T01:00:00-04:00", "2026-11-02T01:00:00-05:00",
        ])
        #expect(try fireTimes("30 1 * * *", tz: "America/New_York", from: "2026-10-31T12:00", count: 2) == [
            "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00",
        ])
        #expect(try fireTimes("30 2 * * *", tz: "Europe/Berlin", from: "2026-10-24T12:00", count: 2) == [
            "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00",
        ])
        #expect(try fireTimes("45 1 * * *", tz: "Australia/Lord_Howe", from: "2026-04-04T12:00", count: 2) == [
            "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30",
        ])
        #expect(try fireTimes("30 2 * * *", tz: "Antarctica/Troll", from: "2026-10-24T12:00", count: 2) == [
            "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+00:00",
        ])
    }

    @Test func fixedTimeHourListsRunOnlyInTheFirstPass() throws {
        // `0-59` and `0-23` written out are fixed-time: no second pass.
        #expect(try fireTimes("0,30 0-23 * * *", tz: "America/New_York", from: "2026-11-01T00:45", count: 4) == [
            "2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T02:00:00-05:00",
            "2026-11-01T02:30:00-05:00",
        ])
    }

    @Test func fromInsideTheSecondPassDoesNotRepeatTheFirst() throws {
        // 01:10 EST is in the second pass; the 01:30 job already ran at 01:30 EDT.
        #expect(try fireTimes("30 1 * * *", tz: "America/New_York", from: "2026-11-01T01:10:00-05:00", count: 1) == [
            "2026-11-02T01:30:00-05:00",
        ])
        #expect(try fireTimes("30 * * * *", tz: "America/New_York", from: "2026-11-01T01:10:00-05:00", count: 1) == [
            "2026-11-01T01:30:00-05:00",
        ])
    }

    // MARK: Changes of three hours or more are plain.

    @Test func samoaSkippedADayIn2011() throws {
        // 2011-12-29 24:00 (-10:00) became 2011-12-31 00:00 (+14:00): no catch-up for the lost day.
        #expect(try fireTimes("30 2 * * *", tz: "Pacific/Apia", from: "2011-12-28T12:00", count: 3) == [
            "2011-12-29T02:30:00-10:00", "2011-12-31T02:30:00+14:00", "2012-01-01T02:30:00+14:00",
        ])
        #expect(try fireTimes("*/30 * * * *", tz: "Pacific/Apia", from: "2011-12-29T23:00", count: 2) == [
            "2011-12-29T23:30:00-10:00", "2011-12-31T00:00:00+14:00",
        ])
    }

    /// A fake zone that jumps 2:59 and then 3:00 forward, and falls back by the same amounts.
    @Test func theThreeHourThreshold() throws {
        let day: Int64 = 86_400
        let zone = FakeZone(
            initial: 0,
            changes: [
                (at: 10 * day + 3600, offset: 10_740),  // 01:00 → 03:59
                (at: 20 * day + 3600, offset: 0),  // 03:59 → 01:00
                (at: 30 * day + 3600, offset: 10_800),  // 01:00 → 04:00
                (at: 40 * day + 3600, offset: 0),  // 04:00 → 01:00
            ])
        let fixed = CronSchedule(expression: try CronExpression(parsing: "30 2 * * *"), zone: zone)
        // Under three hours: caught up at the first minute after the jump, and once in the overlap.
        #expect(fixed.nextFire(after: 10 * day) == 10 * day + 3600)
        #expect(fixed.fires(after: 19 * day + 43_200, count: 2) == [20 * day + 9000 - 10_740, 21 * day + 9000])
        // Three hours: plain. The lost 02:30 is skipped; the doubled 02:30 runs twice.
        #expect(fixed.nextFire(after: 30 * day) == 31 * day + 9000 - 10_800)
        #expect(fixed.fires(after: 39 * day + 43_200, count: 2) == [40 * day + 9000 - 10_800, 40 * day + 9000])
    }

    // MARK: Reading --from.

    @Test func wallTimeInTheGapIsReadWithTheOffsetBeforeTheJump() throws {
        let zone = try loadZone("America/New_York")
        let instant = try CronTimestamp.parse("2026-03-08T02:30", in: zone)
        #expect(CronTimestamp.format(instant, in: zone) == "2026-03-08T03:30:00-04:00")
    }

    @Test func doubledWallTimeMeansTheFirstOccurrence() throws {
        let zone = try loadZone("America/New_York")
        let instant = try CronTimestamp.parse("2026-11-01T01:30", in: zone)
        #expect(CronTimestamp.format(instant, in: zone) == "2026-11-01T01:30:00-04:00")
        let lordHowe = try loadZone("Australia/Lord_Howe")
        #expect(CronTimestamp.format(try CronTimestamp.parse("2026-04-05T01:45", in: lordHowe), in: lordHowe)
            == "2026-04-05T01:45:00+11:00")
    }
}
