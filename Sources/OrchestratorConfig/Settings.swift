import OrchestratorCore

/// The directories the daemon works in: absolute, normalized, no trailing `/`.
public struct Paths: Sendable, Hashable {
    /// Where files are dropped.
    public var inbox: String
    /// Where successfully processed files go.
    public var done: String
    /// Where files whose last attempt failed go.
    public var failed: String
    /// SQLite database, locks, per-run logs.
    public var state: String
    /// Where claimed files wait while they are processed; `<inbox>/.processing` unless set.
    public var processing: String

    /// Paths as given; loading passes them already absolute and normalized.
    public init(inbox: String, done: String, failed: String, state: String, processing: String) {
        self.inbox = inbox
        self.done = done
        self.failed = failed
        self.state = state
        self.processing = processing
    }
}

/// Which files in Inbox count as input, and when a file counts as arrived.
public struct InboxSettings: Sendable, Hashable {
    /// A file is input only if one of these matches its path relative to Inbox.
    public var include: [Glob]
    /// A file that one of these matches is never input (exclude wins over include).
    public var exclude: [Glob]
    /// Watch subfolders too; files keep their relative paths in Done/Failed.
    public var recursive: Bool
    /// How long a file must see no further writes before it counts as arrived.
    public var settle: Duration

    /// Settings as given; see `defaults` for the values of an absent `[inbox]`.
    public init(include: [Glob], exclude: [Glob], recursive: Bool, settle: Duration) {
        self.include = include
        self.exclude = exclude
        self.recursive = recursive
        self.settle = settle
    }

    /// The include list used when `[inbox] include` is absent.
    ///
    /// `**` rather than SPEC's `*` so that the default keeps accepting nested files when
    /// `recursive = true`; at top level the two match the same names.
    public static let defaultInclude: [Glob] = globs(["**"])
    /// The exclude list used when `[inbox] exclude` is absent: hidden, temporary and partial downloads.
    public static let defaultExclude: [Glob] = globs([".*", "*.tmp", "*.part", "*.crdownload", "~*"])

    /// The `[inbox]` table's values when it is absent.
    public static let defaults = InboxSettings(
        include: defaultInclude, exclude: defaultExclude, recursive: false, settle: .milliseconds(500))

    // These patterns are constants known to be valid; `try?` only avoids a trap in a static initializer.
    private static func globs(_ patterns: [String]) -> [Glob] {
        patterns.compactMap { try? Glob($0) }
    }
}

/// Admission limits for the whole daemon.
public struct Limits: Sendable, Hashable {
    /// At most this many workers run at once.
    public var maxConcurrent: Int
    /// The most `max_concurrent` may say: each worker holds four descriptors and a slot in every queue's sizing.
    public static let mostConcurrent = 1024
    /// New work is admitted only while host CPU use is below this (100 = all cores).
    public var maxCPUPercent: Double
    /// New work is admitted only while host memory use is below this.
    public var maxMemoryPercent: Double
    /// A waiting job gains +1 priority per this much waiting, up to 10.
    public var starvationAfter: Duration
    /// On SIGTERM/SIGINT, how long running workers may finish.
    public var shutdownGrace: Duration

    /// Limits as given; see `defaults` for the values of an absent `[limits]`.
    public init(maxConcurrent: Int, maxCPUPercent: Double, maxMemoryPercent: Double,
                starvationAfter: Duration, shutdownGrace: Duration) {
        self.maxConcurrent = maxConcurrent
        self.maxCPUPercent = maxCPUPercent
        self.maxMemoryPercent = maxMemoryPercent
        self.starvationAfter = starvationAfter
        self.shutdownGrace = shutdownGrace
    }

    /// The `[limits]` table's values when it is absent.
    public static let defaults = Limits(
        maxConcurrent: 2, maxCPUPercent: 80, maxMemoryPercent: 85,
        starvationAfter: .seconds(30 * 60), shutdownGrace: .seconds(30))
}

/// The interval of each built-in sweep under `watch`.
public struct Sweeps: Sendable, Hashable {
    /// Re-queues failed attempts whose backoff is due.
    public var retry: Duration
    /// Scans Inbox for files no event announced.
    public var ingest: Duration
    /// Runs pending `upload` commands.
    public var upload: Duration
    /// Ends runs past their timeout, re-queues orphans, records health.
    public var watchdog: Duration
    /// Deletes what `[retention]` names.
    public var prune: Duration

    /// Intervals as given; see `defaults` for the values of an absent `[sweeps]`.
    public init(retry: Duration, ingest: Duration, upload: Duration, watchdog: Duration, prune: Duration = .seconds(60 * 60)) {
        self.retry = retry
        self.ingest = ingest
        self.upload = upload
        self.watchdog = watchdog
        self.prune = prune
    }

    /// The `[sweeps]` table's values when it is absent.
    public static let defaults = Sweeps(
        retry: .seconds(60), ingest: .seconds(5 * 60), upload: .seconds(5 * 60), watchdog: .seconds(30),
        prune: .seconds(60 * 60))
}

/// What the prune sweep deletes. Files in Done/ and Failed/ are never touched.
public struct Retention: Sendable, Hashable {
    /// Finished jobs (with their attempts, transitions and handled events) older than this.
    public var jobs: Duration
    /// Per-attempt log files older than this (by modification time).
    public var logs: Duration

    /// Ages as given; see `defaults` for the values of an absent `[retention]`.
    public init(jobs: Duration, logs: Duration) {
        self.jobs = jobs
        self.logs = logs
    }

    /// The `[retention]` table's values when it is absent.
    public static let defaults = Retention(jobs: .seconds(90 * 86_400), logs: .seconds(14 * 86_400))
}
