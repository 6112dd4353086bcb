import DequeModule

/// Files that have arrived in Inbox and are to be claimed, in the order they are to be claimed: higher
/// priority first, first come first within a priority.
///
/// Why claims wait here instead of happening as events arrive: a claim is a rename, and a burst of thousands
/// of files announced together would be thousands of renames in one turn of the dispatcher, during which no
/// worker's exit is seen and no slot refilled (measured: turns of 30-160 ms with both workers idle). Taken a
/// queue's worth at a time, the rest waits in Inbox, where it is visible, countable and removable, exactly as
/// a backlog found by a scan does. The order is the ready queue's, so an urgent file dropped after a burst is
/// still claimed before the burst's rest (and the dispatcher lets it past a full queue: see `claimArrivals`).
public struct ArrivalQueue<Name: Hashable> {
    private var fifos: [Int: Deque<Name>] = [:]
    /// Levels present, highest first (a handful: one per handler priority in use).
    private var levels: [Int] = []
    private var queued: Set<Name> = []

    public init() {}

    public var count: Int { queued.count }
    public var isEmpty: Bool { queued.isEmpty }

    public func contains(_ name: Name) -> Bool { queued.contains(name) }

    /// The priority of the name `next` would return.
    public var topPriority: Int? { levels.first }

    /// Queues `name` at `priority`; a name already queued keeps its place.
    public mutating func add(_ name: Name, priority: Int) {
        guard queued.insert(name).inserted else { return }
        if fifos[priority] == nil {
            fifos[priority] = Deque()
            levels.append(priority)
            levels.sort(by: >)
        }
        fifos[priority]!.append(name)
    }

    /// The next name to claim, removed from the queue.
    public mutating func next() -> Name? {
        guard let level = levels.first, let name = fifos[level]!.popFirst() else { return nil }
        queued.remove(name)
        if fifos[level]!.isEmpty {
            fifos[level] = nil
            levels.removeFirst()
        }
        return name
    }

    /// Forgets every queued name (they stay where they are, in Inbox).
    public mutating func removeAll() {
        fifos = [:]
        levels = []
        queued = []
    }
}
