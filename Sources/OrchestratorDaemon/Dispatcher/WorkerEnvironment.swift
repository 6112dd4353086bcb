import OrchestratorPlatform

/// The environment every worker starts from: the daemon's own, as bytes, minus any ORCH_ variables
/// (set per attempt), plus ORCH_STATE_DIR, which lets a restarted daemon find workers it left behind.
enum WorkerEnvironment {
    static func inherited(stateDirectory: String) -> [[UInt8]] {
        let raw = FileSystem.readFile(PathBytes("/proc/self/environ"), limit: 4 << 20) ?? []
        var entries = raw.split(separator: 0, omittingEmptySubsequences: true).map(Array.init)
        entries.removeAll { $0.starts(with: Array("ORCH_".utf8)) }
        entries.append(Array("ORCH_STATE_DIR=\(stateDirectory)".utf8))
        return entries
    }
}
