import OrchestratorCore

/// A circuit breaker: after `failures` consecutive failures, stop starting work for `cooldown`.
public struct Breaker: Sendable, Hashable {
    /// Consecutive failed attempts that open the circuit; at least 1.
    public var failures: Int
    /// How long the circuit stays open before one trial attempt.
    public var cooldown: Duration

    /// A breaker as given; no range check (loading does that).
    public init(failures: Int, cooldown: Duration) {
        self.failures = failures
        self.cooldown = cooldown
    }
}

/// One `[[handler]]`: which inbox files it takes and the worker that processes each.
public struct Handler: Sendable {
    /// Unique among handlers; shown in logs and passed to workers as `ORCH_HANDLER`.
    public var name: String
    /// The handler takes a file if any of these matches its path relative to Inbox.
    public var match: [Glob]
    /// The worker argv; argv[0] with a `/` is already absolute.
    public var command: CommandTemplate
    /// 1...10, higher runs first.
    public var priority: Int
    /// After this, the worker's process group gets SIGTERM, then SIGKILL after the grace.
    public var timeout: Duration
    /// Attempts in total, including the first; at least 1.
    public var maxAttempts: Int
    /// Base delay of the exponential backoff between attempts.
    public var backoff: Duration
    /// nil when the handler has no circuit breaker.
    public var breaker: Breaker?
    /// Run on each Done file by the upload sweep; nil when the handler has none.
    public var upload: CommandTemplate?
    /// Admission estimate of the worker's CPU use, percent of the machine.
    public var cpuPercent: Double?
    /// Admission estimate of the worker's memory use, percent of the machine.
    public var memoryPercent: Double?
    /// The line of the `[[handler]]` header, for messages about this handler.
    public var line: Int

    /// A handler as given, with the same defaults as an `[[handler]]` that omits the keys.
    public init(name: String, match: [Glob], command: CommandTemplate, priority: Int = 5,
                timeout: Duration = .seconds(600), maxAttempts: Int = 3, backoff: Duration = .seconds(30),
                breaker: Breaker? = nil, upload: CommandTemplate? = nil, cpuPercent: Double? = nil,
                memoryPercent: Double? = nil, line: Int = 0) {
        self.name = name
        self.match = match
        self.command = command
        self.priority = priority
        self.timeout = timeout
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.breaker = breaker
        self.upload = upload
        self.cpuPercent = cpuPercent
        self.memoryPercent = memoryPercent
        self.line = line
    }

    /// Whether this handler takes the inbox file at `path`.
    public func matches(_ path: RelativePath) -> Bool {
        match.contains { $0.matches(path) }
    }
}
