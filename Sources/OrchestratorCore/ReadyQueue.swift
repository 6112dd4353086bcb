import DequeModule

/// The one queue of jobs ready to start, file jobs and task runs alike: higher priority first, first
/// in first out within a priority, and a job that waits gains +1 priority per `agingStep`, up to
/// `maxAgedPriority`, so a steady stream of urgent work cannot starve the rest.
///
/// One FIFO per base priority: the oldest job of a priority has waited longest, so only the heads can
/// be the best choice, and choosing costs one look per priority level. Time is handed in
/// (milliseconds of any monotonic clock), which keeps the queue pure.
public struct ReadyQueue<ID: Hashable> {
    public struct Entry {
        public let id: ID
        public let priority: Int
        public let queuedAt: UInt64
    }

    /// Base priorities run from 0 to `levels - 1`; anything above `maxAgedPriority` (a run queued by
    /// hand) is never reached by aging.
    public static var levels: Int { 12 }
    public static var maxAgedPriority: Int { 10 }

    private var fifos: [Deque<Entry>] = Array(repeating: Deque(), count: ReadyQueue.levels)
    public private(set) var count = 0
    /// 0: no aging.
    public var agingStep: UInt64

    public init(agingStep: UInt64) {
        self.agingStep = agingStep
    }

    public var isEmpty: Bool { count == 0 }

    /// How many entries have a base priority of at least `priority` (entries left stale count until dropped).
    public func count(atLeast priority: Int) -> Int {
        let lowest = min(Self.levels - 1, max(0, priority))
        return fifos[lowest...].reduce(0) { $0 + $1.count }
    }

    public mutating func push(_ id: ID, priority: Int, at now: UInt64) {
        let level = min(Self.levels - 1, max(0, priority))
        fifos[level].append(Entry(id: id, priority: level, queuedAt: now))
        count += 1
    }

    /// The priority a queued entry competes with at `now`.
    public func effectivePriority(_ entry: Entry, at now: UInt64) -> Int {
        guard agingStep > 0, entry.priority < Self.maxAgedPriority, now > entry.queuedAt else { return entry.priority }
        let gained = (now - entry.queuedAt) / agingStep
        return Int(min(UInt64(Self.maxAgedPriority), UInt64(entry.priority) + gained))
    }

    /// The entry that would start next: highest effective priority, and of equals the one queued first.
    /// Entries for which `isStale` is true (jobs that left the queue meanwhile) are dropped on the way.
    public mutating func peek(at now: UInt64, isStale: (ID) -> Bool = { _ in false }) -> Entry? {
        var best: Entry?
        var bestPriority = Int.min
        for level in fifos.indices {
            while let head = fifos[level].first, isStale(head.id) {
                fifos[level].removeFirst()
                count -= 1
            }
            guard let head = fifos[level].first else { continue }
            let priority = effectivePriority(head, at: now)
            if priority > bestPriority || (priority == bestPriority && head.queuedAt < best!.queuedAt) {
                best = head
                bestPriority = priority
            }
        }
        return best
    }

    /// Moves a queued entry to another base priority, keeping when it was queued (its place among the
    /// equals there, and what aging it has earned). False if it is not queued. Rare (a user's
    /// `orchestrator priority`), so a linear search is fine.
    @discardableResult
    public mutating func reprioritize(_ id: ID, to priority: Int) -> Bool {
        for level in fifos.indices {
            guard let index = fifos[level].firstIndex(where: { $0.id == id }) else { continue }
            let old = fifos[level].remove(at: index)
            let target = min(Self.levels - 1, max(0, priority))
            let entry = Entry(id: id, priority: target, queuedAt: old.queuedAt)
            // Each FIFO stays ordered by queuing time, which is what lets `peek` look at the heads only.
            let position = fifos[target].firstIndex { $0.queuedAt > entry.queuedAt } ?? fifos[target].count
            fifos[target].insert(entry, at: position)
            return true
        }
        return false
    }

    /// Removes and returns what `peek` would return.
    public mutating func pop(at now: UInt64, isStale: (ID) -> Bool = { _ in false }) -> Entry? {
        guard let entry = peek(at: now, isStale: isStale) else { return nil }
        fifos[entry.priority].removeFirst()
        count -= 1
        return entry
    }
}
