import Foundation

/// Zone rules read from Foundation's `TimeZone`. On Linux that is swift-foundation over the toolchain's own
/// ICU time-zone data (its tz version: `TimeZone.timeZoneDataVersion`), not /usr/share/zoneinfo, so an OS
/// tzdata update does not change it; a toolchain update does. Checked against zdump for every zone from 1970
/// to 2100: identical offsets and transitions, except the legacy `WET` and `EET` zones before 1997 (ICU
/// keeps their old definitions). Historical rules (US before 2007, Lord Howe's 30 minutes, Troll's two hours,
/// Samoa 2011) are right.
public struct FoundationZone: ZoneRules {
    public let identifier: String
    let timeZone: TimeZone

    public init(identifier: String, timeZone: TimeZone) {
        self.identifier = identifier
        self.timeZone = timeZone
    }

    public func offset(at instant: Int64) -> Int32 {
        Int32(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant))))
    }

    /// Foundation also reports changes of only the DST flag or the abbreviation (Asuncion, 2024-10-15); those
    /// are skipped, only offset changes count.
    public func nextTransition(after instant: Int64) -> Int64? {
        let before = offset(at: instant)
        var probe = Date(timeIntervalSince1970: TimeInterval(instant))
        for _ in 0..<64 {
            guard let next = timeZone.nextDaylightSavingTimeTransition(after: probe) else { return nil }
            let seconds = Int64(next.timeIntervalSince1970.rounded(.up))
            guard seconds > instant else { probe = Date(timeIntervalSince1970: TimeInterval(instant + 1)); continue }
            if offset(at: seconds) != before { return seconds }
            probe = next
        }
        return nil
    }
}
