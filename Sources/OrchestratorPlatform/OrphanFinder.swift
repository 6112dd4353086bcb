#if canImport(Glibc)
import Glibc
#endif

/// Finds worker processes of an earlier daemon by the `ORCH_STATE_DIR` every worker inherits.
///
/// The store records each worker's pid, but only after the spawn; a daemon killed in between would
/// leave a worker nobody knows about. The environment marker closes that window.
public enum OrphanFinder {
    public static func workers(stateDirectory: String) -> [WorkerHandle] {
        let marker = Array("ORCH_STATE_DIR=\(stateDirectory)".utf8)
        let me = getpid()
        guard let proc = opendir("/proc") else { return [] }
        defer { closedir(proc) }
        var found: [WorkerHandle] = []
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int32(name), pid != me else { continue }
            guard let environment = FileSystem.readFile(PathBytes("/proc/\(pid)/environ"), limit: 1 << 20) else { continue }
            let hasMarker = environment.split(separator: 0, omittingEmptySubsequences: true).contains { $0.elementsEqual(marker) }
            // Only a session leader is a worker we started; its group holds the rest of its tree.
            guard hasMarker, getsid(pid) == pid, let startTime = ProcessSupervisor.startTime(of: pid) else { continue }
            found.append(WorkerHandle(pid: pid, startTime: startTime))
        }
        return found
    }
}
