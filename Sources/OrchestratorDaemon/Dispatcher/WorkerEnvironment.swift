import OrchestratorCore
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

    /// What one attempt adds: the placeholders its command is expanded with and its ORCH_ variables. A file job's
    /// {file} is its path in the processing area, an upload's its path in Done; a task has no file, and an event's
    /// body only when `eventBody` (the caller checks that it exists).
    static func forAttempt(
        _ base: [[UInt8]], owner: JobOwner, name: RelativePath, jobID: Int64, attempt: Int, processing: PathBytes,
        done: PathBytes, eventBody: PathBytes?
    ) -> (values: PlaceholderValues, environment: [[UInt8]]) {
        var environment = base
        let values: PlaceholderValues
        switch owner {
        case .handler(let handler), .upload(let handler):
            let file = (owner.isUpload ? done : processing).appending(name)
            values = PlaceholderValues(file: file.bytes, name: name, job: jobID, attempt: attempt)
            environment.append(Array("ORCH_FILE=".utf8) + file.bytes)
            environment.append(Array("ORCH_NAME=".utf8) + name.bytes)
            environment.append(Array("ORCH_HANDLER=\(handler)".utf8))
        case .task(let task):
            values = PlaceholderValues(file: [], name: RelativePath([]), job: jobID, attempt: attempt)
            environment.append(Array("ORCH_TASK=\(task)".utf8))
            if let eventBody { environment.append(Array("ORCH_EVENT_FILE=".utf8) + eventBody.bytes) }
        }
        environment.append(Array("ORCH_JOB_ID=\(jobID)".utf8))
        environment.append(Array("ORCH_ATTEMPT=\(attempt)".utf8))
        return (values, environment)
    }
}
