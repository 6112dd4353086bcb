/// The latest finished run of a task, as far as its dependents care.
public struct RunSummary: Sendable, Hashable {
    public enum Result: Sendable, Hashable {
        case succeeded
        case failed
        /// Its command could not be started at all (missing, not executable).
        case commandMissing
    }

    /// Unix seconds.
    public var startedAt: Double
    public var finishedAt: Double
    public var result: Result

    public init(startedAt: Double, finishedAt: Double, result: Result) {
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.result = result
    }
}

/// Whether a due task with `after = [...]` may run now.
public enum GateDecision: Sendable, Hashable {
    case run
    /// Prerequisites that have not succeeded since this task last ran; it stays due and is looked at
    /// again when one of them finishes.
    case waiting(for: [String])
    /// A prerequisite cannot run at all; waiting for it would block forever, so this slot is skipped.
    case skip(because: String)
}

public enum DependencyGate {
    /// A task runs when the latest run of every prerequisite succeeded and finished no earlier than the
    /// task's own last run started ("level 1 → level 2 → level 3"). A prerequisite that never ran is
    /// waited for; one whose command is missing makes the dependent skip, with the reason.
    public static func decide(
        after prerequisites: [String], ownLastStart: Double?, latest: [String: RunSummary]
    ) -> GateDecision {
        var waiting: [String] = []
        for name in prerequisites {
            guard let run = latest[name] else {
                waiting.append(name)
                continue
            }
            switch run.result {
            case .commandMissing:
                return .skip(because: "prerequisite \(name) cannot run: its command is missing")
            case .failed:
                waiting.append(name)
            case .succeeded:
                if let ownLastStart, run.finishedAt < ownLastStart { waiting.append(name) }
            }
        }
        return waiting.isEmpty ? .run : .waiting(for: waiting)
    }
}
