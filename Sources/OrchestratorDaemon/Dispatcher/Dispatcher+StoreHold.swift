import OrchestratorPlatform
import OrchestratorStore

/// A PostgreSQL store is this daemon's alone through a session lock on the server. When the server ends that
/// session (a restart, `pg_terminate_backend`), its socket turns readable and the lock is taken again at once, so
/// that no second daemon can take the store in between and recover this one's running jobs as its own.
extension Dispatcher {
    /// Watches `descriptor` in the event loop, instead of whatever was watched before; nil watches nothing.
    func watchStoreHold(_ descriptor: Int32?) {
        if let watch = storeHoldWatch {
            // The session's socket stays open (or is closed by a reconnect, which also takes it out: then this
            // finds nothing to remove).
            eventLoop?.removeKeepingOpen(watch)
            storeHoldWatch = nil
        }
        guard let descriptor, let eventLoop else { return }
        do {
            storeHoldWatch = try eventLoop.add(descriptor) { [weak self] in self?.storeHoldChanged() }
        } catch {
            logger.warning("cannot watch the session that holds the store; a lost lock is noticed at the next write", metadata: ["error": "\(error)"])
        }
    }

    func storeHoldChanged() {
        guard phase != .stopped else { return }
        // Out of the event loop first: the session's socket is closed and replaced below, and its number reused.
        watchStoreHold(nil)
        do {
            let hold = try store.checkHold()
            if hold?.renewed == true { logger.info("the session holding the store ended; the store is held again") }
            storeHoldAway = false
            watchStoreHold(hold?.descriptor)
        } catch where StoreFailure.classify(error) == .unreachable {
            // Nobody can take the store while its server is away: try again in a moment. Said once per outage.
            logger.log(
                level: storeHoldAway ? .debug : .warning,
                "the session holding the store ended and its server is away; taking it again when it is back", metadata: ["error": "\(error)"])
            storeHoldAway = true
            _ = schedule(.storeHoldRetry, after: Self.storeHoldRetryDelay)
        } catch {
            logger.critical("the store is no longer this daemon's; stopping", metadata: ["error": "\(error)"])
            stop(exitCode: 1)
        }
    }

    static let storeHoldRetryDelay: UInt64 = 1000
}
