#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// The prune sweep (guarantee 20): deletes the finished jobs and the log files `[retention]` names and
/// hands the freed pages back, so the store and the log folder stay bounded. Files in Done/ and Failed/
/// are never touched. Runs off the dispatcher's queue; its deletes go in small transactions, so the
/// dispatcher's commits wait for one batch at most.
struct Pruner {
    let store: any Store
    /// The per-attempt log folder.
    let logs: PathBytes
    let retention: Retention
    /// The daemon that prunes ([node] name): its own row is never forgotten.
    let node: String

    struct Outcome: Sendable {
        var rows = PruneCounts()
        var logFiles = 0
        var reclaim: ReclaimResult?
        var bytesBefore: Int64 = 0
        var bytesAfter: Int64 = 0
        var seconds: Double = 0

        /// One line for `status`, the log and `sweep`.
        var summary: String {
            var text = "deleted \(rows.jobs) jobs (\(rows.attempts) attempts, \(rows.transitions) transitions), "
                + "\(rows.events) events, \(rows.requests) requests, \(logFiles) log files"
            if rows.daemons > 0 { text += ", the rows of \(rows.daemons) daemons silent past [retention] jobs" }
            if let reclaim, reclaim.byTheServer {
                // Its tables keep their size until autovacuum reuses or hands back the space.
                text += "; the store's tables \(Self.megabytes(bytesBefore)) -> \(Self.megabytes(bytesAfter)) (the server reclaims the space itself)"
                return text + String(format: " in %.1fs", seconds)
            }
            if let reclaim {
                text += reclaim.switchedToIncremental
                    ? "; switched the database to incremental vacuum (one full VACUUM)"
                    : "; \(reclaim.pagesFreed) pages freed"
            }
            // The file pair: a truncated WAL shrinks it even when no page was freed.
            text += "; database and WAL \(Self.megabytes(bytesBefore)) -> \(Self.megabytes(bytesAfter))"
            return text + String(format: " in %.1fs", seconds)
        }

        static func megabytes(_ bytes: Int64) -> String { String(format: "%.1f MB", Double(bytes) / 1_000_000) }
    }

    /// On a store of months (2,000,000 jobs, 1 GB) a batch of this size deletes in about 10 ms; files dropped during a
    /// prune waited up to 5 s behind batches of 1,000 run back to back, when each batch's query took 0.5 s.
    static let batchSize = 250

    /// After each batch the pruner pauses as long as it took: the dispatcher's commits, waiting behind it, go first,
    /// and a long prune takes at most about half of a core.
    static func restAfterBatch(_ took: Duration) {
        let (seconds, attoseconds) = min(took, .milliseconds(500)).components
        usleep(useconds_t(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
    }

    /// Deletes what is older than the retention at `now` (Unix seconds).
    func run(now: UnixTime, shouldContinue: () -> Bool = { true }) throws -> Outcome {
        let started = Date()
        var outcome = Outcome()
        outcome.bytesBefore = store.bytesOnDisk
        let cutoff = now - retention.jobs.inSeconds
        outcome.rows = try store.prune(
            finishedBefore: cutoff, batchSize: Self.batchSize, shouldContinue: shouldContinue, rest: Self.restAfterBatch)
        outcome.rows.daemons = try store.write {
            try $0.forgetDaemons(lastHeardBefore: cutoff, silentFor: NodeLiveness.silentAfter, keeping: node)
        }
        outcome.logFiles = try pruneLogs(olderThan: now - retention.logs.inSeconds, at: now, dryRun: false)
        outcome.reclaim = try store.reclaimFreePages()
        outcome.bytesAfter = store.bytesOnDisk
        outcome.seconds = Date().timeIntervalSince(started)
        return outcome
    }

    /// What `run` would delete (`sweep --mode prune --dry-run`).
    func dryRun(now: UnixTime) throws -> Outcome {
        var outcome = Outcome()
        let cutoff = now - retention.jobs.inSeconds
        outcome.rows = try store.read { try $0.pruneCounts(finishedBefore: cutoff) }
        outcome.rows.daemons = try store.read {
            try $0.daemonsToForget(lastHeardBefore: cutoff, silentFor: NodeLiveness.silentAfter, keeping: node)
        }
        outcome.logFiles = try pruneLogs(olderThan: now - retention.logs.inSeconds, at: now, dryRun: true)
        outcome.bytesBefore = store.bytesOnDisk
        outcome.bytesAfter = outcome.bytesBefore
        return outcome
    }

    /// Deletes `job-ID-attempt-N*.log` files last written before `cutoff`, except those of running
    /// attempts (a quiet worker still writes to its log), and marks their attempts so `show` says the
    /// log was pruned. Returns how many went (or would go).
    private func pruneLogs(olderThan cutoff: UnixTime, at now: UnixTime, dryRun: Bool) throws -> Int {
        let running = Set(try store.read { try $0.runningAttempts() }.compactMap(\.logPath))
        let cutoffNanos = Int64(cutoff * 1e9)
        var pruned: [(jobID: Int64, path: [UInt8])] = []
        for name in DirectoryListing.files(of: logs) {
            guard let jobID = Self.jobID(ofLogName: name) else { continue }
            let path = logs.appending(RelativePath(name))
            guard !running.contains(path.bytes), let status = FileSystem.status(path), status.isRegular,
                status.modified < cutoffNanos
            else { continue }
            if !dryRun {
                guard path.withCString({ unlink($0) }) == 0 else { continue }
            }
            pruned.append((jobID, path.bytes))
        }
        if !dryRun {
            var start = 0
            while start < pruned.count {
                let batch = pruned[start..<min(pruned.count, start + Self.batchSize)]
                try store.write { transaction in
                    for entry in batch { try transaction.markLogPruned(jobID: entry.jobID, logPath: entry.path, at: now) }
                }
                start += Self.batchSize
            }
        }
        return pruned.count
    }

    /// The job id in a per-attempt log's name (`job-12-attempt-1.log`, `job-12-attempt-1-run-2.log`);
    /// nil for any other file, which the prune leaves alone.
    static func jobID(ofLogName name: [UInt8]) -> Int64? {
        guard let text = String(validating: name, as: UTF8.self), text.hasPrefix("job-"), text.hasSuffix(".log") else {
            return nil
        }
        let parts = text.dropFirst(4).dropLast(4).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[1] == "attempt", let id = Int64(parts[0]), Int(parts[2]) != nil else { return nil }
        return id
    }
}

extension Duration {
    /// Whole and fractional seconds, for arithmetic on Unix times.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// At most one prune per state directory at a time in this process: a slow prune is not stacked on by
/// the next timer. (The sweep lock file cannot do this: POSIX record locks are per process.)
enum PruneGate {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var busy: Set<String> = []

    static func enter(_ state: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return busy.insert(state).inserted
    }

    static func leave(_ state: String) {
        lock.lock()
        defer { lock.unlock() }
        busy.remove(state)
    }
}
