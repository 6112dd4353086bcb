#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorPlatform

/// Who holds the state dir's lock: the daemon, a one-shot run (`sweep`, `task run`, the watchdog
/// check), or nobody. Only the holder runs jobs; only a daemon reads requests.
enum StateOwner: Equatable {
    case nobody
    case daemon(pid: Int32)
    case oneShot(pid: Int32, role: String)

    static let daemonRole = "watch"

    static func lockPath(_ config: Config) -> String { config.paths.state + "/daemon.lock" }

    /// Set by `watch` once it holds the lock, for the commands the HTTP API runs inside the daemon: a process
    /// cannot see its own POSIX record lock (F_GETLK reports nobody), and taking it again would succeed and,
    /// once closed, release the daemon's own.
    static let thisProcessIsTheDaemon = LockedBox(false)

    static func current(_ config: Config) -> StateOwner {
        if thisProcessIsTheDaemon.value { return .daemon(pid: getpid()) }
        let path = lockPath(config)
        // A holder that has just taken the lock may not have written its pid yet: look again shortly.
        for _ in 0..<50 {
            guard let pid = InstanceLock.holder(path) else { return .nobody }
            if let role = InstanceLock.holderRole(path) {
                // A lock written without a role comes from a daemon of an earlier version.
                return role == daemonRole || role.isEmpty ? .daemon(pid: pid) : .oneShot(pid: pid, role: role)
            }
            usleep(10_000)
        }
        return InstanceLock.holder(path).map { .daemon(pid: $0) } ?? .nobody
    }

    var daemonPID: Int32? {
        if case .daemon(let pid) = self { return pid }
        return nil
    }

    /// Takes the lock for a one-shot run. While another one-shot run holds it, waits for it (saying so once
    /// on stderr); returns the daemon's pid instead if a daemon holds it.
    static func acquireForOneShot(_ config: Config, role: String) throws(CommandError) -> Result<InstanceLock, DaemonRunning> {
        if thisProcessIsTheDaemon.value { return .failure(DaemonRunning(pid: getpid())) }
        // A config whose daemon has never run (a new daemon of a shared store, a hand-written config) has no state
        // folder yet. Made here as `watch` makes it; if that fails, taking the lock below says why.
        try? FileSystem.createDirectories(PathBytes(config.paths.state))
        var said = false
        while true {
            let outcome: InstanceLock.Outcome
            do {
                outcome = try InstanceLock.acquire(lockPath(config), role: role)
            } catch {
                throw CommandError(.failure, "error: \(error)")
            }
            if case .acquired(let lock) = outcome { return .success(lock) }
            switch current(config) {
            case .daemon(let pid): return .failure(DaemonRunning(pid: pid))
            case .oneShot(let pid, let other):
                // Run from a worker of that very one-shot (its command calls orchestrator): waiting would be
                // waiting for itself.
                if ProcessInfo.processInfo.environment["ORCH_STATE_DIR"] == config.paths.state {
                    throw CommandError(
                        .unavailable,
                        "error: a one-shot \(other) (pid \(pid)) holds \(config.paths.state) and this command runs inside one of its workers; it cannot wait for itself")
                }
                if !said {
                    FileHandle.standardError.write(Data(
                        "waiting for `orchestrator \(other)` (pid \(pid)) to finish: it has the state folder \(config.paths.state) to itself while it runs\n".utf8))
                    said = true
                }
            case .nobody: break
            }
            usleep(100_000)
        }
    }

    struct DaemonRunning: Error {
        let pid: Int32
    }
}
