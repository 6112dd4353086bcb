/// Identifies one scheduled timer so it can be cancelled. It names a slab entry and the stamp of the timer that was
/// put there, so a handle whose timer already fired or was cancelled never touches a later timer reusing the entry.
public struct TimerHandle: Hashable, Sendable {
    @usableFromInline let index: UInt32
    @usableFromInline let stamp: UInt64

    @usableFromInline init(index: UInt32, stamp: UInt64) {
        self.index = index
        self.stamp = stamp
    }
}

/// Every pending deadline of the daemon (retry backoff, worker timeouts, settle checks, sweeps, schedules) behind a
/// single OS timer: the owner arms that timer for `nextWakeup()` and calls `advance(to:)` when it fires.
///
/// Hierarchical: 6 levels of 64 slots with 1 tick per slot on level 0 and 64^L ticks per slot on level L, so
/// schedule and cancel are O(1) whatever the deadline, and time can jump by days without visiting empty slots.
/// Deadlines 2^36 ticks (about 795 days) or more ahead wait in an overflow list. The placement invariant that makes
/// this work is described on the `TimerWheelCore` extension below.
///
/// Only this thin generic shell is `@inlinable`, so a client module specialises the payload moves for its own type
/// while the wheel proper stays non-generic code compiled once here.
public struct TimerWheel<Payload> {
    @usableFromInline var core: TimerWheelCore
    /// Parallel to the core's slab; kept apart so that everything except payload moves is non-generic code.
    @usableFromInline var payloads: [Payload?] = []

    /// Starts an empty wheel at `now`, in ticks (one tick = 1 ms of a monotonic clock the caller owns).
    @inlinable
    public init(now: UInt64) {
        core = TimerWheelCore(now: now)
    }

    /// The tick up to which every due timer has been returned; `advance` never moves it backwards.
    @inlinable
    public var now: UInt64 { core.now }

    /// Number of pending timers, including those already due that the next `advance` will return.
    @inlinable
    public var count: Int { core.count }

    /// True when no timer is pending, in which case `nextWakeup()` is nil and the owner needs no OS timer at all.
    @inlinable
    public var isEmpty: Bool { core.count == 0 }

    /// Adds a timer in O(1). A deadline at or before `now` is not an error: it fires on the next `advance`, whatever
    /// time that is given, so callers need not special-case "already late".
    @discardableResult
    @inlinable
    public mutating func schedule(at deadline: UInt64, _ payload: Payload) -> TimerHandle {
        let (index, stamp) = core.insert(deadline: deadline)
        if index == payloads.count {
            payloads.append(payload)
        } else {
            payloads[index] = payload
        }
        return TimerHandle(index: UInt32(truncatingIfNeeded: index), stamp: stamp)
    }

    /// Removes a pending timer in O(1) and hands back its payload; nil when the timer already fired or was
    /// cancelled, so callers may cancel unconditionally.
    @discardableResult
    @inlinable
    public mutating func cancel(_ handle: TimerHandle) -> Payload? {
        let index = Int(handle.index)
        guard core.remove(index, stamp: handle.stamp) else { return nil }
        return payloads[index].take()
    }

    /// Moves `now` forward to `time` and returns every timer with deadline <= `time`, ordered by deadline and, for
    /// equal deadlines, by scheduling order. Cost is proportional to the timers fired or cascaded, not to the span:
    /// a smaller `time` (a late or spurious wake-up) only returns what is already due at `now`.
    @inlinable
    public mutating func advance(to time: UInt64) -> [(deadline: UInt64, payload: Payload)] {
        let fired = core.advance(to: time)
        var result: [(deadline: UInt64, payload: Payload)] = []
        result.reserveCapacity(fired.count)
        for timer in fired {
            // Every fired entry was live, so its payload is present; the double optional only arises when Payload
            // is itself optional.
            guard let payload = payloads[Int(timer.index)].take() else {
                preconditionFailure("TimerWheel: fired timer without payload")
            }
            result.append((timer.deadline, payload))
        }
        return result
    }

    /// When the owner must call `advance` next: nil when empty (idle means no wake-up at all), `now` when something
    /// is already due, otherwise a tick no later than the earliest deadline. The bound is exact unless the earliest
    /// timer of its slot was cancelled; then it is merely early, that wake-up cascades the slot, and the next answer
    /// is exact again. A far timer thus costs one wake-up, not one per level.
    @inlinable
    public func nextWakeup() -> UInt64? {
        core.nextWakeup()
    }
}

extension TimerWheel: Sendable where Payload: Sendable {}

/// The algorithm.
///
/// Invariant that keeps the wheel free of wrap-around cases: a timer with deadline `d > now` sits on the level of the
/// highest 6-bit group in which `d` and `now` differ, in slot `(d >> 6L) & 63`. That slot is therefore strictly after
/// `now`'s own slot on that level, and everything on level L comes before everything on level L + 1. The next thing
/// that can happen is thus always the lowest occupied slot of the lowest non-empty level: on level 0 its timers (all
/// with the same deadline) fire; on a higher level it cascades, i.e. its timers are placed again relative to the new
/// `now` and land on lower levels. Processing events in that order up to the target time preserves the invariant,
/// because no slot is ever skipped. The overflow list is placed again once `now` enters the 2^36-aligned block of its
/// earliest deadline, the first moment that timer can fit on the wheel.
extension TimerWheelCore {
    /// Claims an entry and files it: on the due list when already late, otherwise where the invariant says.
    @usableFromInline
    mutating func insert(deadline: UInt64) -> (index: Int, stamp: UInt64) {
        let claimed = allocate()
        let element = TimerListElement(deadline: deadline, index: Int32(truncatingIfNeeded: claimed.index))
        if deadline <= now {
            append(element, toList: TimerWheelLayout.dueList)
        } else {
            place(element)
        }
        return claimed
    }

    /// False when the handle is stale, so that cancel needs no bookkeeping on the caller's side.
    @usableFromInline
    mutating func remove(_ index: Int, stamp: UInt64) -> Bool {
        guard isLive(index, stamp: stamp) else { return false }
        unlink(index)
        release(index)
        return true
    }

    /// Returns the fired timers in deadline order, FIFO among equal deadlines, with their entries already released.
    @usableFromInline
    mutating func advance(to time: UInt64) -> [FiredTimerEntry] {
        var fired: [FiredTimerEntry] = []
        fire(list: TimerWheelLayout.dueList, into: &fired)
        Self.order(&fired, from: 0)
        if time > now {
            while let event = nextEvent(), event.time <= time {
                setNow(event.time)
                // Each event fires only deadlines equal to `now`, all later than anything fired before, so sorting
                // each event's batch (usually tiny) orders the whole result.
                let batchStart = fired.count
                if event.list < TimerWheelLayout.slotsPerLevel {
                    fire(list: event.list, into: &fired)
                } else {
                    cascade(list: event.list, into: &fired)
                }
                Self.order(&fired, from: batchStart)
            }
            setNow(time)
        }
        return fired
    }

    /// See `TimerWheel.nextWakeup()`. The earliest timer is in the list `nextEvent` would process, so that list's
    /// lower bound is a bound for the whole wheel.
    @usableFromInline
    func nextWakeup() -> UInt64? {
        guard count > 0 else { return nil }
        if !lists[TimerWheelLayout.dueList].isEmpty { return now }
        for level in 0 ..< TimerWheelLayout.levelCount where occupancy[level] != 0 {
            let slot = occupancy[level].trailingZeroBitCount
            return lowerBounds[level << TimerWheelLayout.slotBits | slot]
        }
        return lowerBounds[TimerWheelLayout.overflowList]
    }

    /// Files a timer whose deadline is after `now` in the level and slot the invariant prescribes.
    mutating func place(_ element: TimerListElement) {
        let deadline = element.deadline
        assert(deadline > now, "a timer due now belongs on the due list or in the fired batch")
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
        append(element, toList: list)
        if deadline < lowerBounds[list] {
            lowerBounds[list] = deadline
        }
    }

    /// The earliest tick at which the wheel has work, and the list to process then: a level-0 slot fires at its own
    /// tick, any other list is cascaded at the start of its span.
    func nextEvent() -> (time: UInt64, list: Int)? {
        for level in 0 ..< TimerWheelLayout.levelCount where occupancy[level] != 0 {
            let slot = occupancy[level].trailingZeroBitCount
            let shift = UInt64(level * TimerWheelLayout.slotBits)
            let levelSpan = shift + UInt64(TimerWheelLayout.slotBits)
            let time = (now >> levelSpan) << levelSpan | UInt64(slot) << shift
            return (time, level << TimerWheelLayout.slotBits | slot)
        }
        guard !lists[TimerWheelLayout.overflowList].isEmpty else { return nil }
        // A stale (too early) lower bound only makes this cascade find nothing that fits yet.
        let bits = UInt64(TimerWheelLayout.wheelBits)
        return ((lowerBounds[TimerWheelLayout.overflowList] >> bits) << bits, TimerWheelLayout.overflowList)
    }

    /// Files every timer of `list` again relative to the current `now`; those due exactly now fire.
    mutating func cascade(list: Int, into fired: inout [FiredTimerEntry]) {
        let taken = takeList(list)
        for element in taken {
            if element.deadline <= now {
                fire(element, into: &fired)
            } else {
                place(element)
            }
        }
        recycle(taken)
    }

    mutating func fire(list: Int, into fired: inout [FiredTimerEntry]) {
        guard !lists[list].isEmpty else { return }
        let taken = takeList(list)
        for element in taken {
            fire(element, into: &fired)
        }
        recycle(taken)
    }

    /// Only for entries already taken off their list.
    mutating func fire(_ element: TimerListElement, into fired: inout [FiredTimerEntry]) {
        let index = Int(element.index)
        fired.append((element.deadline, entries[index].stamp, element.index))
        release(index)
    }

    /// Lists keep no order (removal swaps elements), so a batch is put in (deadline, stamp) order here; the check
    /// first makes the common single-timer or already ordered batch cost nothing.
    static func order(_ fired: inout [FiredTimerEntry], from start: Int) {
        func precedes(_ a: FiredTimerEntry, _ b: FiredTimerEntry) -> Bool {
            a.deadline != b.deadline ? a.deadline < b.deadline : a.stamp < b.stamp
        }
        guard fired.count - start > 1 else { return }
        var previous = fired[start]
        for next in fired[(start + 1)...] {
            if !precedes(previous, next) {
                fired[start...].sort(by: precedes)
                return
            }
            previous = next
        }
    }
}
