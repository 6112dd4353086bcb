import Foundation
import TestSupport
import Testing

@testable import OrchestratorCron

/// `CronSchedule.Fires` (what `cron next --count N` walks) and `CronTimestampWriter` (what it prints with) against
/// the plain paths: `nextFire(after:)` called with each previous answer, the zone asked afresh for every offset,
/// and a reference formatter built on Foundation's zone and the C library's calendar, not the evaluator's own.
struct FireSequenceTests {
    /// Expressions and counts that cross many offset changes (hundreds for the monthly one, so the cursor also
    /// forgets old ones), in zones with one-hour, half-hour, two-hour and whole-day changes.
    static let longSequences: [(expression: String, count: Int)] = [
        ("30 2 * * *", 8000), ("*/15 1-3 * * *", 8000), ("0 0 1 * *", 2500), ("0 9 * * 1-5", 3000),
        ("*/20 * * * *", 8000), ("0 0 29 2 */7", 6),
    ]
    static let zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Antarctica/Troll", "Pacific/Apia"]

    @Test(arguments: zones)
    func sequenceEqualsRepeatedNextFireWithTheZonesOffsets(zoneName: String) throws {
        let zone = try loadZone(zoneName)
        var rng = SplitMix64(state: 0xF1E5 ^ UInt64(zoneName.utf8.count))
        var cases = Self.longSequences.map { ($0.expression, $0.count, Int64(1_262_304_000)) }  // from 2010
        for round in 0..<60 {
            let start = Int64.random(in: -2_000_000_000...4_000_000_000, using: &rng)
            cases.append((RandomCron.make(using: &rng, earlyHours: round % 2 == 0).text, 300, start))
        }
        for (text, count, start) in cases {
            let schedule = CronSchedule(expression: try CronExpression(parsing: text), zone: zone)
            let sequence = Array(schedule.fires(after: start).prefix(count))
            var expected: [CronSchedule.Fire] = []
            var cursor = start
            while expected.count < count, let next = schedule.nextFire(after: cursor) {
                expected.append(CronSchedule.Fire(instant: next, offset: zone.offset(at: next)))
                cursor = next
            }
            let difference = zip(sequence, expected).first(where: { $0 != $1 }).map { "\($0)" } ?? "the end"
            #expect(sequence == expected, "\(text) in \(zoneName) after \(start): differs at \(difference)")
        }
    }

    /// The same through a fake zone: a change of exactly three hours (matched plainly) and offsets with seconds.
    @Test func sequenceEqualsRepeatedNextFireInAFakeZone() throws {
        let day: Int64 = 86_400
        let changes = (0..<400).flatMap { year -> [(at: Int64, offset: Int32)] in
            let base = Int64(year) * 50 * day
            return [
                (at: base + 10 * day + 3600, offset: year % 3 == 0 ? 10_800 : 3600 + 19),
                (at: base + 30 * day + 3600, offset: -1_930),
            ]
        }
        let zone = FakeZone(initial: -1_930, changes: changes)
        for text in ["30 2 * * *", "*/15 0-4 * * *", "0 1 * * *", "*/7 * * * *"] {
            let schedule = CronSchedule(expression: try CronExpression(parsing: text), zone: zone)
            let sequence = Array(schedule.fires(after: 0).prefix(5000))
            var expected: [CronSchedule.Fire] = []
            var cursor: Int64 = 0
            while expected.count < 5000, let next = schedule.nextFire(after: cursor) {
                expected.append(CronSchedule.Fire(instant: next, offset: zone.offset(at: next)))
                cursor = next
            }
            #expect(sequence == expected, "\(text)")
        }
    }

    /// Every line of long sequences, one writer for all of them (so its remembered date and offset are reused
    /// across days and offset changes, both passes of an overlap included).
    @Test(arguments: zones)
    func writerMatchesTheReferenceFormatter(zoneName: String) throws {
        let zone = try loadZone(zoneName)
        let timeZone = try #require(TimeZone(identifier: zoneName))
        var writer = CronTimestampWriter()
        var line = [UInt8](repeating: 0, count: CronTimestampWriter.maximumLineLength)
        for (text, count) in Self.longSequences {
            let schedule = CronSchedule(expression: try CronExpression(parsing: text), zone: zone)
            for fire in schedule.fires(after: 946_684_800).prefix(count) {  // from 2000
                let length = line.withUnsafeMutableBufferPointer {
                    writer.writeLine(fire.instant, offset: fire.offset, to: $0.baseAddress!)
                }
                let written = String(decoding: line[..<length], as: UTF8.self)
                let expected = referenceLine(fire.instant, in: timeZone)
                #expect(written == expected, "\(text) in \(zoneName)")
                if written != expected { return }
            }
        }
    }

    @Test func extremeYearsAndOffsetsWithSeconds() throws {
        var writer = CronTimestampWriter()
        func line(_ instant: Int64, _ offset: Int32) -> String {
            var bytes = [UInt8](repeating: 0, count: CronTimestampWriter.maximumLineLength)
            let length = bytes.withUnsafeMutableBufferPointer { writer.writeLine(instant, offset: offset, to: $0.baseAddress!) }
            return String(decoding: bytes[..<length], as: UTF8.self)
        }
        #expect(line(-62_167_219_200, 0) == "0000-01-01T00:00:00+00:00\n")
        #expect(line(-62_198_755_200, 0) == "-0001-01-01T00:00:00+00:00\n")
        #expect(line(253_402_300_800, 0) == "10000-01-01T00:00:00+00:00\n")
        #expect(line(1_099_511_627_776, 3600) == "36812-02-20T01:36:16+01:00\n")
        #expect(line(0, 19_532) == "1970-01-01T05:25:32+05:25:32\n")
        #expect(line(0, -30) == "1969-12-31T23:59:30-00:00:30\n")
        #expect(line(0, -37_800) == "1969-12-31T13:30:00-10:30\n")
        #expect(CronTimestamp.format(0, in: FakeZone(initial: 19_532, changes: [])) == "1970-01-01T05:25:32+05:25:32")
    }
}

/// `YYYY-MM-DDTHH:MM:SS±HH:MM` and a newline, the straightforward way: the offset from Foundation's zone for
/// this instant, the wall-clock fields from the C library's `gmtime_r` on the shifted instant.
func referenceLine(_ instant: Int64, in timeZone: TimeZone) -> String {
    let offset = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant)))
    var local = time_t(instant + Int64(offset))
    var fields = tm()
    gmtime_r(&local, &fields)
    func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
    let year = Int(fields.tm_year) + 1900
    var text = "\(year)-\(two(Int(fields.tm_mon) + 1))-\(two(Int(fields.tm_mday)))T"
    text += "\(two(Int(fields.tm_hour))):\(two(Int(fields.tm_min))):\(two(Int(fields.tm_sec)))"
    text += (offset < 0 ? "-" : "+") + "\(two(abs(offset) / 3600)):\(two(abs(offset) / 60 % 60))"
    return text + "\n"
}
