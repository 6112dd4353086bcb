/// Geometry and list ids of the wheel.
enum TimerWheelLayout {
    /// 64 slots per level, so one `UInt64` per level can record which slots are occupied.
    static let slotBits = 6
    static let slotsPerLevel = 1 << slotBits
    static let slotMask: UInt64 = (1 << slotBits) - 1
    /// Six levels of six bits reach 2^36 ms (about 795 days) ahead of `now`; only later deadlines need the overflow
    /// list, so in practice it stays empty.
    static let levelCount = 6
    static let wheelBits = slotBits * levelCount
    /// List ids `0 ..< 384` are the slots (`level * 64 + slot`); two more lists follow them.
    static let slotListCount = slotsPerLevel * levelCount
    /// Timers whose deadline was not after `now` when they were scheduled: they fire on the very next `advance`.
    static let dueList = slotListCount
    /// Timers beyond the reach of the top level.
    static let overflowList = slotListCount + 1
    static let listCount = slotListCount + 2
    /// `TimerSlabEntry.list` of an entry that is free.
    static let freeMarker: Int16 = -1
    /// A detached list buffer up to this many entries is kept for reuse; a larger one (after a burst) is released
    /// so that a quiet daemon does not hold on to it.
    static let retainedBufferCapacity = 4096
}

/// The slab entry of a timer: only what cancel needs to find it. Payloads live in a parallel array of the generic
/// wrapper, so the wheel proper is non-generic (compiled once, fast in any client module), and deadlines live in the
/// list elements, so cascading never has to read the slab.
struct TimerSlabEntry: Sendable {
    /// Unique per `schedule` call and never reused: it serves as the generation that tells a handle's timer apart
    /// from a later timer in the same entry, and as the FIFO tie-break between equal deadlines.
    var stamp: UInt64
    /// Index of this timer in `lists[list]`, which is what makes removal O(1) without searching.
    var position: Int32
    /// The list holding the timer, or `freeMarker` once it fired or was cancelled: that is what makes a stale handle
    /// harmless.
    var list: Int16
}

/// A timer as filed on a list. Carrying the deadline here lets a cascade decide where each timer goes from the
/// contiguous list alone; the slab entry is only written to (new list and position), and stores to memory that is
/// not in cache do not stall the CPU the way dependent loads do.
struct TimerListElement: Sendable {
    var deadline: UInt64
    var index: Int32
}

/// A timer returned by `TimerWheelCore.advance`; its entry is already free, so the caller must collect the payload
/// at `index` before scheduling anything else.
@usableFromInline typealias FiredTimerEntry = (deadline: UInt64, stamp: UInt64, index: Int32)

/// The wheel without payloads.
///
/// Lists are arrays, each slab entry remembering its position, rather than intrusive linked lists: removal is still
/// O(1) (the last element takes the removed one's place), but a cascade walks contiguous memory. With linked lists
/// every hop waited for a cache miss on the previous node, which dominated the time of a large cascade.
@usableFromInline struct TimerWheelCore: Sendable {
    @usableFromInline private(set) var now: UInt64
    @usableFromInline private(set) var count = 0
    var entries: [TimerSlabEntry] = []
    /// Free slab indices, reused last-in first-out so recently touched memory is reused first.
    var freeEntries: [Int32] = []
    /// The timers per list id (see `TimerWheelLayout`), in no particular order: `advance` sorts what it fires.
    var lists: [[TimerListElement]]
    /// Per list, a lower bound of its deadlines: exact, except that cancelling the minimum leaves it stale until the
    /// list empties. It lets `nextWakeup` name the earliest deadline itself rather than the slot's cascade time,
    /// which spares the owner one wake-up per level on the way down.
    var lowerBounds: [UInt64]
    /// Per level, bit s is set iff slot s is non-empty, so finding the next event is a `trailingZeroBitCount` and
    /// empty spans of any length cost nothing.
    var occupancy: [UInt64]
    var nextStamp: UInt64 = 0
    /// An empty buffer handed to a list when its contents are taken, so steady-state cascades do not allocate.
    var spareBuffer: [TimerListElement] = []

    @usableFromInline init(now: UInt64) {
        self.now = now
        lists = Array(repeating: [], count: TimerWheelLayout.listCount)
        lowerBounds = Array(repeating: .max, count: TimerWheelLayout.listCount)
        occupancy = Array(repeating: 0, count: TimerWheelLayout.levelCount)
    }

    /// Moves `now`; the algorithm decides when that is allowed.
    mutating func setNow(_ time: UInt64) {
        now = time
    }

    /// Claims a slab entry for a new timer, not yet on any list.
    mutating func allocate() -> (index: Int, stamp: UInt64) {
        let stamp = nextStamp
        nextStamp &+= 1
        let entry = TimerSlabEntry(stamp: stamp, position: 0, list: TimerWheelLayout.freeMarker)
        count += 1
        if let index = freeEntries.popLast() {
            entries[Int(index)] = entry
            return (Int(index), stamp)
        }
        precondition(entries.count < Int(Int32.max), "TimerWheel: more than 2^31 - 1 pending timers")
        entries.append(entry)
        return (entries.count - 1, stamp)
    }

    /// Returns an entry that is on no list to the free list.
    mutating func release(_ index: Int) {
        entries[index].list = TimerWheelLayout.freeMarker
        freeEntries.append(Int32(truncatingIfNeeded: index))
        count -= 1
    }

    /// Whether `index` still holds the timer that was given `stamp`.
    func isLive(_ index: Int, stamp: UInt64) -> Bool {
        index < entries.count && entries[index].list != TimerWheelLayout.freeMarker && entries[index].stamp == stamp
    }

    mutating func append(_ element: TimerListElement, toList list: Int) {
        let index = Int(element.index)
        entries[index].list = Int16(truncatingIfNeeded: list)
        entries[index].position = Int32(truncatingIfNeeded: lists[list].count)
        lists[list].append(element)
    }

    /// O(1) removal from whichever list holds the entry: the list's last element takes its place.
    mutating func unlink(_ index: Int) {
        let list = Int(entries[index].list)
        let position = Int(entries[index].position)
        let last = lists[list].removeLast()
        if position < lists[list].count {
            lists[list][position] = last
            entries[Int(last.index)].position = Int32(truncatingIfNeeded: position)
        }
        if lists[list].isEmpty {
            listBecameEmpty(list)
        }
    }

    /// Empties `list` and returns what it held. The entries no longer belong to any list, so the caller must append
    /// or release every one of them, then hand the buffer back through `recycle`.
    mutating func takeList(_ list: Int) -> [TimerListElement] {
        var taken: [TimerListElement] = []
        swap(&taken, &spareBuffer)
        swap(&taken, &lists[list])
        listBecameEmpty(list)
        return taken
    }

    mutating func recycle(_ buffer: consuming [TimerListElement]) {
        var buffer = buffer
        if buffer.capacity <= TimerWheelLayout.retainedBufferCapacity {
            buffer.removeAll(keepingCapacity: true)
            spareBuffer = buffer
        }
    }

    /// Keeps the occupancy bitmaps exact (so `advance` never visits an empty slot) and forgets the list's lower
    /// bound (so a cancelled minimum cannot outlive its list).
    private mutating func listBecameEmpty(_ list: Int) {
        lowerBounds[list] = .max
        if list < TimerWheelLayout.slotListCount {
            let level = list >> TimerWheelLayout.slotBits
            let slot = UInt64(truncatingIfNeeded: list) & TimerWheelLayout.slotMask
            occupancy[level] &= ~(1 << slot)
        }
    }
}
