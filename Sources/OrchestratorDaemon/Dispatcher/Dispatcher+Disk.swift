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

    static let firstDiskRetry: UInt64 = 1000
    static let maxDiskRetry: UInt64 = 30_000

    func pauseForDisk(path: PathBytes, reason: String) {
        // A stopping daemon does not wait for space: what is not recorded is recovered at the next start.
        guard !phase.isStopping else {
            logger.error("cannot record while stopping; the next start recovers it", metadata: ["error": "\(reason)"])
            return
        }
        guard !phase.isPausedForDisk else { return }
        phase = .pausedForDisk(path: path.description)
        scan = nil
        diskRetryDelay = Self.firstDiskRetry
        _ = schedule(.diskRetry, after: diskRetryDelay)
        let text = "paused: no space on \(path)"
        logger.critical("\(text); nothing new starts until space returns", metadata: ["error": "\(reason)"])
        statusBoard?.post(text)
        notifier.notify("STATUS=\(text)")
        // Listeners run when the event can be recorded: now if only another disk is full, else on resume.
        criticalPending = !emit("error.critical")
    }

    func diskRetryDue() {
        guard case .pausedForDisk(let path) = phase else { return }
        // Claims first: their commit carries the other pending writes along.
        let committed = newClaims.isEmpty ? flushWritesWhilePaused() : commitClaimsWhilePaused()
        guard committed else {
            diskRetryDelay = min(Self.maxDiskRetry, diskRetryDelay * 2)
            _ = schedule(.diskRetry, after: diskRetryDelay)
            logger.debug("still no space", metadata: ["path": "\(path)", "retry_in": "\(diskRetryDelay)ms"])
            return
        }
        phase = .running
        statusBoard?.post("")
        notifier.notify("STATUS=resumed")
        logger.info("space is back; resuming", metadata: ["path": "\(path)"])
        if criticalPending { criticalPending = !emit("error.critical") }
        if !uploadsToRecord.isEmpty {
            let moved = uploadsToRecord
            uploadsToRecord = []
            queueUploads(moved)
        }
        retryStuckMoves()
        startScan(reason: "resumed after a full disk")
        scheduleCycle()
    }

    /// The pending writes, tried while paused (`commit` does not pause twice).
    private func flushWritesWhilePaused() -> Bool {
        guard !writes.isEmpty else { return true }
        return commit("write the state database") { _ in } != nil
    }

    private func commitClaimsWhilePaused() -> Bool { recordClaims() }
}

/// Errors that mean "no space" rather than "broken".
enum DiskTrouble {
    static func isOutOfSpace(errno code: Int32) -> Bool { code == ENOSPC || code == EDQUOT || code == EIO }
}
