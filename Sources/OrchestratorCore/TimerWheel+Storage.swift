/// Geometry and list ids of `TimerWheel`, kept outside the generic type because generic types cannot hold static
/// stored properties.
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
    /// End of a list, and an empty free list.
    static let noNode: Int32 = -1
    /// `TimerNode.list` of a slab entry that is on the free list.
    static let freeMarker: Int16 = -1
}

/// One slab entry. Links are indices rather than class references so that cancel unlinks in O(1) without ARC
/// traffic and freed entries are recycled instead of reallocated.
struct TimerNode<Payload> {
    var next: Int32
    var prev: Int32
    /// The list that holds the node, so cancel knows which head and occupancy bit to fix; `freeMarker` once the
    /// timer fired or was cancelled, which is what makes a stale handle harmless.
    var list: Int16
    var deadline: UInt64
    /// Unique per `schedule` call and never reused: it serves as the generation that tells a handle's timer apart
    /// from a later timer in the same slab entry, and as the FIFO tie-break between equal deadlines.
    var stamp: UInt64
    /// Optional so a fired or cancelled entry does not keep the caller's value alive while it waits for reuse.
    var payload: Payload?
}

extension TimerNode: Sendable where Payload: Sendable {}

/// Slab and intrusive doubly linked lists. Callers keep `count`, `occupancy` and `lowerBounds` for non-empty
/// lists; these helpers only reset them when a list becomes empty.
extension TimerWheel {
    /// Takes an entry off the free list, or grows the slab when none is free.
    mutating func allocateNode(deadline: UInt64, stamp: UInt64, payload: Payload) -> Int {
        let node = TimerNode(
            next: TimerWheelLayout.noNode, prev: TimerWheelLayout.noNode, list: TimerWheelLayout.freeMarker,
            deadline: deadline, stamp: stamp, payload: payload)
        if freeHead != TimerWheelLayout.noNode {
            let index = Int(freeHead)
            freeHead = nodes[index].next
            nodes[index] = node
            return index
        }
        precondition(nodes.count < Int(Int32.max), "TimerWheel: more than 2^31 - 1 pending timers")
        nodes.append(node)
        return nodes.count - 1
    }

    /// Returns the payload and recycles the entry; the caller must already have unlinked or detached it.
    mutating func releaseNode(_ index: Int) -> Payload? {
        let payload = nodes[index].payload.take()
        nodes[index].list = TimerWheelLayout.freeMarker
        nodes[index].prev = TimerWheelLayout.noNode
        nodes[index].next = freeHead
        freeHead = Int32(truncatingIfNeeded: index)
        return payload
    }

    /// Appends at the tail so that a slot keeps roughly the order in which timers arrived.
    mutating func append(_ index: Int, toList list: Int) {
        let tail = tails[list]
        nodes[index].list = Int16(truncatingIfNeeded: list)
        nodes[index].prev = tail
        nodes[index].next = TimerWheelLayout.noNode
        let index32 = Int32(truncatingIfNeeded: index)
        if tail == TimerWheelLayout.noNode {
            heads[list] = index32
        } else {
            nodes[Int(tail)].next = index32
        }
        tails[list] = index32
    }

    /// O(1) removal of a linked node from whichever list holds it.
    mutating func unlink(_ index: Int) {
        let list = Int(nodes[index].list)
        let prev = nodes[index].prev
        let next = nodes[index].next
        if prev == TimerWheelLayout.noNode {
            heads[list] = next
        } else {
            nodes[Int(prev)].next = next
        }
        if next == TimerWheelLayout.noNode {
            tails[list] = prev
        } else {
            nodes[Int(next)].prev = prev
        }
        if heads[list] == TimerWheelLayout.noNode {
            listBecameEmpty(list)
        }
    }

    /// Empties `list` in O(1) and returns its former head. The nodes stay chained through `next` but no longer
    /// belong to any list, so the caller must relink or release every one of them before doing anything else.
    mutating func detachList(_ list: Int) -> Int32 {
        let head = heads[list]
        if head != TimerWheelLayout.noNode {
            heads[list] = TimerWheelLayout.noNode
            tails[list] = TimerWheelLayout.noNode
            listBecameEmpty(list)
        }
        return head
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
