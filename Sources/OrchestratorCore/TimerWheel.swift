/// Identifies one scheduled timer so it can be cancelled. It names a slab entry and the stamp of the timer that was
/// put there, so a handle whose timer already fired or was cancelled never touches a later timer reusing the entry.
public struct TimerHandle: Hashable, Sendable {
    let index: UInt32
    let stamp: UInt64
}

/// Every pending deadline of the daemon (retry backoff, worker timeouts, settle checks, sweeps, schedules) behind a
/// single OS timer: the owner arms that timer for `nextWakeup()` and calls `advance(to:)` when it fires.
///
/// Hierarchical: 6 levels of 64 slots with 1 tick per slot on level 0 and 64^L ticks per slot on level L, so
/// schedule and cancel are O(1) whatever the deadline, and time can jump by days without visiting empty slots.
///
/// Invariant that keeps the wheel free of wrap-around cases: a timer with deadline `d > now` sits on the level of
/// the highest 6-bit group in which `d` and `now` differ, in slot `(d >> 6L) & 63`. That slot is therefore strictly
/// after `now`'s own slot on that level, and everything on level L comes before everything on level L + 1. The next
/// thing that can happen is thus always the lowest occupied slot of the lowest non-empty level: on level 0 its
/// timers fire, on a higher level it cascades, i.e. its timers are placed again relative to the new `now` and land
/// on lower levels. Deadlines 2^36 ticks (about 795 days) or more ahead wait in an overflow list that is placed
/// again once `now` reaches the 2^36-aligned block of its earliest deadline.
public struct TimerWheel<Payload> {
    /// The tick up to which every due timer has been returned; `advance` never moves it backwards.
    public private(set) var now: UInt64
    /// Number of pending timers, including those already due that the next `advance` will return.
    public private(set) var count: Int = 0

    var nodes: [TimerNode<Payload>] = []
    var freeHead: Int32 = TimerWheelLayout.noNode
    /// Head and tail per list id (see `TimerWheelLayout`).
    var heads: [Int32]
    var tails: [Int32]
    /// Per list, a lower bound of its deadlines: exact, except that cancelling the minimum leaves it stale until the
    /// list empties. It lets `nextWakeup` name the earliest deadline itself rather than the slot's cascade time,
    /// which spares the owner one wake-up per level on the way down.
    var lowerBounds: [UInt64]
    /// Per level, bit s is set iff slot s is non-empty, so finding the next event is a `trailingZeroBitCount` and
    /// empty spans of any length cost nothing.
    var occupancy: [UInt64]
    var nextStamp: UInt64 = 0

    /// Starts an empty wheel at `now`, in ticks (one tick = 1 ms of a monotonic clock the caller owns).
    public init(now: UInt64) {
        self.now = now
        heads = Array(repeating: TimerWheelLayout.noNode, count: TimerWheelLayout.listCount)
        tails = Array(repeating: TimerWheelLayout.noNode, count: TimerWheelLayout.listCount)
        lowerBounds = Array(repeating: .max, count: TimerWheelLayout.listCount)
        occupancy = Array(repeating: 0, count: TimerWheelLayout.levelCount)
    }

    /// True when no timer is pending, in which case `nextWakeup()` is nil and the owner needs no OS timer at all.
    public var isEmpty: Bool { count == 0 }

    /// Adds a timer in O(1). A deadline at or before `now` is not an error: it fires on the next `advance`, whatever
    /// time that is given, so callers need not special-case "already late".
    @discardableResult
    public mutating func schedule(at deadline: UInt64, _ payload: Payload) -> TimerHandle {
        let stamp = nextStamp
        nextStamp &+= 1
        let index = allocateNode(deadline: deadline, stamp: stamp, payload: payload)
        count += 1
        if deadline <= now {
            append(index, toList: TimerWheelLayout.dueList)
        } else {
            place(index)
        }
        return TimerHandle(index: UInt32(truncatingIfNeeded: index), stamp: stamp)
    }

    /// Removes a pending timer in O(1) and hands back its payload; nil when the timer already fired or was
    /// cancelled, so callers may cancel unconditionally.
    @discardableResult
    public mutating func cancel(_ handle: TimerHandle) -> Payload? {
        let index = Int(handle.index)
        guard index < nodes.count, nodes[index].list != TimerWheelLayout.freeMarker,
            nodes[index].stamp == handle.stamp
        else { return nil }
        unlink(index)
        count -= 1
        return releaseNode(index)
    }

    /// Moves `now` forward to `time` and returns every timer with deadline <= `time`, ordered by deadline and, for
    /// equal deadlines, by scheduling order. Cost is proportional to the timers fired or cascaded, not to the span:
    /// a smaller `time` (a late or spurious wake-up) only returns what is already due at `now`.
    public mutating func advance(to time: UInt64) -> [(deadline: UInt64, payload: Payload)] {
        var fired: [FiredTimer] = []
        fireList(TimerWheelLayout.dueList, into: &fired)
        if time > now {
            while let event = nextEvent(), event.time <= time {
                now = event.time
                if event.list < TimerWheelLayout.slotsPerLevel {
                    fireList(event.list, into: &fired)
                } else {
                    cascade(event.list, into: &fired)
                }
            }
            now = time
        }
        return Self.inDeadlineOrder(fired)
    }

    /// When the owner must call `advance` next: nil when empty (idle means no wake-up at all), `now` when something
    /// is already due, otherwise a tick no later than the earliest deadline. The bound is exact unless the earliest
    /// timer of its slot was cancelled; then it is merely early, the wake-up cascades that slot, and the next answer
    /// is exact again. Far timers thus cost one wake-up, not one per level.
    public func nextWakeup() -> UInt64? {
        guard count > 0 else { return nil }
        if heads[TimerWheelLayout.dueList] != TimerWheelLayout.noNode { return now }
        for level in 0 ..< TimerWheelLayout.levelCount where occupancy[level] != 0 {
            let slot = occupancy[level].trailingZeroBitCount
            return lowerBounds[level << TimerWheelLayout.slotBits | slot]
        }
        return lowerBounds[TimerWheelLayout.overflowList]
    }
}

extension TimerWheel: Sendable where Payload: Sendable {}

extension TimerWheel {
    typealias FiredTimer = (deadline: UInt64, stamp: UInt64, payload: Payload)

    /// Links a node whose deadline is after `now` into the level and slot the type's invariant prescribes.
    mutating func place(_ index: Int) {
        let deadline = nodes[index].deadline
        let highestDifferentBit = UInt64.bitWidth - 1 - (deadline ^ now).leadingZeroBitCount
        let level = highestDifferentBit / TimerWheelLayout.slotBits
        let list: Int
        if level < TimerWheelLayout.levelCount {
            let slot = (deadline >> UInt64(level * TimerWheelLayout.slotBits)) & TimerWheelLayout.slotMask
            list = level << TimerWheelLayout.slotBits | Int(slot)
            occupancy[level] |= 1 << slot
        } else {
            list = TimerWheelLayout.overflowList
        }
        append(index, toList: list)
        if deadline < lowerBounds[list] {
            lowerBounds[list] = deadline
        }
    }

    /// The earliest tick at which the wheel has work, and the list to process then. Level 0 slots hold a single
    /// deadline, so reaching one fires it; any other list is cascaded at the start of its span.
    func nextEvent() -> (time: UInt64, list: Int)? {
        for level in 0 ..< TimerWheelLayout.levelCount where occupancy[level] != 0 {
            let slot = occupancy[level].trailingZeroBitCount
            let shift = UInt64(level * TimerWheelLayout.slotBits)
            let levelSpan = shift + UInt64(TimerWheelLayout.slotBits)
            let time = (now >> levelSpan) << levelSpan | UInt64(slot) << shift
            return (time, level << TimerWheelLayout.slotBits | slot)
        }
        guard heads[TimerWheelLayout.overflowList] != TimerWheelLayout.noNode else { return nil }
        // The overflow list is reconsidered when `now` enters the top-level block of its earliest deadline: only
        // then can that timer fit on the wheel.
        let bits = UInt64(TimerWheelLayout.wheelBits)
        return ((lowerBounds[TimerWheelLayout.overflowList] >> bits) << bits, TimerWheelLayout.overflowList)
    }

    /// Places every timer of `list` again relative to the current `now`; those due exactly now fire.
    mutating func cascade(_ list: Int, into fired: inout [FiredTimer]) {
        var cursor = detachList(list)
        while cursor != TimerWheelLayout.noNode {
            let index = Int(cursor)
            cursor = nodes[index].next
            if nodes[index].deadline <= now {
                fire(index, into: &fired)
            } else {
                place(index)
            }
        }
    }

    mutating func fireList(_ list: Int, into fired: inout [FiredTimer]) {
        var cursor = detachList(list)
        while cursor != TimerWheelLayout.noNode {
            let index = Int(cursor)
            cursor = nodes[index].next
            fire(index, into: &fired)
        }
    }

    /// Only for detached nodes: the list they were on has already been emptied as a whole.
    mutating func fire(_ index: Int, into fired: inout [FiredTimer]) {
        let deadline = nodes[index].deadline
        let stamp = nodes[index].stamp
        // A live node always holds its payload; the double optional only arises when Payload is itself optional.
        guard let payload = releaseNode(index) else { preconditionFailure("TimerWheel: live timer without payload") }
        count -= 1
        fired.append((deadline, stamp, payload))
    }

    /// Slots are processed in time order, so the batch is usually sorted already; it is not when timers scheduled
    /// late (or in the past) share a batch with cascaded ones, hence the check before sorting.
    static func inDeadlineOrder(_ fired: [FiredTimer]) -> [(deadline: UInt64, payload: Payload)] {
        func precedes(_ a: FiredTimer, _ b: FiredTimer) -> Bool {
            a.deadline != b.deadline ? a.deadline < b.deadline : a.stamp < b.stamp
        }
        var batch = fired
        if batch.count > 1 && zip(batch, batch.dropFirst()).contains(where: { !precedes($0, $1) }) {
            batch.sort(by: precedes)
        }
        return batch.map { ($0.deadline, $0.payload) }
    }
}
