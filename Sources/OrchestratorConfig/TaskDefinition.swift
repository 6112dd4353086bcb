import OrchestratorCore

/// What makes a task due.
public enum Trigger: Sendable, Hashable {
    /// On slots aligned to multiples of the interval since the Unix epoch.
    case every(Duration)
    /// A 5-field cron expression (validated by the cron module), in `timeZone` or local time when nil.
    case cron(expression: String, timeZone: String?)
    /// Whenever the named event fires.
    case event(String)
}

/// The names an event may have: those `trigger` and the API accept, and so the only ones an `on` task can listen to.
public enum EventName {
    public static let rule = "1-200 characters of letters, digits and . _ - :"

    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 200
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_:".unicodeScalars.contains($0)) }
    }
}

/// What happens at start to slots missed while the daemon was down.
public enum CatchUp: String, Sendable, CaseIterable {
    /// Wait for the next slot.
    case none
    /// Run one missed slot.
    case once
}

/// What happens when a run is due while the last one still runs.
public enum Overlap: String, Sendable, CaseIterable {
    /// Drop the due run.
    case skip
    /// Keep at most one run waiting behind the running one.
    case queue
}

/// One `[[task]]`: an interval, cron or event task.
public struct TaskDefinition: Sendable {
    /// Unique among tasks; the name `orchestrator task run NAME` and `after` use.
    public var name: String
    /// `every`, `cron` (+ `tz`) or `on`: exactly one was given.
    public var trigger: Trigger
    /// The argv; argv[0] with a `/` is already absolute.
    public var command: CommandTemplate
    /// Tasks that must have succeeded first; all exist and form no cycle.
    public var after: [String]
    /// 1...10, higher runs first.
    public var priority: Int
    /// After this, the task's process group gets SIGTERM, then SIGKILL after the grace.
    public var timeout: Duration
    /// Attempts in total, including the first; at least 1.
    public var maxAttempts: Int
    /// Base delay of the exponential backoff between attempts.
    public var backoff: Duration
    /// nil when the task has no circuit breaker.
    public var breaker: Breaker?
    /// A disabled task is never due; `orchestrator task enable|disable` toggles it.
    public var enabled: Bool
    /// What happens at start to slots missed while the daemon was down.
    public var catchUp: CatchUp
    /// What happens when a run is due while the last one still runs.
    public var overlap: Overlap
    /// Admission estimate of the task's CPU use, percent of the machine.
    public var cpuPercent: Double?
    /// Admission estimate of the task's memory use, percent of the machine.
    public var memoryPercent: Double?
    /// The line of the `[[task]]` header, for messages about this task.
    public var line: Int

    /// A task as given, with the same defaults as a `[[task]]` that omits the keys.
    public init(name: String, trigger: Trigger, command: CommandTemplate, after: [String] = [],
                priority: Int = 5, timeout: Duration = .seconds(600), maxAttempts: Int = 1,
                backoff: Duration = .seconds(30), breaker: Breaker? = nil, enabled: Bool = true,
                catchUp: CatchUp = .once, overlap: Overlap = .skip, cpuPercent: Double? = nil,
                memoryPercent: Double? = nil, line: Int = 0) {
        self.name = name
        self.trigger = trigger
        self.command = command
        self.after = after
        self.priority = priority
        self.timeout = timeout
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.breaker = breaker
        self.enabled = enabled
        self.catchUp = catchUp
        self.overlap = overlap
        self.cpuPercent = cpuPercent
        self.memoryPercent = memoryPercent
        self.line = line
    }
}
