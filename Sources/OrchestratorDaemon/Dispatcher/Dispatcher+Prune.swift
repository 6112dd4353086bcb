import Dispatch
import OrchestratorPlatform

/// The prune sweep under `watch`: on its timer and once at start, off the dispatcher's queue.
extension Dispatcher {
    func pruneSweepDue() {
        armSweep(.pruneSweep)
        let state = config.paths.state
        guard PruneGate.enter(state) else {
            logger.info("prune sweep: the previous one is still running; skipped")
            metrics?.sweepFinished("prune", result: "skipped")
            return
        }
        let pruner = Pruner(store: store, logs: layout.logs, retention: config.retention, node: config.node.name)
        let logger = logger
        let store = store
        let metrics = metrics
        let node = config.node.name
        DispatchQueue.global(qos: .utility).async {
            defer { PruneGate.leave(state) }
            let summary: String
            var result = "ok"
            // The same lock as a one-shot `sweep --mode prune`, so that the two never prune at once.
            switch try? InstanceLock.acquire(state + "/sweep-prune.lock", role: "daemon") {
            case .acquired(let lock):
                do {
                    let outcome = try pruner.run(now: Self.wallClock())
                    summary = outcome.summary
                    logger.info("prune sweep: \(summary)")
                } catch {
                    summary = "failed: \(error)"
                    result = "failed"
                    logger.error("prune sweep failed", metadata: ["error": "\(error)"])
                }
                withExtendedLifetime(lock) {}
            case .heldBy(let pid):
                summary = "skipped: a one-shot prune is running\(pid.map { " (pid \($0))" } ?? "")"
                result = "skipped"
            case nil:
                summary = "skipped: cannot open its lock file"
                result = "failed"
            }
            metrics?.sweepFinished("prune", result: result)
            // Written here rather than through the dispatcher's cycle: nothing in it waits for this.
            do {
                try store.write { try $0.setNodeNote(node: node, "sweep.prune", summary, at: Self.wallClock()) }
            } catch {
                logger.warning("cannot record the prune sweep's summary for status", metadata: ["error": "\(error)"])
            }
        }
    }
}
