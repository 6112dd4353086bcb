#if canImport(Glibc)
import Glibc
#endif
import OrchestratorCore
import OrchestratorPlatform

/// Guarantee 15, a full disk pauses, never crashes: nothing new is claimed or started, running workers go
/// on, the failed writes stay pending and are tried again with backoff, and work resumes when they go
/// through.
extension Dispatcher {
    static func statusBoardPath(_ state: PathBytes) -> PathBytes { state.appending(RelativePath("status.board")) }
    /// Stands in for the board when even its block cannot be had (`StoreOpening`): an empty file means
    /// "paused: no space on the state dir".
    static func noSpaceMarkerPath(_ state: PathBytes) -> PathBytes { state.appending(RelativePath("status.no-space")) }
    static func databasePath(_ state: PathBytes) -> PathBytes { state.appending(RelativePath("orchestrator.sqlite")) }
    static func databaseLogPath(_ state: PathBytes) -> PathBytes { state.appending(RelativePath("orchestrator.sqlite-wal")) }

    static let firstDiskRetry: UInt64 = 1000
    static let maxDiskRetry: UInt64 = 30_000

    /// `movesFailed`: a move into Done/ or Failed/ ran out of space (their disk may not be the store's), so
    /// the pause ends only when a move goes through again, not when the store can be written.
    /// `why`: what `status` says after "paused:" (no space on PATH, unless given).
    func pauseForDisk(path: PathBytes, reason: String, movesFailed: Bool = false, why: String? = nil) {
        let pausing = why.map { PauseReason(text: $0, forSpace: false) }
            ?? PauseReason.writeFailed(on: path.description, freeBytes: FileSystem.space(path)?.free)
        let cause = pausing.text
        // A one-shot run does not wait: it ends its workers and stops with exit 1; what it could not record is
        // recovered next time.
        guard batch == nil else {
            guard !phase.isStopping else { return }
            logger.error("\(cause); stopping this one-shot run", metadata: ["error": "\(reason)"])
            stopExitCode = 1
            beginShutdown(signal: SIGTERM)
            endRunningWorkers(because: "this one-shot run cannot record its work")
            return
        }
        // A stopping daemon does not wait for space: what is not recorded is recovered at the next start.
        guard !phase.isStopping else {
            logger.error("cannot record while stopping; the next start recovers it", metadata: ["error": "\(reason)"])
            return
        }
        if movesFailed { pausedByMoves = true }
        guard !phase.isPausedForDisk else {
            // A retry that failed again: the next one after a longer wait.
            armDiskRetry(doubling: true)
            return
        }
        phase = .pausedForDisk(path: path.description)
        metrics?.diskPauseBegan()
        scan = nil
        diskRetryDelay = Self.firstDiskRetry
        armDiskRetry(doubling: false)
        let text = "paused: \(cause)"
        pauseReason = pausing
        logger.critical("\(text); nothing new starts until \(pauseReason.endsWhen)", metadata: ["error": "\(reason)"])
        postBoard(headline: text)
        notifier.notify("STATUS=\(text)")
        // Listeners run when the event can be recorded: now if only another disk is full, else on resume.
        criticalPending = !emit("error.critical")
    }

    private func armDiskRetry(doubling: Bool) {
        guard diskRetryTimer == nil else { return }
        if doubling { diskRetryDelay = min(Self.maxDiskRetry, diskRetryDelay * 2) }
        diskRetryTimer = schedule(.diskRetry, after: diskRetryDelay)
    }

    func diskRetryDue() {
        diskRetryTimer = nil
        guard case .pausedForDisk(let path) = phase else { return }
        // The store's own log may hold what space there is, and be what keeps its writes from going through.
        if !pausedByMoves { store.reclaimLogSpace() }
        // Claims first: their commit carries the other pending writes along.
        let committed = newClaims.isEmpty ? flushWritesWhilePaused() : commitClaimsWhilePaused()
        guard committed else {
            armDiskRetry(doubling: true)
            logger.debug(
                pauseReason.forSpace ? "still no space" : "still paused: \(pauseReason.text)",
                metadata: ["path": "\(path)", "retry_in": "\(diskRetryDelay)ms"])
            return
        }
        if pausedByMoves {
            // The stuck moves try again; their outcome (filesMoved) resumes or pauses on.
            let retry = stuckMoves.filter { !$0.value.retrying }
            for jobID in retry.keys { stuckMoves[jobID]?.retrying = true }
            // Files that finished meanwhile go too: their end states were just committed.
            let toMove = endsThatHeld(finishedJobs + retry.values.map(\.job))
            finishedJobs.removeAll()
            for jobID in retry.keys where !toMove.contains(where: { $0.jobID == jobID }) { stuckMoves[jobID] = nil }
            if !toMove.isEmpty {
                sendToMover(toMove)
            } else if movesInFlight == 0 {
                resumeFromDisk()
            }
            return
        }
        resumeFromDisk()
    }

    /// `watch` waited for space before it could open the store: the pause a full disk makes while running,
    /// only without a store to record its `error.critical` in until now (if the disk is full again, it fires
    /// when space returns).
    func startedAfterWaitingForSpace() {
        criticalPending = !emit("error.critical")
    }

    /// Moves came back while paused by moves: none ran out of space, so space is back.
    func movesCameBackWhilePaused() {
        guard phase.isPausedForDisk, pausedByMoves else { return }
        let stillShort = stuckMoves.values.contains { $0.outOfSpace }
        if stillShort {
            armDiskRetry(doubling: true)
        } else if movesInFlight == 0 {
            resumeFromDisk()
        }
    }

    private func resumeFromDisk() {
        guard case .pausedForDisk(let path) = phase else { return }
        phase = .running
        pausedByMoves = false
        if let timer = diskRetryTimer { wheel.cancel(timer) }
        diskRetryTimer = nil
        postBoard(headline: "")
        notifier.notify("STATUS=resumed")
        logger.info(pauseReason.forSpace ? "space is back; resuming" : "the store can be written again; resuming", metadata: ["path": "\(path)"])
        if criticalPending { criticalPending = !emit("error.critical") }
        if !uploadsToRecord.isEmpty {
            let moved = uploadsToRecord
            uploadsToRecord = []
            queueUploads(moved)
        }
        // Schedules that could not start while the disk was full start now (their missed slot, if any, runs once).
        let nowMs = Self.wallMilliseconds()
        for task in config.tasks where taskRuntimes[task.name].map({ $0.timer == nil && $0.schedule?.isReboot == false }) == true {
            startSchedule(task, catchUp: task.catchUp == .once, now: nowMs)
        }
        let due = dueWhilePaused
        dueWhilePaused = []
        for run in due {
            guard let task = run.task else { continue }
            self.due(task, cause: run.cause, slot: run.slot, eventID: run.eventID, eventName: run.eventName)
        }
        retryStuckMoves()
        takeRecordedEvents()
        startScan(reason: "resumed after a full disk")
        if sharesStore {
            // `status` and the other daemons saw this one silent, and its last health note is the outage's: both are
            // told now, not at the next heartbeat (up to 30 s later), which commits the fresh note with it.
            watchdogSweep()
            armHeartbeat(after: 0)
        }
        scheduleCycle()
    }

    /// The pending writes, tried while paused (`commit` does not pause twice).
    private func flushWritesWhilePaused() -> Bool {
        // With nothing pending, a small write of its own tells whether the store can be written again.
        let wallNow = Self.wallClock()
        let (probe, node) = (writes.isEmpty, config.node.name)
        return commit("write the state database") { transaction -> Void in
            if probe { try transaction.setNodeNote(node: node, "disk.checked", "writable", at: wallNow) }
        } != nil
    }

    private func commitClaimsWhilePaused() -> Bool { recordClaims() }
}

/// Why the daemon is paused: no space (on a disk the store or the moves need), or another cause that clears by
/// itself (the store's server away, its database busy). Said by the log, the watchdog and `status`.
struct PauseReason {
    /// After "paused: ", e.g. "no space on /srv/state".
    let text: String
    let forSpace: Bool

    var endsWhen: String { forSpace ? "space returns" : "that changes" }

    /// Below this much free space a failed write is taken for a full disk.
    static let nearlyFull: UInt64 = 16 << 20

    /// A write failed in a way worth retrying: no space, or an I/O error or a quota, which a full disk may also give.
    /// Said to be "no space" only when the disk has next to none left (or cannot be asked): a failing disk with room
    /// to spare is not reported as full.
    static func writeFailed(on path: String, freeBytes: UInt64?) -> PauseReason {
        guard let free = freeBytes, free >= nearlyFull else { return PauseReason(text: "no space on \(path)", forSpace: true) }
        return PauseReason(text: "cannot write on \(path) although \(free >> 20) MiB are free", forSpace: false)
    }
}

/// Errors that mean "no space" rather than "broken".
enum DiskTrouble {
    static func isOutOfSpace(errno code: Int32) -> Bool { code == ENOSPC || code == EDQUOT || code == EIO }
}
