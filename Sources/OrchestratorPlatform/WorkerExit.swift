/// What to run for one attempt. Everything the kernel sees is bytes: arguments, environment
/// entries and paths may hold any byte except NUL, including invalid UTF-8.
public struct SpawnRequest: Sendable {
    /// argv. An `arguments[0]` containing "/" is a path (relative ones are resolved in
    /// `workingDirectory`); otherwise it is looked up in the daemon's `PATH`.
    public var arguments: [[UInt8]]
    /// The child's complete environment, as "KEY=VALUE" entries.
    public var environment: [[UInt8]]
    /// Empty keeps the daemon's working directory.
    public var workingDirectory: [UInt8]
    /// The per-attempt log, created or truncated (mode 0644). stdout and stderr both go there.
    public var logPath: [UInt8]
    /// Bytes of output kept in the log; the rest is counted and dropped, and the log then ends
    /// with a line saying how much was dropped.
    public var logCap: Int

    public init(
        arguments: [[UInt8]], environment: [[UInt8]], workingDirectory: [UInt8],
        logPath: [UInt8], logCap: Int
    ) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.logPath = logPath
        self.logCap = logCap
    }
}

public enum Termination: Sendable, Hashable {
    /// The leader called exit with this status (0...255). -1 only if something else in the
    /// process reaped the child first (SIGCHLD ignored, or a stray `waitpid(-1)`).
    case exited(Int32)
    /// The leader was killed by this signal.
    case signaled(Int32)
}

/// How a worker ended, delivered once its leader is reaped, its group killed and its output drained.
public struct WorkerExit: Sendable {
    public var termination: Termination
    /// CPU time of the leader and the descendants it waited for (`wait4` rusage).
    public var userCPU: Duration
    public var systemCPU: Duration
    /// Largest resident set of the leader or a waited-for descendant, in KiB. Started without the
    /// spawn helper, it is at least the supervising process's own peak (see orchestrator-spawn).
    public var maxRSSKiB: Int
    /// The last 4 KiB the worker wrote to stderr (whether or not the log kept them).
    public var stderrTail: [UInt8]
    /// Total bytes the worker wrote to stdout and stderr.
    public var outputBytes: Int
    /// Bytes beyond the log cap, not written to the log.
    public var droppedBytes: Int
    /// Why the worker's output could not be kept in its log (opening or writing it failed), if it could not.
    public var logFailure: String?
    /// The worker could not be started after all (its exec or entering its working directory failed in the
    /// spawner's child, which the spawner does not wait for): then it ran nothing, and exited 127.
    public var startFailure: SpawnError?

    public init(
        termination: Termination, userCPU: Duration, systemCPU: Duration, maxRSSKiB: Int,
        stderrTail: [UInt8], outputBytes: Int, droppedBytes: Int, logFailure: String? = nil, startFailure: SpawnError? = nil
    ) {
        self.logFailure = logFailure
        self.termination = termination
        self.userCPU = userCPU
        self.systemCPU = systemCPU
        self.maxRSSKiB = maxRSSKiB
        self.stderrTail = stderrTail
        self.outputBytes = outputBytes
        self.droppedBytes = droppedBytes
        self.startFailure = startFailure
    }
}

/// The worker could not be started; nothing was left running or open.
public struct SpawnError: Error, Sendable, CustomStringConvertible {
    public var errno: Int32
    /// For example "cannot run ./workers/x.sh: No such file or directory".
    public var description: String

    public init(errno: Int32, description: String) {
        self.errno = errno
        self.description = description
    }
}

/// A worker: its pid is also its process group and session id. With its start time it recognises (and ends)
/// the group after a daemon restart; see `ProcessSupervisor.isAlive`.
public struct WorkerHandle: Sendable, Hashable {
    public let pid: Int32
    /// Field 22 of /proc/PID/stat (clock ticks after boot). 0 in the handle `spawn` returns, which is only ever
    /// compared with the supervisor's own; `ProcessSupervisor.startTime(ofLive:)` reads it while that is possible.
    public let startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }
}
