/// Parsing of the /proc files that admission reads. Pure: the texts are handed in.
public enum ProcStat {
    /// Busy and total jiffies of the machine, from the first line of /proc/stat. Busy is everything but
    /// idle and iowait.
    public static func machineTicks(_ text: String) -> (busy: UInt64, total: UInt64)? {
        guard let line = text.split(separator: "\n", maxSplits: 1).first, line.hasPrefix("cpu ") else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 4 else { return nil }
        let total = fields.prefix(8).reduce(0, +)  // guest time is already inside user and nice
        let idle = fields[3] + (fields.count > 4 ? fields[4] : 0)
        return (total - min(total, idle), total)
    }

    /// utime + stime + cutime + cstime of a process, from /proc/PID/stat (fields 14-17). The command
    /// name may contain spaces and ')', so fields are counted from the last ')'.
    public static func processTicks(_ text: String) -> UInt64? {
        guard let paren = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: paren)...].split(separator: " ")
        // After ")": field 3 is index 0, so fields 14...17 are indices 11...14.
        guard fields.count > 14 else { return nil }
        var sum: UInt64 = 0
        for index in 11...14 {
            guard let value = Int64(fields[index]) else { return nil }
            sum += UInt64(max(0, value))
        }
        return sum
    }

    /// Memory in use, percent: 1 - MemAvailable / MemTotal, from /proc/meminfo.
    public static func memoryPercent(_ text: String) -> Double? {
        var total: Double?
        var available: Double?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let value = Double(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { total = value }
            if parts[0] == "MemAvailable:" { available = value }
        }
        guard let total, let available, total > 0 else { return nil }
        return max(0, min(100, (1 - available / total) * 100))
    }

    /// CPU used by others between two samples, percent of the machine: the machine's busy time minus ours.
    public static func otherCPUPercent(
        machineBefore: (busy: UInt64, total: UInt64), machineAfter: (busy: UInt64, total: UInt64),
        oursBefore: UInt64, oursAfter: UInt64
    ) -> Double? {
        guard machineAfter.total > machineBefore.total else { return nil }
        let total = Double(machineAfter.total - machineBefore.total)
        let busy = Double(machineAfter.busy &- machineBefore.busy)
        let ours = oursAfter >= oursBefore ? Double(oursAfter - oursBefore) : 0
        return max(0, min(100, (busy - ours) / total * 100))
    }
}
