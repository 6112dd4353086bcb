/// What a job is expected to use, in percent of the whole machine (100 = all cores, all memory).
public struct LoadEstimate: Sendable, Equatable {
    public var cpu: Double
    public var memory: Double

    public init(cpu: Double = 0, memory: Double = 0) {
        self.cpu = cpu
        self.memory = memory
    }

    public static let none = LoadEstimate()

    public static func + (a: LoadEstimate, b: LoadEstimate) -> LoadEstimate {
        LoadEstimate(cpu: a.cpu + b.cpu, memory: a.memory + b.memory)
    }

    public static func - (a: LoadEstimate, b: LoadEstimate) -> LoadEstimate {
        LoadEstimate(cpu: max(0, a.cpu - b.cpu), memory: max(0, a.memory - b.memory))
    }
}

/// The host as measured: CPU used by processes other than the daemon and its workers (whose share the
/// estimates account for), and memory in use, both in percent of the machine.
public struct HostLoad: Sendable, Equatable {
    /// nil until two samples far enough apart exist.
    public var otherCPU: Double?
    public var memory: Double

    public init(otherCPU: Double?, memory: Double) {
        self.otherCPU = otherCPU
        self.memory = memory
    }
}

public enum AdmissionDecision: Sendable, Equatable {
    case admit
    /// Why the next job waits; `retryLater` when only the host's measured load holds it back, which
    /// changes without any event of ours. `limit` names the reason in a word, for metrics.
    case wait(reason: String, retryLater: Bool, limit: AdmissionLimit)
}

/// Which limit holds the queue back: a fixed set, so that metrics can count waits by it.
public enum AdmissionLimit: String, Sendable, CaseIterable {
    case maxConcurrent = "max_concurrent"
    case cpuEstimates = "cpu_estimates"
    case memoryEstimates = "memory_estimates"
    case hostMemory = "host_memory"
    case hostCPU = "host_cpu"
    /// Not the policy's: workers could not be started for lack of processes or memory (see SpawnThrottle).
    case cannotStart = "cannot_start"
}

/// Whether the next job in the queue may start: within `max_concurrent`, the running estimates plus its
/// own within `max_cpu_percent` / `max_memory_percent`, and the host below those limits. A job larger
/// than the limits on its own still starts when nothing else runs, so nothing waits forever.
public struct AdmissionPolicy: Sendable, Equatable {
    public var maxConcurrent: Int
    public var maxCPU: Double
    public var maxMemory: Double

    public init(maxConcurrent: Int, maxCPU: Double, maxMemory: Double) {
        self.maxConcurrent = maxConcurrent
        self.maxCPU = maxCPU
        self.maxMemory = maxMemory
    }

    public func decide(
        candidate: LoadEstimate, running: LoadEstimate, runningCount: Int, host: HostLoad?
    ) -> AdmissionDecision {
        if runningCount >= maxConcurrent {
            return .wait(reason: "max_concurrent \(maxConcurrent) reached", retryLater: false, limit: .maxConcurrent)
        }
        if runningCount == 0 { return .admit }
        if running.cpu + candidate.cpu > maxCPU {
            return .wait(
                reason: "estimates: running \(Self.show(running.cpu))% + next \(Self.show(candidate.cpu))% CPU > max_cpu_percent \(Self.show(maxCPU))",
                retryLater: false, limit: .cpuEstimates)
        }
        if running.memory + candidate.memory > maxMemory {
            return .wait(
                reason: "estimates: running \(Self.show(running.memory))% + next \(Self.show(candidate.memory))% memory > max_memory_percent \(Self.show(maxMemory))",
                retryLater: false, limit: .memoryEstimates)
        }
        if let host {
            if host.memory >= maxMemory {
                return .wait(
                    reason: "host memory in use \(Self.show(host.memory))% >= max_memory_percent \(Self.show(maxMemory))",
                    retryLater: true, limit: .hostMemory)
            }
            // Unknown only in the first second of a busy spell (the daemon samples every second while workers run).
            if let otherCPU = host.otherCPU, otherCPU >= maxCPU {
                return .wait(
                    reason: "host CPU used by other processes \(Self.show(otherCPU))% >= max_cpu_percent \(Self.show(maxCPU))",
                    retryLater: true, limit: .hostCPU)
            }
        }
        return .admit
    }

    static func show(_ value: Double) -> String {
        value.rounded() == value ? String(Int(value)) : String(format1: value)
    }
}

extension String {
    /// One decimal, without Foundation.
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}
