import TestSupport
import Foundation
import Testing

@testable import OrchestratorCron

/// Random valid expressions and start instants against a brute-force oracle that scans every minute and applies
/// spec §4 literally, using Foundation's calendar and zone rules (not the evaluator's own arithmetic).
struct PropertyTests {
    static let window: Int64 = 3 * 86_400

    /// (b) + (c): over a 3-day window the evaluator's sequence equals the brute-force minute scan, exactly.
    @Test(arguments: ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Antarctica/Troll"])
    func sequenceEqualsBruteForceMinuteScan(zoneName: String) throws {
        var rng = SplitMix64(state: 0xC0FFEE ^ UInt64(zoneName.utf8.count))
        let oracle = Oracle(zoneName: zoneName)
        let zone = try loadZone(zoneName)
        let transitions = oracle.transitions(from: 1_104_537_600, to: 2_524_608_000)  // 2005-2050
        for round in 0..<240 {
            let random = RandomCron.make(using: &rng, earlyHours: round % 2 == 0)
            let expression = try CronExpression(parsing: random.text)
            let start: Int64
            if !transitions.isEmpty && round % 3 != 0 {
                start = transitions.randomElement(using: &rng)! - Int64.random(in: 0...(2 * 86_400), using: &rng)
            } else {
                start = Int64.random(in: 0...4_102_444_800, using: &rng)
            }
            let expected = oracle.fires(of: random, after: start, through: start + Self.window)
            let schedule = CronSchedule(expression: expression, zone: zone)
            var actual: [Int64] = []
            var cursor = start
            while let next = schedule.nextFire(after: cursor), next <= start + Self.window {
                actual.append(next)
                cursor = next
            }
            let difference = zip(actual, expected).first(where: { $0 != $1 }).map { "\($0)" } ?? "the end"
            #expect(
                actual == expected,
                "\(random.text) in \(zoneName) after \(start): \(actual.count) vs \(expected.count) fires, differing at \(difference)")
            if actual != expected { break }
        }
    }

    /// (a) + (c): far-reaching sequences (decades for rare expressions): each fire time matches the expression in
    /// the zone's wall clock, or is the first minute after a gap that swallowed a matching minute of a fixed-time
    /// job; strictly increasing.
    @Test(arguments: ["UTC", "America/New_York", "Australia/Lord_Howe"])
    func everyFireTimeMatches(zoneName: String) throws {
        var rng = SplitMix64(state: 0x5EED ^ UInt64(zoneName.utf8.count) << 8)
        let oracle = Oracle(zoneName: zoneName)
        let zone = try loadZone(zoneName)
        for _ in 0..<200 {
            let random = RandomCron.make(using: &rng)
            let schedule = CronSchedule(expression: try CronExpression(parsing: random.text), zone: zone)
            let start = Int64.random(in: -1_000_000_000...4_000_000_000, using: &rng)
            let fires = schedule.fires(after: start, count: 25)
            #expect(fires.count == 25, "\(random.text) stopped firing")
            #expect(zip([start] + fires, fires).allSatisfy { $0 < $1 }, "\(random.text): not strictly increasing")
            for fire in fires {
                #expect(
                    oracle.isFireTime(fire, of: random),
                    "\(random.text) in \(zoneName): \(CronTimestamp.format(fire, in: zone))")
            }
        }
    }

    /// Parsing agrees with the oracle's reading of the same text.
    @Test func parserAgreesWithTheGenerator() throws {
        var rng = SplitMix64(state: 42)
        for _ in 0..<2000 {
            let random = RandomCron.make(using: &rng)
            let expression = try CronExpression(parsing: random.text)
            #expect(Set(values(expression.minutes)) == random.sets[0], "\(random.text)")
            #expect(Set(values(expression.hours)) == random.sets[1], "\(random.text)")
            #expect(Set(values(expression.daysOfMonth)) == random.sets[2], "\(random.text)")
            #expect(Set(values(expression.months)) == random.sets[3], "\(random.text)")
            #expect(Set(values(expression.daysOfWeek)) == random.sets[4], "\(random.text)")
            #expect(expression.isWildcardJob == random.isWildcardJob, "\(random.text)")
            #expect(expression.dayFieldsMustBothMatch == random.dayFieldsMustBothMatch, "\(random.text)")
        }
    }
}
