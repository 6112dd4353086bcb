/// How many files the dispatcher claims in a cycle: a queue's worth ahead of the workers, a batch at a time.
///
/// The ready queue is refilled to `highWater` once it is down to `lowWater`, so that claims (renames, and one
/// commit for their rows) come in batches of dozens rather than one or two in every cycle as workers take jobs
/// (measured: 0.25 -> 0.37 ms of daemon CPU per file when every cycle claimed). A file of a higher priority than
/// most of the queue is let past a full queue: as long as fewer than `lowWater` queued jobs are at its priority or
/// above, it is claimed at once, as if everything before it had been claimed too.
public struct ClaimPacing: Equatable, Sendable {
    public let highWater: Int
    public var lowWater: Int { highWater / 4 }

    /// 16 per worker, at least 64: a few seconds of short jobs, and memory that stays flat for any backlog.
    public init(maxConcurrent: Int) {
        highWater = max(64, maxConcurrent * 16)
    }

    /// How many may be claimed now, in order (arrivals, then a scan's slice): none while the queue holds at least
    /// `lowWater` and no batch is under way, else up to `highWater`. `queued`: jobs in the ready queue;
    /// `uncommitted`: claims made and not yet recorded (a batch under way).
    public func room(queued: Int, uncommitted: Int) -> Int {
        let held = queued + uncommitted
        guard uncommitted == 0 ? queued < lowWater : held < highWater else { return 0 }
        return highWater - held
    }

    /// The names to claim now from `arrivals`, in their order: the room first, then those that outrank the queue.
    /// `queuedAtOrAbove`: how many ready jobs have at least a given base priority.
    public func take<Name>(
        from arrivals: inout ArrivalQueue<Name>, queued: Int, uncommitted: Int, queuedAtOrAbove: (Int) -> Int
    ) -> [Name] {
        var room = room(queued: queued, uncommitted: uncommitted)
        var taken: [Name] = []
        while let priority = arrivals.topPriority {
            if room > 0 {
                room -= 1
            } else if queuedAtOrAbove(priority) + taken.count >= lowWater {
                // Everything taken before it is of its priority or higher (arrivals come out highest first).
                break
            }
            guard let name = arrivals.next() else { break }
            taken.append(name)
        }
        return taken
    }

    /// Whether `take` would take anything now.
    public func canTake<Name>(from arrivals: ArrivalQueue<Name>, queued: Int, uncommitted: Int, queuedAtOrAbove: (Int) -> Int) -> Bool {
        guard let priority = arrivals.topPriority else { return false }
        return room(queued: queued, uncommitted: uncommitted) > 0 || queuedAtOrAbove(priority) < lowWater
    }
}
