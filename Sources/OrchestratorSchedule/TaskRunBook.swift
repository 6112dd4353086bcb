import OrchestratorConfig

/// One task's runs that are not finished: a task never overlaps itself, so one run is `active` (on the
/// ready queue, running or waiting to retry) and the others are `held` in order behind it.
public struct TaskRunBook: Sendable, Equatable {
    public private(set) var active: Int64?
    public private(set) var held: [Int64] = []

    public init() {}

    public var live: Set<Int64> { Set(held).union(active.map { [$0] } ?? []) }
    public var isEmpty: Bool { active == nil && held.isEmpty }
    public var count: Int { held.count + (active == nil ? 0 : 1) }

    /// Whether a scheduled run may be added: with `overlap = "skip"` not while one is live, with `"queue"`
    /// at most one waiting behind the live one. Events and `task run` always queue.
    public func admitsScheduled(overlap: Overlap) -> Bool {
        isEmpty || (overlap == .queue && count < 2)
    }

    /// Adds a run; true if it became the active one (so it goes on the ready queue now). A run queued by
    /// hand (`ahead`) waits in front of the other held runs, after earlier ones queued by hand.
    public mutating func add(_ run: Int64, ahead: Bool = false, isAhead: (Int64) -> Bool = { _ in false }) -> Bool {
        if active == nil {
            active = run
            return true
        }
        if ahead {
            held.insert(run, at: held.firstIndex { !isAhead($0) } ?? held.count)
        } else {
            held.append(run)
        }
        return false
    }

    /// A run ended: if it was the active one, the next held run (that `stillLive`) becomes active and is
    /// returned, to go on the ready queue.
    public mutating func finished(_ run: Int64, stillLive: (Int64) -> Bool = { _ in true }) -> Int64? {
        held.removeAll { $0 == run }
        guard active == run else { return nil }
        active = nil
        while !held.isEmpty {
            let next = held.removeFirst()
            guard stillLive(next) else { continue }
            active = next
            return next
        }
        return nil
    }
}
