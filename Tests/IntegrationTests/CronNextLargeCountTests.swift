import Foundation
import Testing

/// `orchestrator cron next --count N` with N in the hundreds of thousands, through the real binary, against a
/// reference computed here without the evaluator: Foundation's zone for each instant's offset and the C
/// library's `gmtime_r` for the wall-clock fields. The binary writes its lines in large blocks with a formatter
/// that remembers the day and the offset between lines; these runs cross dozens of offset changes, so a line
/// printed with a stale offset or date shows up.
struct CronNextLargeCountTests {
    let instance: TestInstance

    init() throws {
        instance = try TestInstance(config: "")
    }

    /// The lines `cron next ARGUMENTS --count COUNT` prints.
    func cronNextLines(_ arguments: [String], count: Int) throws -> [Substring] {
        let process = Process()
        // coreutils' timeout kills it after a minute (status 137), so a hang fails the test instead of stalling it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["-s", "KILL", "60", TestInstance.binary, "cron", "next"] + arguments + ["--count", String(count)]
        process.currentDirectoryURL = instance.root
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(stderr)")
        #expect(stderr.isEmpty)
        #expect(stdout.hasSuffix("\n"))
        return stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    }

    /// Every 5 minutes is every 5 real minutes through both changes (spec §4.1, §4.2): two years of them are
    /// exactly the multiples of 300 s after the start, each with the offset in force.
    @Test func everyFiveMinutesInBerlinForTwoYears() throws {
        let start: Int64 = 1_767_225_600  // 2026-01-01T00:00:00Z
        let lines = try cronNextLines(["*/5 * * * *", "--from", "2026-01-01T00:00:00Z", "--tz", "Europe/Berlin"], count: 210_000)
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        #expect(lines.count == 210_000)
        for (index, line) in lines.enumerated() {
            let expected = referenceTimestamp(start + 300 * Int64(index + 1), in: berlin)
            #expect(line == expected, "line \(index + 1)")
            if line != expected { break }
        }
        #expect(lines.first == "2026-01-01T01:05:00+01:00")
        #expect(lines.contains("2026-03-29T01:55:00+01:00") && lines.contains("2026-03-29T03:00:00+02:00"))
        #expect(lines.filter { $0.hasPrefix("2026-10-25T02:00:00") } == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"])
    }

    /// Lord Howe's offset changes by half an hour (+10:30 / +11:00); every quarter hour is every 900 real seconds.
    @Test func everyQuarterHourOnLordHowe() throws {
        let start: Int64 = 1_767_225_600
        let lines = try cronNextLines(["*/15 * * * *", "--from", "2026-01-01T00:00:00Z", "--tz", "Australia/Lord_Howe"], count: 100_000)
        let lordHowe = try #require(TimeZone(identifier: "Australia/Lord_Howe"))
        #expect(lines.count == 100_000)
        for (index, line) in lines.enumerated() {
            let expected = referenceTimestamp(start + 900 * Int64(index + 1), in: lordHowe)
            #expect(line == expected, "line \(index + 1)")
            if line != expected { break }
        }
    }

    /// A daily 02:30 job in New York for 60 years: one line a day, each the reference's text for its own instant,
    /// at 02:30, or at 03:00 EDT on the spring-forward days (and only those), never twice on a day.
    @Test func dailyFixedTimeInNewYorkForSixtyYears() throws {
        let count = 60 * 365
        let lines = try cronNextLines(["30 2 * * *", "--from", "2026-01-01T00:00:00Z", "--tz", "America/New_York"], count: count)
        let newYork = try #require(TimeZone(identifier: "America/New_York"))
        #expect(lines.count == count)
        var previousDay: Int64?
        var springForwards = 0
        for line in lines {
            guard let instant = instant(ofTimestamp: line) else {
                Issue.record("not a timestamp: \(line)")
                return
            }
            guard referenceTimestamp(instant, in: newYork) == line else {
                Issue.record("\(line) is not how the reference writes its instant: \(referenceTimestamp(instant, in: newYork))")
                return
            }
            let localDay = (instant + Int64(newYork.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant))))) / 86_400
            if let previousDay { #expect(localDay == previousDay + 1, "\(line)") }
            previousDay = localDay
            if line.contains("T03:00:00") {
                springForwards += 1
                let hourBefore = Date(timeIntervalSince1970: TimeInterval(instant - 3600))
                #expect(line.hasSuffix("-04:00") && newYork.secondsFromGMT(for: hourBefore) == -5 * 3600, "\(line)")
            } else {
                #expect(line.contains("T02:30:00"), "\(line)")
            }
        }
        #expect(springForwards == 60)
    }
}

/// `YYYY-MM-DDTHH:MM:SS±HH:MM` for `instant` in `timeZone`, the straightforward way.
private func referenceTimestamp(_ instant: Int64, in timeZone: TimeZone) -> String {
    let offset = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
    var local = time_t(instant + Int64(offset))
    var fields = tm()
    gmtime_r(&local, &fields)
    func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
    var text = "\(Int(fields.tm_year) + 1900)-\(two(Int(fields.tm_mon) + 1))-\(two(Int(fields.tm_mday)))T"
    text += "\(two(Int(fields.tm_hour))):\(two(Int(fields.tm_min))):\(two(Int(fields.tm_sec)))"
    return text + (offset < 0 ? "-" : "+") + "\(two(abs(offset) / 3600)):\(two(abs(offset) / 60 % 60))"
}

/// The instant a `YYYY-MM-DDTHH:MM:SS±HH:MM` line names, read with its own offset.
private func instant(ofTimestamp text: Substring) -> Int64? {
    let parts = text.split(whereSeparator: { "-T:+".contains($0) }).compactMap { Int($0) }
    guard text.count == 25, parts.count == 8 else { return nil }
    var fields = tm()
    fields.tm_year = Int32(parts[0] - 1900)
    fields.tm_mon = Int32(parts[1] - 1)
    fields.tm_mday = Int32(parts[2])
    fields.tm_hour = Int32(parts[3])
    fields.tm_min = Int32(parts[4])
    fields.tm_sec = Int32(parts[5])
    let sign: Int64 = text[text.index(text.startIndex, offsetBy: 19)] == "-" ? -1 : 1
    return Int64(timegm(&fields)) - sign * Int64(parts[6] * 3600 + parts[7] * 60)
}
