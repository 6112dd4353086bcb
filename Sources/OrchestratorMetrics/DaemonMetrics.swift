import OrchestratorCore
import Prometheus
import Synchronization

/// Whose runs a meter counts: a handler's files, a task's runs, or a handler's uploads, by config name.
public enum MeteredOwner: Hashable, Sendable {
    case handler(String)
    case task(String)
    case upload(String)
}

/// How one attempt ended, as `result` label values.
public enum RunResult: String, Sendable, CaseIterable {
    case succeeded
    case failed
    /// Failed because it ran past its timeout.
    case timedOut = "timed_out"
    case cancelled
    /// Cut short by a shutdown; does not count as an attempt.
    case interrupted
    /// Its command could not be started at all (missing, not executable).
    case startFailed = "start_failed"
}

/// What a circuit breaker's gauge shows.
public enum BreakerPosition: Int, Sendable {
    case closed = 0
    case halfOpen = 1
    case open = 2
}

/// What only the dispatcher knows at a given moment, read at scrape time rather than kept up to date on
/// every transition (a transition per file would cost far more than one count per scrape).
public struct LiveGauges: Sendable, Equatable {
    /// Unfinished jobs by state; states missing here count 0.
    public var jobs: [JobState: Int]
    /// Jobs ready to start that wait for a slot or for admission.
    public var queueDepth: Int
    /// Finished files that could not leave the processing area.
    public var stuckFiles: Int
    public var diskPaused: Bool
    /// Every configured breaker.
    public var breakers: [MeteredOwner: BreakerPosition]

    public init(
        jobs: [JobState: Int] = [:], queueDepth: Int = 0, stuckFiles: Int = 0, diskPaused: Bool = false,
        breakers: [MeteredOwner: BreakerPosition] = [:]
    ) {
        self.jobs = jobs
        self.queueDepth = queueDepth
        self.stuckFiles = stuckFiles
        self.diskPaused = diskPaused
        self.breakers = breakers
    }
}

/// The counters of one handler, task or upload command, created once and kept by the dispatcher for the
/// attempt it meters, so that recording an attempt costs a few atomic adds and no lookup by name.
public final class OwnerMeter: Sendable {
    /// Indexed like `RunResult.allCases`.
    private let runs: [Counter]
    private let duration: ValueHistogram
    private let queueWait: ValueHistogram

    fileprivate init(runs: [Counter], duration: ValueHistogram, queueWait: ValueHistogram) {
        self.runs = runs
        self.duration = duration
        self.queueWait = queueWait
    }

    /// A job of this owner started after waiting `seconds` in the ready queue.
    public func started(afterWaiting seconds: Double) {
        queueWait.record(max(0, seconds))
    }

    /// An attempt ended; `seconds` is how long its worker ran (nil when it never started).
    public func attemptEnded(_ result: RunResult, seconds: Double?) {
        runs[result.index].increment()
        if let seconds { duration.record(max(0, seconds)) }
    }
}

extension RunResult {
    fileprivate var index: Int {
        switch self {
        case .succeeded: 0
        case .failed: 1
        case .timedOut: 2
        case .cancelled: 3
        case .interrupted: 4
        case .startFailed: 5
        }
    }
}

/// The daemon's metrics in one Prometheus registry of its own (not the process-wide `MetricsSystem`,
/// which can be bootstrapped once per process: two daemons in one test process would share counts).
///
/// Everything the dispatcher records per file is a handle created once; what is recorded per rare event
/// (an overflow, a sweep, a breaker opening) may look its handle up by name. Label values are config
/// names and fixed words, never file names or job ids, so the number of series stays bounded.
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// For code that speaks the swift-metrics API (`Counter(label:dimensions:factory:)`): its metrics
    /// land in this registry too, without bootstrapping the global `MetricsSystem`.
    public let factory: PrometheusMetricsFactory

    private let meters = Mutex<[MeteredOwner: OwnerMeter]>([:])
    private let gaugeSource = Mutex<(@Sendable () -> LiveGauges?)?>(nil)
    private let breakerGauges = Mutex<[MeteredOwner: Gauge]>([:])
    private let queueWait: [JobKind: ValueHistogram]
    private let finished: [JobKind: (done: Counter, failed: Counter)]
    private let jobGauges: [(JobState, Gauge)]
    private let queueDepth: Gauge
    private let stuckFiles: Gauge
    private let diskPaused: Gauge
    private let diskPauses: Counter
    private let overflows: Counter
    private let admissionRefusals: [AdmissionLimit: Counter]

    /// From 1 ms to 2 h: a worker that converts one small file and a nightly backup task both land
    /// in buckets that tell them apart.
    public static let durationBuckets: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
        7200,
    ]

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        factory = PrometheusMetricsFactory(registry: registry)
        var waits: [JobKind: ValueHistogram] = [:]
        var finished: [JobKind: (done: Counter, failed: Counter)] = [:]
        let waitName = Self.descriptor("queue_wait", "seconds", "Time from ready (queued) to started, by kind of job")
        let finishedName = Self.descriptor("jobs_finished", "total", "Jobs that reached done or failed, by kind of job")
        for kind in [JobKind.file, .task, .upload] {
            waits[kind] = registry.makeValueHistogram(
                descriptor: waitName, labels: [("kind", kind.rawValue)], buckets: Self.durationBuckets)
            finished[kind] = (
                registry.makeCounter(descriptor: finishedName, labels: [("kind", kind.rawValue), ("state", "done")]),
                registry.makeCounter(descriptor: finishedName, labels: [("kind", kind.rawValue), ("state", "failed")])
            )
        }
        queueWait = waits
        self.finished = finished
        let jobsName = Self.descriptor("jobs", "", "Jobs not finished yet, by state")
        jobGauges = JobState.allCases.filter { !$0.isTerminal }.map {
            ($0, registry.makeGauge(descriptor: jobsName, labels: [("state", $0.rawValue)]))
        }
        queueDepth = registry.makeGauge(
            descriptor: Self.descriptor("queue_depth", "", "Jobs ready to start, waiting for a free slot or for admission"))
        stuckFiles = registry.makeGauge(
            descriptor: Self.descriptor("stuck_files", "", "Finished files that could not leave the processing area"))
        diskPaused = registry.makeGauge(
            descriptor: Self.descriptor("disk_paused", "", "1 while paused for a full disk, else 0"))
        diskPauses = registry.makeCounter(
            descriptor: Self.descriptor("disk_pauses", "total", "Times the daemon paused for a full disk"))
        overflows = registry.makeCounter(
            descriptor: Self.descriptor("inotify_overflows", "total", "Times the inotify queue overflowed (each one rescans Inbox)"))
        let refusalName = Self.descriptor(
            "admission_refusals", "total", "Times the queue began to wait for a limit, by the limit that held it back")
        var refusals: [AdmissionLimit: Counter] = [:]
        for limit in AdmissionLimit.allCases {
            refusals[limit] = registry.makeCounter(descriptor: refusalName, labels: [("reason", limit.rawValue)])
        }
        admissionRefusals = refusals
    }

    // MARK: Per job

    /// The meter of one owner, created at its first use. Looked up once per started job.
    public func meter(for owner: MeteredOwner) -> OwnerMeter {
        if let meter = meters.withLock({ $0[owner] }) { return meter }
        let (kind, label, name) = Self.naming(owner)
        let runsName = Self.descriptor("\(kind)_runs", "total", "Attempts by \(kind) and result")
        let runs = RunResult.allCases.map {
            registry.makeCounter(descriptor: runsName, labels: [(label, name), ("result", $0.rawValue)])
        }
        let duration = registry.makeValueHistogram(
            descriptor: Self.descriptor("\(kind)_run_duration", "seconds", "How long attempts ran, by \(kind)"),
            labels: [(label, name)], buckets: Self.durationBuckets)
        let jobKind: JobKind = switch owner {
        case .handler: .file
        case .task: .task
        case .upload: .upload
        }
        let meter = OwnerMeter(runs: runs, duration: duration, queueWait: queueWait[jobKind]!)
        // Two racing first uses create the same registry handles; the first stored wins.
        return meters.withLock { stored in
            if let existing = stored[owner] { return existing }
            stored[owner] = meter
            return meter
        }
    }

    /// A job reached its end state.
    public func jobFinished(_ kind: JobKind, succeeded: Bool) {
        guard let counters = finished[kind] else { return }
        if succeeded { counters.done.increment() } else { counters.failed.increment() }
    }

    // MARK: Rare events

    public func inotifyOverflowed() { overflows.increment() }

    /// A walk of Inbox began; `reason` is one of the dispatcher's fixed reasons ("start", "overflow", ...).
    public func inboxScanStarted(reason: String) {
        registry.makeCounter(
            descriptor: Self.descriptor("inbox_scans", "total", "Walks of Inbox, by why they ran"), labels: [("reason", reason)]
        ).increment()
    }

    /// A sweep ended: `sweep` is its name (ingest, retry, upload, watchdog, prune), `result` a fixed word
    /// (ok, healthy, unhealthy, failed, skipped); `items` what it found or re-queued.
    public func sweepFinished(_ sweep: String, result: String, items: Int? = nil) {
        registry.makeCounter(
            descriptor: Self.descriptor("sweeps", "total", "Sweeps run, by sweep and result"),
            labels: [("sweep", sweep), ("result", result)]
        ).increment()
        if let items, items > 0 {
            registry.makeCounter(
                descriptor: Self.descriptor(
                    "sweep_items", "total", "Files an ingest sweep found that no event announced, jobs a retry or upload sweep re-queued"),
                labels: [("sweep", sweep)]
            ).increment(by: Int64(items))
        }
    }

    public func admissionRefused(_ limit: AdmissionLimit) { admissionRefusals[limit]?.increment() }

    public func breakerOpened(_ owner: MeteredOwner) {
        let (kind, label, name) = Self.naming(owner)
        registry.makeCounter(
            descriptor: Self.descriptor("\(kind)_breaker_opens", "total", "Times the \(kind)'s circuit breaker opened"),
            labels: [(label, name)]
        ).increment()
    }

    public func diskPauseBegan() { diskPauses.increment() }

    // MARK: Rendering

    /// Where `prometheusText()` reads the gauges from: the dispatcher, once it exists (the HTTP server gets the
    /// renderer before). The source answers nil when it cannot in time.
    public func readGauges(from source: @escaping @Sendable () -> LiveGauges?) {
        gaugeSource.withLock { $0 = source }
    }

    /// What `GET /metrics` serves: the counters, and the gauges as the source of `readGauges(from:)` has them now
    /// (without a source, or when it does not answer, as the last scrape left them).
    public func prometheusText() -> String {
        let source = gaugeSource.withLock { $0 }
        return prometheusText(live: source?())
    }

    /// The Prometheus text exposition. `live`: the dispatcher's state now; nil keeps the gauges as the last
    /// scrape left them.
    public func prometheusText(live: LiveGauges?) -> String {
        if let live { update(live) }
        return registry.emitToString()
    }

    private func update(_ live: LiveGauges) {
        for (state, gauge) in jobGauges { gauge.set(to: Double(live.jobs[state] ?? 0)) }
        queueDepth.set(to: Double(live.queueDepth))
        stuckFiles.set(to: Double(live.stuckFiles))
        diskPaused.set(to: live.diskPaused ? 1 : 0)
        breakerGauges.withLock { gauges in
            // A breaker a reload removed leaves no stale series behind.
            for (owner, gauge) in gauges where live.breakers[owner] == nil {
                registry.unregisterGauge(gauge)
                gauges[owner] = nil
            }
            for (owner, position) in live.breakers {
                let gauge = gauges[owner] ?? makeBreakerGauge(owner)
                gauges[owner] = gauge
                gauge.set(to: Double(position.rawValue))
            }
        }
    }

    private func makeBreakerGauge(_ owner: MeteredOwner) -> Gauge {
        let (kind, label, name) = Self.naming(owner)
        return registry.makeGauge(
            descriptor: Self.descriptor(
                "\(kind)_breaker_state", "", "The \(kind)'s circuit breaker: 0 closed, 1 half-open (one trial run), 2 open"),
            labels: [(label, name)])
    }

    // MARK: Names

    /// Each kind of owner has families of its own, each with one fixed label name, so that sums over a
    /// family never mix handlers and tasks.
    private static func naming(_ owner: MeteredOwner) -> (kind: String, label: String, name: String) {
        switch owner {
        case .handler(let name): ("handler", "handler", name)
        case .task(let name): ("task", "task", name)
        case .upload(let name): ("upload", "handler", name)
        }
    }

    private static func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "orchestrator", metricName: name, unitName: unit, helpText: help)
    }
}
