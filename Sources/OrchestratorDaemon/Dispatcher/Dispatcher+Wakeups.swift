import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// How an idle daemon on a shared store hears of work without polling: another daemon's commit that queues work
/// announces it (PostgreSQL NOTIFY on a session of the store's own, watched by the event loop), and between
/// announcements a timer waits for the next time something becomes claimable or rescuable (a retry's time, a lease
/// that runs out). Correct without announcements: the timer alone finds a dead daemon's work and due retries.
extension Dispatcher {
    func startWakeups() {
        guard claimsJobs else { return }
        do {
            wakeups = try store.openWakeups()
        } catch {
            logger.warning("cannot listen for other daemons' work; trying again shortly", metadata: ["error": "\(error)"])
            _ = schedule(.wakeupRetry, after: Self.storeHoldRetryDelay)
        }
        watchWakeups(wakeups?.descriptor)
        // Work queued before the listening began was announced to no one.
        foreignWorkPending = true
    }

    private func watchWakeups(_ descriptor: Int32?) {
        if let watch = wakeupWatch {
            eventLoop?.removeKeepingOpen(watch)
            wakeupWatch = nil
        }
        guard let descriptor, descriptor >= 0, let eventLoop else { return }
        do {
            wakeupWatch = try eventLoop.add(descriptor) { [weak self] in self?.wakeupsReadable() }
        } catch {
            logger.warning("cannot watch for other daemons' work; relying on the timer", metadata: ["error": "\(error)"])
        }
    }

    func wakeupsReadable() {
        guard phase != .stopped else { return }
        guard let wakeups else {
            startWakeups()
            return
        }
        do {
            let batch = try wakeups.drain()
            if batch.renewed { watchWakeups(batch.descriptor) }
            // A command given another daemon's config (a pause, a disabled task, an event, a request) is read here too.
            if batch.mustReadRequests { post(.wake) }
            if batch.mustLook {
                foreignWorkPending = true
                scheduleCycle()
            }
        } catch {
            // The server is away: so is everyone's work. Listen again once it is back.
            watchWakeups(nil)
            _ = schedule(.wakeupRetry, after: Self.storeHoldRetryDelay)
        }
    }

    /// After a look that found nothing to claim: sleep until the next job becomes due or a lease runs out (and
    /// its rescue is due), at least `minimumLookInterval` from now so that a job this daemon cannot claim never
    /// makes it spin. Nothing queued or running anywhere: no timer at all.
    func armClaimableTimer() {
        guard claimsJobs, !phase.isStopping, !phase.isPausedForDisk else { return }
        if let timer = claimableTimer {
            wheel.cancel(timer)
            claimableTimer = nil
        }
        guard let next = readNextClaimable() else { return }
        sleepUntil(next)
    }

    private func sleepUntil(_ next: ClaimableTime) {
        claimableTimer = schedule(.claimableDue, after: max(Self.minimumLookInterval, UInt64(next.delay * 1000) + Self.rescueMargin))
    }

    /// nil: nothing queued or running anywhere, or the store cannot be read (then the next announcement or
    /// renewal looks again).
    private func readNextClaimable() -> ClaimableTime? {
        do {
            let kinds = runsTaskRuns ? Self.foreignKinds + [.task] : Self.foreignKinds
            return try store.read { try $0.nextClaimable(kinds: kinds) }
        } catch {
            logger.warning("cannot read when work is next due; the next announcement or lease renewal looks again", metadata: ["error": "\(error)"])
            return nil
        }
    }

    func claimableDue() {
        claimableTimer = nil
        guard claimsJobs, !phase.isStopping else { return }
        // Most wake-ups find the lease they were set for renewed by its live daemon: then nothing is written, and
        // the timer waits for the new time.
        guard let next = readNextClaimable() else { return }
        guard next.delay <= 0 else {
            sleepUntil(next)
            return
        }
        let wallNow = Self.wallClock()
        if let rescued = commit("take back expired leases", { [lease = config.store.leaseSeconds] in try $0.rescueExpiredLeases(at: wallNow, graceAfterRestart: lease) }), !rescued.isEmpty {
            logger.warning("took back jobs whose daemon's lease ran out", metadata: ["jobs": "\(rescued.count)"])
        }
        // The cycle that follows claims; when that finds nothing, it arms this timer again.
        foreignWorkPending = true
    }

    /// Files and uploads, claimed by `claimNext`; task runs are claimed apart (`claimNextTaskRun`), since one task's
    /// runs never run at once (see `claimForeignWork`).
    static let foreignKinds: [JobKind] = [.file, .upload]
    static let minimumLookInterval: UInt64 = 100
    /// A lease is rescued once it has run out by the store's clock: a moment after, not a moment before.
    static let rescueMargin: UInt64 = 50
}
