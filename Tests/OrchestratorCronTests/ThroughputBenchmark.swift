import TestSupport
import Foundation
import Testing

@testable import OrchestratorCron

/// Next-fire computations per second over a mixed set of expressions and zones. Off by default; run once with
/// `CRON_BENCHMARK=1 swift test -c release -Xswiftc -enable-testing --filter ThroughputBenchmark`.
struct ThroughputBenchmark {
    static let expressions = [
        "*/15 * * * *", "30 2 * * *", "0 9 * * MON-FRI", "0 0 1,15 * FRI", "*/5 9-17 * * 1-5", "0 0 29 2 *",
        "@hourly", "@daily", "0 0 1 1 *", "15,45 */2 * * *", "0 0 */2 * MON", "0 12 13 * 5", "* * * * *",
        "0 4 * * 0", "30 1 1-7 * *", "0 0 29 2 */7",
    ]
    static let zones = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]

    @Test(.enabled(if: ProcessInfo.processInfo.environment["CRON_BENCHMARK"] != nil))
    func nextFireThroughput() throws {
        var schedules: [CronSchedule] = []
        for zone in Self.zones {
            let rules = try loadZone(zone)
            for text in Self.expressions {
                schedules.append(CronSchedule(expression: try CronExpression(parsing: text), zone: rules))
            }
        }
        var rng = SplitMix64(state: 7)
        let starts = (0..<4096).map { _ in Int64.random(in: 946_684_800...2_208_988_800, using: &rng) }  // 2000-2040
        var checksum: Int64 = 0
        var calls = 0
        let clock = ContinuousClock()
        let began = clock.now
        while clock.now - began < .seconds(3) {
            for index in 0..<10_000 {
                let schedule = schedules[(calls &+ index) % schedules.count]
                checksum &+= schedule.nextFire(after: starts[(calls &+ index * 7) % starts.count]) ?? 0
            }
            calls += 10_000
        }
        let seconds = Double((clock.now - began).components.attoseconds) / 1e18 + Double((clock.now - began).components.seconds)
        let rate = Double(calls) / seconds
        print("cron next-fire throughput: \(Int(rate)) computations/s (\(calls) calls, \(schedules.count) schedules)")
        #expect(checksum != 0)

        // The rare ones alone, in a daylight-saving zone: decades between answers.
        let rare = try CronSchedule(expression: CronExpression(parsing: "0 0 29 2 */7"), zone: loadZone("Europe/Berlin"))
        let rareBegan = clock.now
        var rareCalls = 0
        while clock.now - rareBegan < .seconds(1) {
            checksum &+= rare.nextFire(after: starts[rareCalls % starts.count]) ?? 0
            rareCalls += 1
        }
        print("29 February on a Sunday, Europe/Berlin: \(rareCalls) computations/s")
    }
}
