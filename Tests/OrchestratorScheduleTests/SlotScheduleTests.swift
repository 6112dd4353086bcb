import OrchestratorConfig
import OrchestratorCore
import OrchestratorCron
import TestSupport
import Testing

@testable import OrchestratorSchedule

@Suite struct SlotScheduleTests {
    let utc = try! loadZone("UTC")

    func schedule(_ trigger: Trigger) throws -> SlotSchedule {
        try #require(try SlotSchedule(trigger: trigger, hostZone: utc))
    }

    @Test func intervalSlotsAreAlignedToTheEpoch() throws {
        let tenMinutes = try schedule(.every(.seconds(600)))
        // 2026-01-01T00:03:00Z -> the next slot is 00:10:00.
        let start: Int64 = 1_767_225_780_000
        #expect(tenMinutes.nextSlot(after: start) == 1_767_226_200_000)
        // Strictly after: a slot instant itself gives the following slot.
        #expect(tenMinutes.nextSlot(after: 1_767_226_200_000) == 1_767_226_800_000)
        #expect(tenMinutes.nextSlot(after: -1) == 0)
    }

    @Test func intervalCatchUpIsTheLatestMissedSlot() throws {
        let hourly = try schedule(.every(.seconds(3600)))
        let h: Int64 = 3_600_000
        #expect(hourly.latestSlot(after: 10 * h, atOrBefore: 13 * h + 5) == 13 * h)
        #expect(hourly.latestSlot(after: 13 * h, atOrBefore: 13 * h + 5) == nil)
        #expect(hourly.latestSlot(after: 13 * h - 1, atOrBefore: 13 * h) == 13 * h)
    }

    @Test func cronSlotsAreTheCronFireTimes() throws {
        let daily = try schedule(.cron(expression: "0 3 * * *", timeZone: "Europe/Berlin"))
        // 2026-06-01T12:00:00Z; Berlin is UTC+2 in summer, so 03:00 local is 01:00Z the next day.
        let noon: Int64 = 1_780_315_200_000
        #expect(daily.nextSlot(after: noon) == 1_780_362_000_000)
        // Sub-second instants: strictly after, on whole minutes.
        let fire: Int64 = 1_780_362_000_000
        #expect(daily.nextSlot(after: fire - 1) == fire)
        let nextDay: Int64 = fire + 86_400_000
        #expect(daily.nextSlot(after: fire) == nextDay)
    }

    @Test func cronCatchUpFindsTheLatestFireAcrossLongGaps() throws {
        let daily = try schedule(.cron(expression: "0 3 * * *", timeZone: "UTC"))
        let day: Int64 = 86_400_000
        let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00Z
        // Down for 40 days: the one slot run is the latest, 03:00 on day 40.
        #expect(daily.latestSlot(after: base, atOrBefore: base + 40 * day + 4 * 3_600_000) == base + 40 * day + 3 * 3_600_000)
        // Nothing missed between two fires.
        #expect(daily.latestSlot(after: base + 3 * 3_600_000, atOrBefore: base + 20 * 3_600_000) == nil)
        let leap = try schedule(.cron(expression: "0 0 29 2 *", timeZone: "UTC"))
        // From 2026 to mid-2029: the only 29 February is 2028's.
        let feb29of2028: Int64 = 1_835_395_200_000
        #expect(leap.latestSlot(after: base, atOrBefore: base + 3 * 365 * day + 180 * day) == feb29of2028)
    }

    @Test func cronCatchUpAgreesWithWalkingForward() throws {
        var generator = SplitMix64(state: 7)
        for text in ["*/7 * * * *", "15 */5 * * 1-5", "0 0 1,15 * *", "30 2 * * *"] {
            let cron = try schedule(.cron(expression: text, timeZone: "America/New_York"))
            for _ in 0..<40 {
                let floor = Int64.random(in: 1_700_000_000_000...1_800_000_000_000, using: &generator)
                let instant = floor + Int64.random(in: 0...(40 * 86_400_000), using: &generator)
                var walked: Int64?
                var cursor = floor
                while let next = cron.nextSlot(after: cursor), next <= instant {
                    walked = next
                    cursor = next
                }
                #expect(cron.latestSlot(after: floor, atOrBefore: instant) == walked, "\(text) \(floor) \(instant)")
            }
        }
    }

    @Test func rebootAndEventTriggersHaveNoSlots() throws {
        let reboot = try schedule(.cron(expression: "@reboot", timeZone: nil))
        #expect(reboot.isReboot)
        #expect(reboot.nextSlot(after: 0) == nil)
        #expect(try SlotSchedule(trigger: .event("x"), hostZone: utc) == nil)
    }
}

@Suite struct DependencyGateTests {
    func run(_ start: Double, _ end: Double, _ result: RunSummary.Result = .succeeded) -> RunSummary {
        RunSummary(startedAt: start, finishedAt: end, result: result)
    }

    @Test func runsWhenEveryPrerequisiteSucceededSinceItsOwnLastRun() {
        let latest = ["a": run(100, 110), "b": run(105, 120)]
        #expect(DependencyGate.decide(after: ["a", "b"], ownLastStart: 90, latest: latest) == .run)
        #expect(DependencyGate.decide(after: ["a", "b"], ownLastStart: nil, latest: latest) == .run)
    }

    @Test func waitsForAFailedStaleOrNeverRunPrerequisite() {
        let latest = ["a": run(100, 110, .failed), "b": run(10, 20)]
        #expect(DependencyGate.decide(after: ["a", "b", "c"], ownLastStart: 50, latest: latest) == .waiting(for: ["a", "b", "c"]))
        #expect(DependencyGate.decide(after: ["b"], ownLastStart: 15, latest: latest) == .run)
    }

    @Test func skipsWhenAPrerequisiteCannotRunAtAll() {
        let latest = ["a": run(1, 1, .commandMissing)]
        #expect(DependencyGate.decide(after: ["a"], ownLastStart: nil, latest: latest) == .skip(because: "prerequisite a cannot run: its command is missing"))
    }
}
