/// A zone's offsets and transitions around a moving instant, remembered: walking a schedule forward asks the
/// zone the same few questions for every fire (the offset at the search start, the next change, the change
/// before it), and asking Foundation/ICU costs more than matching the expression. The answers are the zone's
/// own: between two transitions the zone reports, the offset is the one in force at the first (the
/// `ZoneRules.nextTransition` contract), so nothing here changes what a schedule computes.
struct ZoneCursor {
    let zone: any ZoneRules
    /// The offset in force from `base` until the first remembered transition.
    private var base: Int64
    private var baseOffset: Int32
    /// Offset changes after `base`, ascending; `offsets[i]` is in force from `transitions[i]` on.
    private var transitions: [Int64] = []
    private var offsets: [Int32] = []
    /// The zone has no change in `(base, horizon]` other than `transitions`; `Int64.max` once it has no more.
    private var horizon: Int64

    /// Past this many remembered changes, those well behind the search are forgotten (a monthly schedule
    /// printed a million times crosses 160,000 of them).
    private static let kept = 64
    /// Walking further than this past the last known change is a fresh start rather than a walk through
    /// every change in between (a match years ahead).
    private static let longWalk: Int64 = 400 * 86_400

    init(zone: any ZoneRules, from instant: Int64) {
        self.zone = zone
        base = instant
        baseOffset = zone.offset(at: instant)
        horizon = instant
    }

    /// Seconds east of UTC in force at `instant`.
    mutating func offset(at instant: Int64) -> Int32 {
        cover(instant)
        guard let index = lastTransition(atOrBefore: instant) else { return baseOffset }
        return offsets[index]
    }

    /// The first change after `instant`, nil if the offset never changes again.
    mutating func nextTransition(after instant: Int64) -> Int64? {
        cover(instant)
        let index = (lastTransition(atOrBefore: instant) ?? -1) + 1
        if index < transitions.count { return transitions[index] }
        guard extend() else { return nil }
        return transitions[transitions.count - 1]
    }

    /// Forgets changes at or before `instant` once enough have piled up; the caller asks nothing earlier again.
    mutating func forget(upTo instant: Int64) {
        guard transitions.count > Self.kept, let index = lastTransition(atOrBefore: instant), index > 0 else {
            return
        }
        base = transitions[index]
        baseOffset = offsets[index]
        transitions.removeFirst(index + 1)
        offsets.removeFirst(index + 1)
    }

    /// Makes `base <= instant <= horizon`.
    private mutating func cover(_ instant: Int64) {
        if instant < base || (instant > horizon && instant - horizon > Self.longWalk) {
            self = ZoneCursor(zone: zone, from: instant)
            return
        }
        while instant > horizon, extend() {}
    }

    /// Learns the zone's next change after `horizon`; false if there is none.
    private mutating func extend() -> Bool {
        guard horizon != .max else { return false }
        guard let change = zone.nextTransition(after: horizon) else {
            horizon = .max
            return false
        }
        transitions.append(change)
        offsets.append(zone.offset(at: change))
        horizon = change
        return true
    }

    /// The index of the last remembered change at or before `instant`, nil if there is none.
    private func lastTransition(atOrBefore instant: Int64) -> Int? {
        // Most questions are about the newest stretch.
        guard let last = transitions.last, instant < last else { return transitions.isEmpty ? nil : transitions.count - 1 }
        var low = 0
        var high = transitions.count - 1  // transitions[high] > instant
        while low < high {
            let middle = (low + high) / 2
            if transitions[middle] <= instant { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : low - 1
    }
}
