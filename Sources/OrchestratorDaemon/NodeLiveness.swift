#if canImport(Glibc)
import Glibc
#endif
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// How daemons sharing a store tell each other they are alive, and what is made of their silence.
enum NodeLiveness {
    /// A daemon on a shared store says it is alive this often, even when idle: one commit per interval.
    static let heartbeatMilliseconds: UInt64 = 30_000
    /// Past two missed heartbeats a daemon is presumed dead: its name may be taken, `status` says silent.
    static let silentAfter: Double = 75

    enum Condition: String, Equatable {
        case running
        /// It stopped cleanly.
        case stopped
        /// No heartbeat for `silentAfter` (shared store) or no daemon holds the state dir (SQLite), and no clean
        /// stop: it was killed, or its host or network is down.
        case silent
    }

    /// On SQLite the state dir's lock says whether the daemon runs (it does not beat); on a shared store only the
    /// heartbeat can.
    static func condition(of node: NodeRecord, shared: Bool, stateDirDaemonRuns: Bool) -> Condition {
        if node.stoppedAt != nil { return .stopped }
        if shared { return node.heartbeatAge <= silentAfter ? .running : .silent }
        return stateDirDaemonRuns ? .running : .silent
    }

    /// Why a daemon of `instance` must not start under `node`'s name, or nil: another instance is alive under it.
    /// The same instance restarting (after a crash its row still looks alive) takes its own name back.
    static func nameConflict(_ node: NodeRecord?, instance: String) -> String? {
        guard let node, node.instance != instance, node.stoppedAt == nil, node.heartbeatAge <= silentAfter else {
            return nil
        }
        return "the node name \"\(node.name)\" is in use by the daemon at \(node.instance) (pid \(node.pid), "
            + "heartbeat \(Reports.formatSeconds(max(0, node.heartbeatAge))) ago); give each daemon its own [node] name"
    }

    /// On SQLite, the daemon this state dir's row names, if it still runs although this start got the state dir's lock:
    /// its lock file was removed (by hand, by a cleaner of old files) since it started. Its pid, when that process is
    /// alive, did not stop cleanly, and has this state dir's database open: a pid reused since (after a reboot, by
    /// another instance's daemon or anything else) does not count.
    static func liveTwin(_ node: NodeRecord, instance: String, database: PathBytes, pid own: Int32 = getpid()) -> Int32? {
        let pid = node.registration.pid
        guard node.instance == instance, node.stoppedAt == nil, pid > 0, pid != own, kill(pid, 0) == 0,
            let database = FileSystem.realPath(database)
        else { return nil }
        let descriptors = PathBytes("/proc/\(pid)/fd")
        for name in DirectoryListing.files(of: descriptors).prefix(65_536) {
            if FileSystem.realPath(descriptors.appending(RelativePath(name))) == database { return pid }
        }
        return nil
    }

    /// Daemons that run with another config than the others, as `status` warns of them; nil when they agree.
    static func configDisagreement(_ nodes: [NodeRecord]) -> String? {
        configDisagreement(hashes: nodes.map { (name: $0.name, hash: $0.configHash) })
    }

    static func configDisagreement(hashes nodes: [(name: String, hash: String)]) -> String? {
        guard Set(nodes.map(\.hash)).count > 1 else { return nil }
        let listed = nodes.map { "\($0.name) \(String($0.hash.prefix(12)))" }.joined(separator: ", ")
        return "the running daemons' configs differ (\(listed)): tasks and handlers may run differently depending on which daemon claims them"
    }

    /// Refuses (69) a start under a name another live daemon of the store has.
    ///
    /// On a shared store the name is claimed in one statement (`claimNodeName`): of two daemons starting under one
    /// name at the same instant exactly one runs. On SQLite it is only read: the state dir's lock already keeps a
    /// second daemon of the same instance out, and a full disk must not stop the start (the dispatcher records the
    /// registration with its first commit).
    static func checkName(_ store: any Store, _ config: Config) throws(CommandError) {
        if config.store.url != nil {
            let registration = registration(config, pid: getpid())
            do {
                if try store.write({ try $0.claimNodeName(registration, silentAfter: silentAfter) }) { return }
            } catch {
                throw CommandError(.failure, "error: cannot claim the node name in \(StoreFactory.describe(config)): \(error)")
            }
        }
        let existing: NodeRecord?
        do {
            existing = try store.read { try $0.node(named: config.node.name) }
        } catch {
            throw CommandError(.failure, "error: cannot read the daemons of \(StoreFactory.describe(config)): \(error)")
        }
        if let conflict = nameConflict(existing, instance: instance(config)) { throw CommandError(.unavailable, "error: \(conflict)") }
        if config.store.url == nil,
            let twin = existing.flatMap({ liveTwin($0, instance: instance(config), database: Dispatcher.databasePath(PathBytes(config.paths.state))) })
        {
            throw CommandError(
                .unavailable,
                "error: another orchestrator (pid \(twin)) is already watching with state \(config.paths.state), though its "
                    + "lock file was removed; stop it first (its watchdog sweep puts the lock file back)")
        }
        // The claim lost to a daemon that has stopped since: it was alive a moment ago, so this start still yields.
        if config.store.url != nil {
            throw CommandError(
                .unavailable,
                "error: the node name \"\(config.node.name)\" was in use by another daemon as this one started; "
                    + "give each daemon its own [node] name")
        }
    }

    static let foldersNote = "shared.folders"

    /// The daemons of one store share one Inbox, Done, Failed and processing area: a job claimed by any of them
    /// finds its file in the processing area, and a name is live once across them. A daemon whose folders differ
    /// from those of the store's live daemons is refused (78, at `[paths]`); with none alive, its folders become
    /// the store's.
    static func checkFolders(_ store: any Store, _ config: Config) throws(CommandError) {
        let mine = folders(config)
        let instance = instance(config)
        do {
            // Decided under the note's lock, after this daemon's registration (`checkName`): of two daemons on other
            // folders starting at once, the second to get the lock sees the first's folders and the first alive.
            let refusedBy = try store.write { transaction -> String? in
                try transaction.lockDaemonNote(foldersNote)
                let (noted, nodes) = (try transaction.reader.daemonNote(foldersNote), try transaction.reader.nodes())
                if let refused = refusal(noted: noted, nodes: nodes, mine: mine, instance: instance) { return refused }
                if noted != mine { try transaction.setDaemonNote(foldersNote, mine, at: Dispatcher.wallClock()) }
                return nil
            }
            if let noted = refusedBy {
                // The name this start claimed is free again for a start with the right folders.
                _ = try? store.write { try $0.markNodeStopped(node: config.node.name, instance: instance) }
                throw foldersDiffer(config, noted: noted, mine: mine)
            }
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.failure, "error: cannot read the daemons of \(StoreFactory.describe(config)): \(error)")
        }
    }

    /// The store's folders, when they are not `mine` and another daemon of the store is alive on them.
    private static func refusal(noted: String?, nodes: [NodeRecord], mine: String, instance: String) -> String? {
        guard let noted, noted != mine else { return nil }
        let othersAlive = nodes.contains {
            $0.instance != instance && condition(of: $0, shared: true, stateDirDaemonRuns: false) == .running
        }
        return othersAlive ? noted : nil
    }

    /// `checkFolders`' refusal, read before the daemon makes its folders and lock files, so that a daemon refused for
    /// its folders leaves nothing behind. Only a read: the decision under the lock is still `checkFolders`', and a
    /// store that cannot be reached yet is left to the start, which waits for it.
    static func refuseOtherFoldersEarly(_ config: Config) throws(CommandError) {
        guard config.store.url != nil, let store = try? StoreFactory.open(config),
              let (noted, nodes) = try? store.read({ (try $0.daemonNote(foldersNote), try $0.nodes()) })
        else { return }
        // A name another live daemon holds is refused first, as at the start proper (69, by `checkName`).
        let instance = instance(config)
        if nameConflict(nodes.first { $0.name == config.node.name }, instance: instance) != nil { return }
        let mine = folders(config)
        if let noted = refusal(noted: noted, nodes: nodes, mine: mine, instance: instance) {
            throw foldersDiffer(config, noted: noted, mine: mine)
        }
    }

    /// The folders by their real paths: one daemon may reach the shared folders through a symlink the others do
    /// not use (`/srv/inbox`, and `/data/inbox` that links to it, are one Inbox).
    static func foldersDiffer(_ config: Config, noted: String, mine: String) -> CommandError {
        CommandError(
            .config,
            "\(config.file):\(config.line(ofKey: "paths")): error: [paths]: the daemons of this store use \(noted); "
                + "this daemon's are \(mine): daemons of one store share one Inbox, Done, Failed and processing area")
    }

    /// For a one-shot command that moves the store's files itself: its config's folders must be the store's.
    static func requireStoresFolders(_ store: any Store, _ config: Config) throws(CommandError) {
        let noted: String?
        do {
            noted = try store.read { try $0.daemonNote(foldersNote) }
        } catch {
            throw CommandError(.failure, "error: cannot read the daemons of \(StoreFactory.describe(config)): \(error)")
        }
        let mine = folders(config)
        if let noted, noted != mine { throw foldersDiffer(config, noted: noted, mine: mine) }
    }

    static func folders(_ config: Config) -> String {
        let paths = config.paths
        func real(_ path: String) -> String { FolderLocation(resolving: path).realPath }
        return "inbox \(real(paths.inbox)), done \(real(paths.done)), failed \(real(paths.failed)), processing \(real(paths.processing))"
    }

    /// Where this daemon runs from: its host and state dir.
    static func instance(_ config: Config) -> String { NodeSettings.hostName() + ":" + config.paths.state }

    static func registration(_ config: Config, pid: Int32) -> NodeRegistration {
        NodeRegistration(
            name: config.node.name, instance: instance(config), pid: pid, version: OrchestratorVersion.current,
            configHash: config.sharedHash, roles: config.node.roleList)
    }
}
