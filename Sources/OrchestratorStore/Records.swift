import Foundation
import OrchestratorCore

/// Wall-clock time as Unix seconds; what the store keeps and what `history` prints.
public typealias UnixTime = Double

public struct JobRecord: Sendable, Equatable {
    public var id: Int64
    public var kind: JobKind
    public var name: RelativePath
    public var handler: String?
    public var state: JobState
    public var priority: Int
    public var attempts: Int
    public var maxAttempts: Int
    public var notBefore: UnixTime?
    public var finalPath: RelativePath?
    public var reason: String?
    public var createdAt: UnixTime
    public var updatedAt: UnixTime
    public var finishedAt: UnixTime?
    /// Tasks: why the run was queued (`TaskCause`), its slot (Unix ms) or its event.
    public var cause: String?
    public var slotMs: Int64?
    public var eventID: Int64?
    /// File jobs: the claimed file's device and inode (nil for jobs claimed before they were recorded).
    public var claimDevice: UInt64?
    public var claimInode: UInt64?
    /// Its priority was set by `orchestrator priority`: a restart keeps it instead of the handler's.
    public var prioritySetByHand = false
    /// The node that claimed the job last (`claimNext`, `claimJob`): while it runs, the node holding it; after, the
    /// node that ran it. nil when never claimed, or taken back by a rescue.
    public var owner: String? = nil
    /// When that claim's lease runs out, on the store's clock (Unix seconds), unless renewed.
    public var leaseUntil: UnixTime? = nil
    /// How many times the job has been claimed: what names one claim, since a rescued run gives its attempt back.
    public var claims: Int = 0

    /// A record built in code (tests, planners); the store builds them from rows.
    public init(
        id: Int64, kind: JobKind = .file, name: RelativePath, handler: String? = nil, state: JobState,
        priority: Int = 5, attempts: Int = 0, maxAttempts: Int = 3, finalPath: RelativePath? = nil,
        claimDevice: UInt64? = nil, claimInode: UInt64? = nil, at time: UnixTime = 0
    ) {
        self.id = id
        self.kind = kind
        self.name = name
        self.handler = handler
        self.state = state
        self.priority = priority
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.finalPath = finalPath
        self.createdAt = time
        self.updatedAt = time
        self.claimDevice = claimDevice
        self.claimInode = claimInode
    }

    /// `prefix` reads the columns of a join that renamed them (`j_id`, `j_name` ...).
}

public struct AttemptRecord: Sendable, Equatable {
    public var id: Int64
    public var jobID: Int64
    public var number: Int
    public var outcome: AttemptOutcome
    public var startedAt: UnixTime
    public var endedAt: UnixTime?
    public var pid: Int32?
    public var startTime: UInt64?
    public var exitCode: Int32?
    public var signal: Int32?
    public var timedOut: Bool
    public var userCPU: Double?
    public var systemCPU: Double?
    public var maxRSSKiB: Int?
    public var logPath: [UInt8]?
    public var stderrTail: [UInt8]
    public var reason: String?
    /// When the prune sweep deleted its log file; nil while it is kept (or was never written).
    public var logPrunedAt: UnixTime?

    public init(id: Int64, jobID: Int64, number: Int, outcome: AttemptOutcome, startedAt: UnixTime, endedAt: UnixTime?, pid: Int32?, startTime: UInt64?, exitCode: Int32?, signal: Int32?, timedOut: Bool, userCPU: Double?, systemCPU: Double?, maxRSSKiB: Int?, logPath: [UInt8]?, stderrTail: [UInt8], reason: String?, logPrunedAt: UnixTime?) {
        self.id = id
        self.jobID = jobID
        self.number = number
        self.outcome = outcome
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.pid = pid
        self.startTime = startTime
        self.exitCode = exitCode
        self.signal = signal
        self.timedOut = timedOut
        self.userCPU = userCPU
        self.systemCPU = systemCPU
        self.maxRSSKiB = maxRSSKiB
        self.logPath = logPath
        self.stderrTail = stderrTail
        self.reason = reason
        self.logPrunedAt = logPrunedAt
    }
}

/// The result of one attempt, as the dispatcher learned it from the reaper.
public struct AttemptResult: Sendable {
    public var outcome: AttemptOutcome
    public var exitCode: Int32?
    public var signal: Int32?
    public var timedOut: Bool
    public var userCPU: Double?
    public var systemCPU: Double?
    public var maxRSSKiB: Int?
    public var stderrTail: [UInt8]
    public var reason: String?

    public init(
        outcome: AttemptOutcome, exitCode: Int32? = nil, signal: Int32? = nil, timedOut: Bool = false,
        userCPU: Double? = nil, systemCPU: Double? = nil, maxRSSKiB: Int? = nil, stderrTail: [UInt8] = [],
        reason: String? = nil
    ) {
        self.outcome = outcome
        self.exitCode = exitCode
        self.signal = signal
        self.timedOut = timedOut
        self.userCPU = userCPU
        self.systemCPU = systemCPU
        self.maxRSSKiB = maxRSSKiB
        self.stderrTail = stderrTail
        self.reason = reason
    }
}

/// One row of `history`: an attempt with the job it belongs to.
public struct HistoryRow: Sendable {
    public var job: JobRecord
    public var attempt: AttemptRecord

    public init(job: JobRecord, attempt: AttemptRecord) {
        self.job = job
        self.attempt = attempt
    }
}

public struct QueueCounts: Sendable, Equatable {
    public var byState: [JobState: Int]
    public init(byState: [JobState: Int] = [:]) { self.byState = byState }
    public func count(_ state: JobState) -> Int { byState[state] ?? 0 }
}

/// What became of a scheduled firing (`StoreTransaction.fireTaskSlot`).
public enum TaskFiring: Sendable, Equatable {
    case queued(Int64)
    /// Its slot was recorded already: another daemon, or an earlier life of this one, queued it.
    case slotTaken
    /// This many runs of the task are live in the store, at the limit: not run (`overlap`).
    case overlapping(live: Int)
}
