import Logging
import OrchestratorConfig
import OrchestratorSchedule
import OrchestratorStore

/// What becomes of a task's run that came due (a slot, an event, `task run`, a prerequisite that ended), decided
/// from facts the dispatcher gathers, so that each rule is tested without a store, a clock or a timer. The
/// dispatcher records and queues the run, keeps it waiting or drops it, and logs what the verdict says.
struct TaskDueReview: Equatable {
    struct Facts: Equatable {
        var cause: TaskCause
        var enabled = true
        var overlap: Overlap = .skip
        /// Its runs not finished yet, on this daemon.
        var runs = TaskRunBook()
        /// Its prerequisites (`after`).
        var after: [String] = []
        /// When its latest run started (Unix seconds): prerequisites must have succeeded since.
        var ownLastStart: Double?
        /// The latest finished run of each task, as far as this daemon knows.
        var latest: [String: RunSummary] = [:]
        /// A run of it already waits for prerequisites (this one would replace it).
        var hasPending = false
    }

    /// Why a due run is not run.
    enum Drop: Equatable {
        case disabled
        /// The previous run has not finished (`overlap`).
        case overlapping
        /// A prerequisite cannot run at all: waiting for it would block forever.
        case prerequisiteCannotRun(String)

        var reason: String {
            switch self {
            case .disabled: "disabled"
            case .overlapping: "the previous run has not finished"
            case .prerequisiteCannotRun(let why): why
            }
        }

        /// A disabled task's slots pass quietly; the others are news.
        var level: Logger.Level {
            switch self {
            case .disabled: .debug
            case .overlapping: .info
            case .prerequisiteCannotRun: .warning
            }
        }
    }

    enum Verdict: Equatable {
        /// Not run, and a run that waited for prerequisites is dropped too.
        case drop(Drop)
        /// Waits for these prerequisites, replacing any run that waited; `say` is the level to log it at, nil
        /// when it is the normal rhythm (still waiting for prerequisites due in the same slot).
        case wait(for: [String], say: Logger.Level?)
        /// Recorded and queued now; `endsWaiting` when a run of it waited for prerequisites until now.
        case run(endsWaiting: Bool)
    }

    let verdict: Verdict

    init(_ facts: Facts) {
        verdict = Self.decide(facts)
    }

    /// Whether the verdict turns on its prerequisites' runs: only then is the store read for other daemons' (a run that
    /// is dropped for being disabled or overlapping reads nothing).
    static func asksPrerequisites(_ facts: Facts) -> Bool {
        guard facts.cause != .manual, facts.enabled, !facts.after.isEmpty else { return false }
        return facts.cause == .event || facts.runs.admitsScheduled(overlap: facts.overlap)
    }

    private static func decide(_ facts: Facts) -> Verdict {
        // `task run` is the operator's: it runs whatever the task's state, overlap or prerequisites.
        if facts.cause == .manual { return .run(endsWaiting: false) }
        if !facts.enabled { return .drop(.disabled) }
        // An event queues one run per event (they run one after the other); a schedule does not pile runs up
        // behind a slow task: with overlap = "queue" at most one waits.
        if facts.cause != .event, !facts.runs.admitsScheduled(overlap: facts.overlap) {
            return .drop(.overlapping)
        }
        // A reload may have taken its `after` away while a run of it waited.
        guard !facts.after.isEmpty else { return .run(endsWaiting: facts.hasPending) }
        switch DependencyGate.decide(after: facts.after, ownLastStart: facts.ownLastStart, latest: facts.latest) {
        case .skip(let reason):
            return .drop(.prerequisiteCannotRun(reason))
        case .waiting(let names):
            // Waiting for a prerequisite due in the same slot is the normal rhythm; waiting for one that failed is news,
            // and so is the first wait.
            let failed = names.contains { facts.latest[$0].map { $0.result != .succeeded } ?? false }
            if failed { return .wait(for: names, say: .info) }
            return .wait(for: names, say: facts.hasPending ? nil : .debug)
        case .run:
            return .run(endsWaiting: facts.hasPending)
        }
    }

    /// How a run that is due is recorded.
    struct Plan: Equatable {
        /// `task run` goes ahead of everything, aged jobs included.
        var priority: Int
        /// Why it was queued, for its first transition.
        var detail: String
        /// On a shared store the store decides `overlap` for a scheduled run: how many runs of the task may be live on
        /// all daemons together, counting this one; nil when this daemon's book decided it.
        var liveLimit: Int?
    }

    static func plan(cause: TaskCause, priority: Int, overlap: Overlap, sharedStore: Bool, topPriority: Int) -> Plan {
        let detail = switch cause {
        case .schedule: "scheduled slot"
        case .catchUp: "missed slot (catch_up = once)"
        case .reboot: "daemon start (@reboot)"
        case .event: "event"
        case .manual: "task run"
        }
        let storeDecides = sharedStore && cause != .event && cause != .manual
        return Plan(
            priority: cause == .manual ? topPriority : priority, detail: detail,
            liveLimit: storeDecides ? (overlap == .queue ? 2 : 1) : nil)
    }

    /// What the store says of the tasks' latest runs and starts, merged into what this daemon knows: on a shared store
    /// they may be other daemons'. Only what is newer is taken, since this daemon's own latest end may still be on its way
    /// to the store.
    static func merged(
        _ known: [String: RunSummary], starts knownStarts: [String: Double],
        stored: [String: RunSummary], storedStarts: [String: Double]
    ) -> (latest: [String: RunSummary], starts: [String: Double]) {
        var latest = known
        for (name, run) in stored where run.finishedAt > known[name]?.finishedAt ?? -.infinity { latest[name] = run }
        var starts = knownStarts
        for (name, start) in storedStarts where start > knownStarts[name] ?? -.infinity { starts[name] = start }
        return (latest, starts)
    }
}
