@preconcurrency import Dispatch
import OrchestratorCore
import OrchestratorMetrics

/// Metrics: counters are recorded where the dispatcher decides things (see the `metrics?.` calls); gauges are
/// read from its memory when scraped, on its queue, never from the store.
extension Dispatcher {
    /// `metrics.prometheusText()` reads its gauges from this dispatcher's memory. A scrape waits for the
    /// dispatcher's queue at most `patience` (a cycle may be in a commit), then serves the gauges of the previous
    /// scrape rather than hang.
    func serveGauges(to metrics: DaemonMetrics, patience: DispatchTimeInterval = .seconds(1)) {
        metrics.readGauges { [weak self] in self?.liveGauges(patience: patience) }
    }

    /// The gauges, counted on the dispatcher's queue: one pass over the unfinished jobs, which a scrape
    /// every few seconds can afford and a hook on every state change could not.
    func liveGauges(patience: DispatchTimeInterval) -> LiveGauges? {
        dispatchPrecondition(condition: .notOnQueue(queue))
        let answer = LockedBox<LiveGauges?>(nil)
        let answered = DispatchSemaphore(value: 0)
        queue.async { [self] in
            answer.value = currentGauges()
            answered.signal()
        }
        guard answered.wait(timeout: .now() + patience) == .success else { return nil }
        return answer.value
    }

    func currentGauges() -> LiveGauges {
        dispatchPrecondition(condition: .onQueue(queue))
        var byState: [JobState: Int] = [:]
        for job in jobs.values { byState[job.state, default: 0] += 1 }
        var positions: [MeteredOwner: BreakerPosition] = [:]
        for (owner, breaker) in breakers {
            positions[owner.metered] = switch breaker.state {
            case .closed: .closed
            case .halfOpen: .halfOpen
            case .open: .open
            }
        }
        return LiveGauges(
            jobs: byState, queueDepth: byState[.queued] ?? 0, stuckFiles: stuckMoves.count,
            diskPaused: phase.isPausedForDisk, breakers: positions)
    }

    static func seconds(since start: UInt64, now: UInt64) -> Double {
        now > start ? Double(now - start) / 1000 : 0
    }
}

extension JobOwner {
    var metered: MeteredOwner {
        switch self {
        case .handler(let name): .handler(name)
        case .task(let name): .task(name)
        case .upload(let name): .upload(name)
        }
    }

    var kind: JobKind {
        switch self {
        case .handler: .file
        case .task: .task
        case .upload: .upload
        }
    }
}

extension RunResult {
    init(_ outcome: AttemptOutcome, timedOut: Bool) {
        switch outcome {
        case .succeeded: self = .succeeded
        case .failed, .running: self = timedOut ? .timedOut : .failed
        case .cancelled: self = .cancelled
        case .interrupted: self = .interrupted
        }
    }
}

extension JobKind {
    /// The log metadata key that names a job of this kind.
    var logKey: String {
        switch self {
        case .file: "file"
        case .task: "task"
        case .upload: "upload"
        }
    }
}
