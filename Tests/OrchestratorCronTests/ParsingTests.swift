import Testing

@testable import OrchestratorCron

/// Spec §2: what each piece of syntax selects.
struct ParsingTests {
    @Test func stepsRestartInEveryHourAndCoverTheWholeField() throws {
        #expect(values(try CronExpression(parsing: "*/7 * * * *").minutes) == [0, 7, 14, 21, 28, 35, 42, 49, 56])
        #expect(values(try CronExpression(parsing: "* */5 * * *").hours) == [0, 5, 10, 15, 20])
        #expect(values(try CronExpression(parsing: "* * */10 * *").daysOfMonth) == [1, 11, 21, 31])
        #expect(values(try CronExpression(parsing: "* * * */4 *").months) == [1, 5, 9])
        #expect(values(try CronExpression(parsing: "* * * * */2").daysOfWeek) == [0, 2, 4, 6])
        #expect(values(try CronExpression(parsing: "*/59 */23 */31 */12 */7").minutes) == [0, 59])
        #expect(values(try CronExpression(parsing: "* * * * */7").daysOfWeek) == [0])
    }

    @Test func rangesAndRangeSteps() throws {
        #expect(values(try CronExpression(parsing: "10-20/15 * * * *").minutes) == [10])
        #expect(values(try CronExpression(parsing: "10-20/5 * * * *").minutes) == [10, 15, 20])
        #expect(values(try CronExpression(parsing: "* 22-23,0-2 * * *").hours) == [0, 1, 2, 22, 23])
        #expect(values(try CronExpression(parsing: "* * 1-31 * *").daysOfMonth) == Array(1...31))
    }

    @Test func listsMayRepeatAndNeedNotBeSorted() throws {
        #expect(values(try CronExpression(parsing: "30,5,30,05,0 * * * *").minutes) == [0, 5, 30])
    }

    @Test func namesInAnyCaseAsValuesAndRangeEnds() throws {
        #expect(values(try CronExpression(parsing: "0 0 * jan-mar *").months) == [1, 2, 3])
        #expect(values(try CronExpression(parsing: "0 0 * Jun,DEC,sep *").months) == [6, 9, 12])
        #expect(values(try CronExpression(parsing: "0 0 * * MON-FRI").daysOfWeek) == [1, 2, 3, 4, 5])
        #expect(values(try CronExpression(parsing: "0 0 * * mon-fri/2").daysOfWeek) == [1, 3, 5])
        #expect(values(try CronExpression(parsing: "0 0 * * 1-fri").daysOfWeek) == [1, 2, 3, 4, 5])
        #expect(values(try CronExpression(parsing: "0 0 * 2-Apr *").months) == [2, 3, 4])
    }

    @Test func sundayIsZeroAndSevenAndADayRangeEndingInSundayEndsAtSeven() throws {
        #expect(values(try CronExpression(parsing: "0 0 * * 7").daysOfWeek) == [0])
        #expect(values(try CronExpression(parsing: "0 0 * * 0").daysOfWeek) == [0])
        #expect(values(try CronExpression(parsing: "0 0 * * FRI-SUN").daysOfWeek) == [0, 5, 6])
        #expect(values(try CronExpression(parsing: "0 0 * * 5-0").daysOfWeek) == [0, 5, 6])
        #expect(values(try CronExpression(parsing: "0 0 * * MON-SUN").daysOfWeek) == Array(0...6))
        #expect(values(try CronExpression(parsing: "0 0 * * 5-7").daysOfWeek) == [0, 5, 6])
        #expect(values(try CronExpression(parsing: "0 0 * * 0-6").daysOfWeek) == Array(0...6))
    }

    @Test func leadingZerosAndBlanks() throws {
        let spaced = try CronExpression(parsing: " \t05  \t 02 * *\t*  ")
        #expect(values(spaced.minutes) == [5])
        #expect(values(spaced.hours) == [2])
        #expect(spaced.source == " \t05  \t 02 * *\t*  ")
    }

    @Test(arguments: [
        ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"), ("  @daily\t", "0 0 * * *"),
    ])
    func macrosMeanTheirFields(macro: String, fields: String) throws {
        let expanded = try CronExpression(parsing: macro)
        let written = try CronExpression(parsing: fields)
        #expect(expanded.minutes == written.minutes && expanded.hours == written.hours)
        #expect(expanded.daysOfMonth == written.daysOfMonth && expanded.months == written.months)
        #expect(expanded.daysOfWeek == written.daysOfWeek)
        #expect(expanded.isWildcardJob == written.isWildcardJob)
        #expect(expanded.dayFieldsMustBothMatch == written.dayFieldsMustBothMatch)
        #expect(!expanded.isReboot && expanded.canEverFire)
    }

    @Test func rebootHasNoCalendarTimeButIsValid() throws {
        let reboot = try CronExpression(parsing: "@reboot")
        #expect(reboot.isReboot)
        #expect(reboot.canEverFire)
        #expect(CronSchedule(expression: reboot, zone: try loadZone("UTC")).nextFire(after: 0) == nil)
    }

    /// Spec §4: decided on the text; a leading `*` in the minute or hour field makes a wildcard job.
    @Test(arguments: [
        ("*/15 * * * *", true), ("30 * * * *", true), ("* 2 * * *", true), ("*/5 2 * * *", true),
        ("*,30 2 * * *", true), ("0 */2 * * *", true), ("@hourly", true),
        ("30 2 * * *", false), ("0 0-23/2 * * *", false), ("0-59 0-23 * * *", false), ("0,30 1,2 * * *", false),
        ("@daily", false), ("@weekly", false), ("@monthly", false), ("@yearly", false), ("0 2 * * */2", false),
    ])
    func wildcardOrFixedTime(expression: String, wildcard: Bool) throws {
        #expect(try CronExpression(parsing: expression).isWildcardJob == wildcard)
    }

    /// Spec §3: both day fields must match when either text begins with `*`; otherwise either may.
    @Test(arguments: [
        ("0 0 1,15 * FRI", false), ("0 0 */2 * MON", true), ("0 0 13 * 0-6", false), ("0 0 1-31 * 0-6", false),
        ("0 0 */1 * 5", true), ("0 0 *,13 * 5", true), ("0 0 13 * *", true), ("0 0 13 * */1", true),
        ("0 0 * * *", true),
    ])
    func dayRuleIsDecidedOnTheText(expression: String, both: Bool) throws {
        #expect(try CronExpression(parsing: expression).dayFieldsMustBothMatch == both)
    }

    @Test(arguments: [
        ("0 0 30 2 *", false), ("0 0 31 2 *", false), ("0 0 30,31 2 *", false), ("0 0 31 4,6,9,11 *", false),
        ("0 0 31 2,4 */7", false), ("0 0 */30 2 *", true),  // */30 is 1 and 31
        ("0 0 29 2 *", true), ("0 0 31 2 MON", true),  // either field: every Monday in February
        ("0 0 30 2 1-5", true), ("0 0 31 1-12 *", true), ("0 0 31 2,3 *", true), ("@reboot", true),
    ])
    func canEverFireIsDecidedFromTheFields(expression: String, fires: Bool) throws {
        #expect(try CronExpression(parsing: expression).canEverFire == fires)
    }

    @Test func equalityAndHashingFollowTheText() throws {
        #expect(try CronExpression(parsing: "0 0 * * *") == CronExpression(parsing: "0 0 * * *"))
        #expect(try CronExpression(parsing: "0 0 * * *") != CronExpression(parsing: "@daily"))
        #expect(Set([try CronExpression(parsing: "5 * * * *"), try CronExpression(parsing: "5 * * * *")]).count == 1)
    }
}
