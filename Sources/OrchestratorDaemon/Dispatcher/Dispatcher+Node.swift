#if canImport(Glibc)
import Glibc
#endif
import OrchestratorConfig
import OrchestratorStore

/// The daemon's row among the store's daemons: registered at start and at each reload (its config hash), a
/// heartbeat every 30 s on a shared store, marked stopped at a clean stop.
extension Dispatcher {
    var sharesStore: Bool { config.store.url != nil }

    /// The node note that says why the daemon's queue waits (its admission limits).
    static let admissionNote = "admission"

    /// What this daemon does among those of its store (`[node] roles`); on SQLite, everything.
    func runs(_ role: NodeRole) -> Bool { config.node.roles.contains(role) }

    func registerNode() {
        let registration = NodeLiveness.registration(config, pid: getpid())
        if sharesStore {
            // At a reload too, only while the name is still this daemon's: one silent long enough for another daemon
            // to take the name must not take it back. Refused, the heartbeat finds the name gone and stops this
            // daemon; at a reload it is brought forward, so that the daemon stops then, not up to 30 s later.
            record { _ = try $0.claimNodeName(registration, silentAfter: NodeLiveness.silentAfter) }
        } else {
            record { try $0.registerNode(registration) }
        }
        guard sharesStore else { return }
        armHeartbeat(after: nodeHeartbeatTimer == nil ? NodeLiveness.heartbeatMilliseconds : 0)
        reviewConfigAgreement()
    }

    /// Says in the log, once each time it changes, that the running daemons of the store have different configs
    /// (`status` says it too): a file that one daemon's handlers would take can fail as "no handler" on another.
    func reviewConfigAgreement() {
        guard sharesStore, let nodes = try? store.read({ try $0.nodes() }) else { return }
        // This daemon's own hash as it runs now (its registration may still wait for a commit).
        let others = nodes.filter {
            $0.name != config.node.name && NodeLiveness.condition(of: $0, shared: true, stateDirDaemonRuns: false) == .running
        }
        let disagreement = NodeLiveness.configDisagreement(
            hashes: others.map { (name: $0.name, hash: $0.configHash) } + [(name: config.node.name, hash: config.sharedHash)])
        guard disagreement != configDisagreementLogged else { return }
        if let disagreement {
            logger.warning("\(disagreement); give every daemon of the store the same handlers and tasks")
        } else {
            logger.info("the running daemons' configs agree again")
        }
        configDisagreementLogged = disagreement
    }

    func nodeHeartbeatDue() {
        nodeHeartbeatTimer = nil
        guard !phase.isStopping else { return }
        // Paused (a full disk, the server away): the retry of the pending writes is what resumes; other daemons see
        // this one silent meanwhile, as it is.
        guard !storeUnavailable else {
            armHeartbeat(after: NodeLiveness.heartbeatMilliseconds)
            return
        }
        let (name, instance) = (config.node.name, NodeLiveness.instance(config))
        // Its own commit: on an idle daemon the heartbeat is the only write, and it must not wait for another.
        guard let ours = commit("record the heartbeat", { try $0.heartbeat(node: name, instance: instance) }) else {
            armHeartbeat(after: NodeLiveness.heartbeatMilliseconds)
            return
        }
        guard ours else {
            // Another daemon took the name, having seen this one silent (stopped past two heartbeats): what this one
            // runs may be its now, so this one ends its workers and stops.
            logger.critical("another daemon registered the node name \"\(name)\"; ending workers and stopping")
            stopExitCode = 1
            beginShutdown(signal: SIGTERM)
            endRunningWorkers(because: "the node name is another daemon's")
            return
        }
        armHeartbeat(after: NodeLiveness.heartbeatMilliseconds)
        reviewConfigAgreement()
    }

    /// The one heartbeat timer, replacing any armed: a beat brought forward (`commit`) must not leave two chains.
    func armHeartbeat(after milliseconds: UInt64) {
        if let timer = nodeHeartbeatTimer { wheel.cancel(timer) }
        nodeHeartbeatTimer = schedule(.nodeHeartbeat, after: milliseconds)
    }

    func markNodeStopped() {
        let (name, instance) = (config.node.name, NodeLiveness.instance(config))
        record { try $0.markNodeStopped(node: name, instance: instance) }
    }
}
