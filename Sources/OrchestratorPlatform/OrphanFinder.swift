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

    public static func processes(stateDirectory: String) -> Found {
        let marker = Array("ORCH_STATE_DIR=\(stateDirectory)".utf8)
        let me = getpid()
        guard let proc = opendir("/proc") else { return Found() }
        defer { closedir(proc) }
        var found = Found()
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), pid != me else { continue }
            guard let environment = FileSystem.readFile(PathBytes("/proc/\(pid)/environ"), limit: 1 << 20) else { continue }
            let hasMarker = environment.split(separator: 0, omittingEmptySubsequences: true).contains { $0.elementsEqual(marker) }
            guard hasMarker, let startTime = ProcessSupervisor.startTime(of: pid) else { continue }
            if getsid(pid) == pid {
                found.workers.append(WorkerHandle(pid: pid, startTime: startTime))
            } else {
                found.strays.append(pid)
            }
        }
        return found
    }
}
