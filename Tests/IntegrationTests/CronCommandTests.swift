import Foundation
import Testing

/// `orchestrator cron next` through the real binary: stdout, the one stderr line, exit statuses (spec/cron.md §1).
@Suite(.timeLimit(.minutes(1)))
struct CronCommandTests {
    let instance: TestInstance

    init() throws {
        instance = try TestInstance(config: "")
    }

    func cronNext(_ arguments: [String]) throws -> TestInstance.Output {
        try instance.run(["cron", "next"] + arguments, withConfig: false)
    }

    @Test func printsTheNextFireTimesWithTheOffsetInForce() throws {
        let output = try cronNext(["*/15 * * * *", "--from", "2026-03-08T01:30", "--count", "3", "--tz", "America/New_York"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "2026-03-08T01:45:00-05:00\n2026-03-08T03:00:00-04:00\n2026-03-08T03:15:00-04:00\n")
        #expect(output.stderr.isEmpty)
    }

    @Test func fixedTimeJobsAcrossBothChanges() throws {
        let spring = try cronNext(["30 2 * * *", "--from", "2026-03-07T12:00:00", "--count", "2", "--tz", "America/New_York"])
        #expect(spring.stdout == "2026-03-08T03:00:00-04:00\n2026-03-09T02:30:00-04:00\n")
        let autumn = try cronNext(["30 1 * * *", "--from=2026-10-31T12:00", "--count=2", "--tz=America/New_York"])
        #expect(autumn.stdout == "2026-11-01T01:30:00-04:00\n2026-11-02T01:30:00-05:00\n")
        let lordHowe = try cronNext(["15 2 * * *", "--from", "2026-10-03T12:00", "--tz", "Australia/Lord_Howe"])
        #expect(lordHowe.stdout == "2026-10-04T02:30:00+11:00\n")
    }

    @Test func defaultsToOneLineAndUTCOffsetsArePlusZero() throws {
        let output = try cronNext(["@daily", "--from", "2026-01-01T10:00:00Z", "--tz", "UTC"])
        #expect(output.status == 0)
        #expect(output.stdout == "2026-01-02T00:00:00+00:00\n")
    }

    /// Every command takes --config (SPEC §3); this one needs none and was refusing it ("unknown option", 64).
    @Test func configAndStoreAreTakenAndLeft() throws {
        let output = try cronNext(["@daily", "--config", "/nowhere.toml", "--store=postgres://x@y/z", "--from", "2026-01-01T10:00:00Z", "--tz", "UTC"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "2026-01-02T00:00:00+00:00\n")
    }

    @Test func fromWithAnOffsetIsThatInstantWhateverTheZone() throws {
        let output = try cronNext(["0 * * * *", "--from", "2026-06-01T12:30:00+02:00", "--tz", "Asia/Tokyo"])
        #expect(output.stdout == "2026-06-01T20:00:00+09:00\n")
    }

    @Test func withoutTzTheHostZoneFromTZIsUsed() throws {
        let output = try instance.run(
            ["cron", "next", "0 12 * * *", "--from", "2026-07-01T00:00:00Z"], withConfig: false, environment: ["TZ": "Europe/Berlin"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "2026-07-01T12:00:00+02:00\n")
    }

    /// A POSIX rule in `TZ` is not read (glibc's `date` reads it): the zone used instead is said, not silent.
    @Test func aTZThatIsNoZoneNameIsSaid() throws {
        let output = try instance.run(
            ["cron", "next", "0 12 * * *", "--from", "2026-07-01T00:00:00Z"], withConfig: false,
            environment: ["TZ": "EST5EDT,M3.2.0,M11.1.0"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stderr.hasPrefix("warning: TZ=\"EST5EDT,M3.2.0,M11.1.0\" is not a time zone name"), "\(output.stderr)")
    }

    @Test func rareDatesAnswerAtOnce() throws {
        let output = try cronNext(["0 0 29 2 */7", "--from", "2088-03-01T00:00Z", "--tz", "UTC", "--count", "2"])
        #expect(output.stdout == "2128-02-29T00:00:00+00:00\n2156-02-29T00:00:00+00:00\n")
    }

    /// (arguments, exit status, a fragment of the single stderr line)
    @Test(arguments: [
        (["5-1 * * * *"], Int32(65), #"error: cron expression "5-1 * * * *": minute: range 5-1 is reversed"#),
        (["* * * * * *"], 65, "found 6"),
        (["*/60 * * * *"], 65, "minute"),
        (["0 0 * * *", "--tz", "Mars/Olympus_Mons"], 65, "Mars/Olympus_Mons"),
        (["0 0 * * *", "--from", "next tuesday"], 65, "--from"),
        (["0 0 * * *", "--from", "2026-02-30T00:00"], 65, "--from"),
        (["0 0 30 2 *", "--tz", "UTC"], 65, "never fire"),
        (["@reboot"], 65, "@reboot"),
        (["* * * * *", "--count", "0"], 64, "--count"),
        (["* * * * *", "--count", "-3"], 64, "--count"),
        (["* * * * *", "--count", "many"], 64, "--count"),
        (["* * * * *", "--bogus"], 64, "--bogus"),
        (["0", "0", "*", "*", "*"], 64, "unexpected argument"),
        ([], 64, "missing"),
        (["* * * * *", "--tz"], 64, "--tz"),
    ])
    func errorsAreOneLineOnStderrAndNothingOnStdout(arguments: [String], status: Int32, fragment: String) throws {
        let output = try cronNext(arguments)
        #expect(output.status == status, "\(arguments): \(output.stderr)")
        #expect(output.stdout.isEmpty)
        let lines = output.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "\(arguments): \(output.stderr)")
        #expect(output.stderr.hasPrefix("error: "))
        #expect(output.stderr.contains(fragment), "\(arguments): \(output.stderr)")
    }
}
