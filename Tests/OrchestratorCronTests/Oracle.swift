import Foundation

/// Spec §4 by brute force: every UTC minute, its wall-clock reading, and the rules applied literally.
final class Oracle {
    let timeZone: TimeZone
    private var calendar = Calendar(identifier: .gregorian)
    /// Local day number → (day of month, month, weekday 0-6).
    private var dates: [Int64: (Int, Int, Int)] = [:]

    init(zoneName: String) {
        timeZone = TimeZone(identifier: zoneName)!
        calendar.timeZone = TimeZone(identifier: "UTC")!
    }

    func offset(_ instant: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant))))
    }

    func transitions(from: Int64, to: Int64) -> [Int64] {
        var result: [Int64] = []
        var probe = Date(timeIntervalSince1970: TimeInterval(from))
        while let next = timeZone.nextDaylightSavingTimeTransition(after: probe), next.timeIntervalSince1970 < TimeInterval(to) {
            result.append(Int64(next.timeIntervalSince1970))
            probe = next
        }
        return result
    }

    /// Whether the wall-clock minute `local` (seconds since 1970-01-01 00:00 of the wall clock) matches.
    func matches(local: Int64, _ cron: RandomCron) -> Bool {
        let dayNumber = Int64((Double(local) / 86_400).rounded(.down))
        let date: (Int, Int, Int)
        if let known = dates[dayNumber] {
            date = known
        } else {
            let parts = calendar.dateComponents(
                [.day, .month, .weekday], from: Date(timeIntervalSince1970: TimeInterval(dayNumber * 86_400)))
            date = (parts.day!, parts.month!, parts.weekday! - 1)
            dates[dayNumber] = date
        }
        let secondOfDay = local - dayNumber * 86_400
        return cron.matches(
            minute: Int(secondOfDay / 60 % 60), hour: Int(secondOfDay / 3600), day: date.0, month: date.1,
            weekday: date.2)
    }

    /// The same wall-clock time was already on the clock less than three hours earlier, across a change smaller
    /// than three hours.
    func isSecondPass(_ instant: Int64) -> Bool {
        let local = instant + offset(instant)
        for back in stride(from: Int64(60), to: 3 * 3600, by: 60) {
            let earlier = instant - back
            let earlierOffset = offset(earlier)
            if earlier + earlierOffset == local && abs(earlierOffset - offset(instant)) < 3 * 3600 { return true }
        }
        return false
    }

    /// `instant` is a change that jumps forward by less than three hours, and the skipped wall-clock minutes
    /// hold a match.
    func isCatchUp(_ instant: Int64, _ cron: RandomCron) -> Bool {
        let before = offset(instant - 1)
        let after = offset(instant)
        guard after > before, after - before < 3 * 3600 else { return false }
        return stride(from: instant + before, to: instant + after, by: 60).contains { matches(local: $0, cron) }
    }

    func fires(of cron: RandomCron, after start: Int64, through end: Int64) -> [Int64] {
        var result: [Int64] = []
        var minute = (start / 60 + 1) * 60
        if start < 0 && start % 60 != 0 { minute -= 60 }
        while minute <= end {
            if !cron.isWildcardJob && isCatchUp(minute, cron) {
                result.append(minute)
            } else if matches(local: minute + offset(minute), cron) && (cron.isWildcardJob || !isSecondPass(minute)) {
                result.append(minute)
            }
            minute += 60
        }
        return result
    }

    func isFireTime(_ instant: Int64, of cron: RandomCron) -> Bool {
        guard instant % 60 == 0 else { return false }
        if !cron.isWildcardJob && isCatchUp(instant, cron) { return true }
        return matches(local: instant + offset(instant), cron) && (cron.isWildcardJob || !isSecondPass(instant))
    }
}
