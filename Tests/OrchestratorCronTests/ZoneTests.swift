import Foundation
import Testing

@testable import OrchestratorCron

/// Zone names, and Foundation's rules checked against facts the evaluator depends on.
struct ZoneTests {
    @Test(arguments: [
        "UTC", "Etc/UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Antarctica/Troll",
        "Pacific/Apia", "Asia/Kolkata", "Asia/Calcutta", "America/Argentina/Buenos_Aires", "Etc/GMT+5",
    ])
    func ianaNamesLoad(name: String) throws {
        #expect(try loadZone(name).identifier == name)
    }

    @Test(arguments: [
        "", "Foo/Bar", "utc", "europe/berlin", "PST", "GMT+5", "UTC+3", "GMT-0530", "Europe/Berlin ", " UTC",
        "/usr/share/zoneinfo/UTC", "../../etc/passwd", "Europe//Berlin", "Europe/", "zone.tab", "posixrules",
    ])
    func otherNamesAreRefused(name: String) {
        #expect(throws: CronError.unknownZone(name)) { try loadZone(name) }
    }

    @Test func utcHasNoTransitions() throws {
        let utc = try loadZone("UTC")
        #expect(utc.offset(at: 1_800_000_000) == 0)
        #expect(utc.nextTransition(after: 0) == nil)
    }

    /// (zone, after, the next offset change, offset before, offset after)
    @Test(arguments: [
        ("America/New_York", Int64(1_104_537_600), Int64(1_112_511_600), Int32(-18_000), Int32(-14_400)),  // 2005-04-03
        ("America/New_York", 1_167_609_600, 1_173_596_400, -18_000, -14_400),  // 2007-03-11
        ("Australia/Lord_Howe", 1_767_225_600, 1_775_314_800, 39_600, 37_800),  // 2026-04-05, 30 minutes
        ("Antarctica/Troll", 1_767_225_600, 1_774_746_000, 0, 7200),  // 2026-03-29, two hours
        ("Pacific/Apia", 1_324_000_000, 1_325_239_200, -36_000, 50_400),  // 2011-12-30 skipped
        ("Europe/Berlin", 4_102_444_800, 4_109_878_800, 3600, 7200),  // 2100, past the table
        ("America/Asuncion", 1_728_500_000, 0, -10_800, -10_800),  // 2024-10-15 changes only the DST flag
    ])
    func foundationRules(name: String, after: Int64, change: Int64, before: Int32, later: Int32) throws {
        let zone = try loadZone(name)
        let next = zone.nextTransition(after: after)
        if change == 0 {
            #expect(next == nil)
            #expect(zone.offset(at: after) == before)
        } else {
            #expect(next == change)
            #expect(zone.offset(at: change - 1) == before)
            #expect(zone.offset(at: change) == later)
        }
    }
}

/// A `TZ` that is no zone name or zoneinfo path (a POSIX rule string) is said, not silently taken for UTC.
@Suite struct HostZoneProblemTests {
    @Test func aPosixRuleOrAnUnknownNameIsSaidAndZoneNamesAreNot() {
        #expect(hostZoneProblem(environment: ["TZ": "EST5EDT,M3.2.0,M11.1.0"])?.hasPrefix("TZ=\"EST5EDT,M3.2.0,M11.1.0\" is not a time zone name") == true)
        #expect(hostZoneProblem(environment: ["TZ": "Mars/Base"]) != nil)
        for fine in ["America/New_York", ":America/New_York", "/usr/share/zoneinfo/Europe/Berlin", "UTC", ""] {
            #expect(hostZoneProblem(environment: ["TZ": fine]) == nil, "\(fine)")
        }
        #expect(hostZoneProblem(environment: [:]) == nil)
    }
}
