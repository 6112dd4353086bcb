#if canImport(Glibc)
import Glibc
#endif
import OrchestratorCore
import OrchestratorPlatform

/// Bodies of events fired through the API: `STATE/events/ID`, read by the tasks the event starts (as
/// `ORCH_EVENT_FILE`), deleted with the event's row by the prune sweep (`[retention] jobs`).
///
/// The name is the event's id, so a worker's environment needs no store read; event ids are never reused
/// (the prune sweep keeps the newest row), so a name never points at another event's body.
public enum EventBodies {
    /// At most this much is kept (`POST /api/v1/events/NAME` answers 413 above it).
    public static let maximumSize = 1 << 20

    static func directory(state: PathBytes) -> PathBytes { state.appending(RelativePath("events")) }

    static func path(state: PathBytes, event: Int64) -> PathBytes {
        directory(state: state).appending(RelativePath("\(event)"))
    }

    /// Writes `bytes` durably under a temporary name in the events folder, for `publish` to rename.
    static func stage(state: PathBytes, _ bytes: [UInt8]) throws(SystemError) -> PathBytes {
        let folder = directory(state: state)
        try FileSystem.createDirectories(folder)
        let staged = folder.appending(RelativePath(".incoming-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"))
        try FileSystem.writeFile(staged, bytes, mode: 0o600)
        let fd = staged.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError("open", staged.description) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SystemError("fsync", staged.description) }
        return staged
    }

    /// Gives the staged body its event's name; called inside the transaction that records the event, so the
    /// daemon never sees the event before its body.
    static func publish(_ staged: PathBytes, state: PathBytes, event: Int64) throws(SystemError) {
        let final = path(state: state, event: event)
        let renamed = staged.withCString { from in final.withCString { to in rename(from, to) } }
        guard renamed == 0 else { throw SystemError("rename", staged.description) }
        FileSystem.syncDirectory(directory(state: state))
    }
}
