#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorPlatform

/// One Inbox, one owner (SPEC §5 guarantee 18): whoever runs a dispatcher (the daemon, or a one-shot
/// `sweep` or `task run`) holds a lock inside the processing area and one inside Inbox, besides its state
/// dir's lock.
///
/// The state lock alone cannot see a second config with another state dir on the same folders; its
/// dispatcher would claim from the same Inbox and, at start, adopt the first one's claimed files as its
/// own. The processing area's lock catches a shared processing area, Inbox's lock a shared Inbox with
/// separate processing areas. Both are hidden files, which are never input and never claims.
enum InboxOwner {
    static let lockName = ".orchestrator.lock"

    /// Inbox's first, then the processing area's: every holder takes them in this order.
    static func lockPaths(_ config: Config) -> [String] {
        [config.paths.inbox + "/" + lockName, config.paths.processing + "/" + lockName]
    }

    /// Who holds one of the locks: its pid, what it runs (`watch`, `sweep`, `task run`) and its state dir.
    struct Holder: Error {
        var lock: String
        var pid: Int32?
        var role: String
        var state: String
        /// Daemons of a shared store hold it together.
        var shared = false

        var isDaemon: Bool { role == StateOwner.daemonRole }

        func describe(_ config: Config) -> String {
            if shared {
                let one = pid.map { " (one of them pid \($0)\(state.isEmpty ? "" : ", state dir \(state)"))" } ?? ""
                return "the orchestrator daemons of a shared store\(one) own Inbox \(config.paths.inbox) (lock \(lock)); "
                    + "give this command the config of one of them, whose daemon then does the work, or stop them first"
            }
            let who = isDaemon ? "another orchestrator daemon" : "a one-shot orchestrator \(role.isEmpty ? "run" : role)"
            let stateDir = state.isEmpty ? "" : ", state dir \(state)"
            return "\(who) (pid \(pid.map(String.init) ?? "?")\(stateDir)) already owns Inbox \(config.paths.inbox) (lock \(lock)); one Inbox has one owner"
        }
    }

    /// Takes every lock, or none: the holder of the first one that is taken. `shared`: the daemons of one shared
    /// store own an Inbox together (the store's claims keep each file to one of them); they hold the locks shared,
    /// which keeps out a daemon on SQLite and one-shot runs, as those keep them out. Daemons of another shared
    /// store are kept out by `claimShared`.
    static func acquire(_ config: Config, role: String, shared: Bool = false) throws(CommandError) -> Result<[InstanceLock], Holder> {
        var locks: [InstanceLock] = []
        for path in lockPaths(config) {
            do {
                switch try InstanceLock.acquire(path, role: "\(role) \(config.paths.state)", shared: shared) {
                case .acquired(let lock): locks.append(lock)
                case .heldBy(let pid): return .failure(holder(path, pid: pid))
                }
            } catch {
                throw CommandError(.failure, "error: \(error)")
            }
        }
        return .success(locks)
    }

    /// Who keeps a daemon of this config out of Inbox, looked at before anything is made for it, so that a refused
    /// start leaves no state folder behind; nil when nobody does, or when the holder is this state dir's own daemon
    /// (its state lock then says so). `shared`: the daemons of a shared store hold it together.
    static func holderBeforeStart(_ config: Config, shared: Bool) -> Holder? {
        for path in lockPaths(config) {
            guard let pid = InstanceLock.holder(path) else { continue }
            if shared, InstanceLock.isHeldShared(path) == true { continue }
            let found = holder(path, pid: pid)
            return found.state == config.paths.state ? nil : found
        }
        return nil
    }

    static let storeNoteName = ".orchestrator.store"

    /// After taking the locks shared: the Inbox is this store's daemons'. While other daemons hold it, the store they
    /// noted must be this one; the first daemon notes its store.
    static func claimShared(_ config: Config, othersHoldIt: Bool) throws(CommandError) {
        let path = config.paths.inbox + "/" + storeNoteName
        let mine = StoreSettings.identity(config.store.shown)
        if othersHoldIt, let noted = try? String(contentsOfFile: path, encoding: .utf8),
            case let theirs = noted.trimmingCharacters(in: .whitespacesAndNewlines), !theirs.isEmpty, theirs != mine
        {
            throw CommandError(
                .unavailable,
                "error: orchestrator daemons of another store (\(theirs)) own Inbox \(config.paths.inbox), and this config's store is \(mine); daemons share an Inbox only through one store")
        }
        try? Data((mine + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// For a one-shot run that already holds its state lock: waits while another one-shot run (of another
    /// state dir) owns the Inbox, as it waits for one of its own state dir; a daemon owning it is final (69),
    /// since requests cannot be handed to a daemon that keeps another store.
    static func acquireForOneShot(_ config: Config, role: String) throws(CommandError) -> [InstanceLock] {
        var said = false
        while true {
            switch try acquire(config, role: role) {
            case .success(let locks): return locks
            case .failure(let holder) where holder.isDaemon:
                throw CommandError(.unavailable, "error: \(holder.describe(config))")
            case .failure(let holder):
                // Run from a worker of that very run (its command calls orchestrator with another config):
                // waiting would be waiting for itself.
                if !holder.state.isEmpty, ProcessInfo.processInfo.environment["ORCH_STATE_DIR"] == holder.state {
                    throw CommandError(
                        .unavailable,
                        "error: \(holder.describe(config)), and this command runs inside one of its workers; it cannot wait for itself")
                }
                if !said {
                    FileHandle.standardError.write(Data(
                        "waiting for `orchestrator \(holder.role)` (pid \(holder.pid.map(String.init) ?? "?"), state folder \(holder.state)) to finish: it has the Inbox to itself while it runs\n".utf8))
                    said = true
                }
                usleep(100_000)
            }
        }
    }

    private static func holder(_ path: String, pid: Int32?) -> Holder {
        // Held shared: daemons of a shared store (a one-shot run and a daemon on SQLite hold it exclusively). The
        // file names the one that took it last, which need not be the holder the kernel reports.
        if InstanceLock.isHeldShared(path) == true {
            let written = InstanceLock.writtenRole(path)
            let state = written.map { split($0.role).state } ?? ""
            let alive = written.map { kill($0.pid, 0) == 0 } ?? false
            return Holder(lock: path, pid: alive ? written?.pid : pid, role: StateOwner.daemonRole, state: alive ? state : "", shared: true)
        }
        // A holder that has just taken the lock may not have written its role yet: look again shortly.
        for _ in 0..<50 {
            guard InstanceLock.holder(path) != nil else { break }
            if let written = InstanceLock.holderRole(path) {
                let (role, state) = split(written)
                return Holder(lock: path, pid: InstanceLock.holder(path) ?? pid, role: role, state: state)
            }
            usleep(10_000)
        }
        return Holder(lock: path, pid: pid, role: "", state: "")
    }

    /// `watch /srv/x/.orchestrator` -> ("watch", "/srv/x/.orchestrator"); `task run /s` -> ("task run", "/s").
    static func split(_ written: String) -> (role: String, state: String) {
        guard let slash = written.firstIndex(of: "/") else { return (written, "") }
        let role = written[..<slash].trimmingCharacters(in: .whitespaces)
        return (role, String(written[slash...]))
    }
}
