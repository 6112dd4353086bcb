#if canImport(Glibc)
import Glibc
#endif

/// Finds worker processes of an earlier daemon by the `ORCH_STATE_DIR` every worker inherits.
///
/// The store records each worker's pid, but only after the spawn; a daemon killed in between would
/// leave a worker nobody knows about. The environment marker closes that window.
public enum OrphanFinder {
    public struct Found: Sendable {
        /// Session leaders: workers we started, whose whole group can be ended.
        public var workers: [WorkerHandle] = []
        /// Members of a group whose leader has already exited (a grandchild left running).
        public var strays: [Int32] = []
    }

    /// A process as /proc shows it, for `classify`.
    public struct Candidate: Sendable {
        public var pid: Int32
        /// Its environment block: NUL-separated `NAME=VALUE` entries.
        public var environment: [UInt8]
        public var sessionID: Int32

        public init(pid: Int32, environment: [UInt8], sessionID: Int32) {
            self.pid = pid
            self.environment = environment
            self.sessionID = sessionID
        }
    }

    public static func processes(stateDirectory: String) -> Found {
        let me = getpid()
        guard let proc = opendir("/proc") else { return Found() }
        defer { closedir(proc) }
        var candidates: [Candidate] = []
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), pid != me else { continue }
            guard let environment = FileSystem.readFile(PathBytes("/proc/\(pid)/environ"), limit: 1 << 20) else { continue }
            candidates.append(Candidate(pid: pid, environment: environment, sessionID: getsid(pid)))
        }
        return classify(candidates, stateDirectory: stateDirectory, startTime: ProcessSupervisor.startTime(of:))
    }

    /// Workers of a daemon on `stateDirectory` carry exactly `ORCH_STATE_DIR=<it>` (another state dir that
    /// merely starts with the same path is another instance's). A session leader is a worker; any other
    /// marked process is a descendant whose worker has gone. `startTime` is read only for marked processes;
    /// nil: the process has exited meanwhile.
    public static func classify(
        _ candidates: [Candidate], stateDirectory: String, startTime: (Int32) -> UInt64?
    ) -> Found {
        let marker = Array("ORCH_STATE_DIR=\(stateDirectory)".utf8)
        var found = Found()
        for candidate in candidates {
            let hasMarker = candidate.environment.split(separator: 0, omittingEmptySubsequences: true)
                .contains { $0.elementsEqual(marker) }
            guard hasMarker, let startTime = startTime(candidate.pid) else { continue }
            if candidate.sessionID == candidate.pid {
                found.workers.append(WorkerHandle(pid: candidate.pid, startTime: startTime))
            } else {
                found.strays.append(candidate.pid)
            }
        }
        return found
    }
}
