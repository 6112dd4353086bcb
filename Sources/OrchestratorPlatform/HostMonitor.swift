import OrchestratorCore

#if canImport(Glibc)
import Glibc
#endif

/// Samples /proc for admission: the CPU used by other processes since the previous sample, and memory
/// in use. Read only while work is waiting to be admitted beside running workers, at most every
/// `minimumInterval`, so an idle daemon reads nothing.
public struct HostMonitor {
    private var machine: (busy: UInt64, total: UInt64)?
    private var ours: UInt64 = 0
    private var sampledAt: UInt64?
    private var latest: HostLoad?
    public let minimumInterval: UInt64
    /// A previous sample older than this gives no meaningful average: start over.
    public let staleAfter: UInt64

    public init(minimumInterval: UInt64 = 250, staleAfter: UInt64 = 5_000) {
        self.minimumInterval = minimumInterval
        self.staleAfter = staleAfter
    }

    /// The host's load at `now` (monotonic ms); `workers` are the pids of our running workers. Memory comes
    /// from one sample; the CPU share is nil until a previous sample recent enough (within `staleAfter`,
    /// at least `minimumInterval` ago) gives an average. nil if /proc cannot be read.
    public mutating func sample(at now: UInt64, workers: [Int32]) -> HostLoad? {
        if let sampledAt, now - sampledAt < minimumInterval { return latest }
        guard let statText = Self.contents(of: "/proc/stat"), let machineNow = ProcStat.machineTicks(statText) else { return nil }
        var oursNow = Self.contents(of: "/proc/self/stat").flatMap(ProcStat.processTicks) ?? 0
        for pid in workers { oursNow += Self.contents(of: "/proc/\(pid)/stat").flatMap(ProcStat.processTicks) ?? 0 }
        let memory = Self.contents(of: "/proc/meminfo").flatMap(ProcStat.memoryPercent) ?? 0
        var other: Double?
        if let machine, let sampledAt, now - sampledAt <= staleAfter {
            other = ProcStat.otherCPUPercent(machineBefore: machine, machineAfter: machineNow, oursBefore: ours, oursAfter: oursNow)
        }
        latest = HostLoad(otherCPU: other, memory: memory)
        machine = machineNow
        ours = oursNow
        sampledAt = now
        return latest
    }

    static func contents(of path: String) -> String? {
        FileSystem.readFile(PathBytes(path), limit: 1 << 16).map { String(decoding: $0, as: UTF8.self) }
    }
}
