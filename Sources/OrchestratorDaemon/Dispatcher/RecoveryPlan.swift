import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// What start-up recovery does with each file job the store left unfinished, decided from the store's
/// records and what the folders hold (handed in, so the decisions are tested without a disk). The
/// dispatcher carries the actions out.
struct RecoveryPlan: Equatable {
    enum Action: Equatable {
        /// A finished job's file is still in the processing area: move it to Done/ or Failed/; never run it.
        case finishMove(JobRecord)
        /// A finished job's name holds another file, claimed after the job's own file had left (it was found,
        /// by its inode, at `finalName`) but before its final path was committed: the job is done with; the
        /// newcomer becomes a job of its own.
        case newerFileUnderName(JobRecord, finalName: RelativePath)
        /// A finished job's file had reached Done/ or Failed/ (found at `finalName` by its inode) when the daemon
        /// died before committing its final path: record where it is (and its upload); nothing moves.
        case alreadyMoved(JobRecord, finalName: RelativePath)
        /// A live job whose file waits in the processing area: queue it again under this handler.
        case restore(JobRecord, handler: String)
        /// A live job whose claiming rename did not survive (a power cut): its file is back in Inbox.
        case reclaim(JobRecord, handler: String)
        case fail(JobRecord, reason: String)
    }

    var actions: [Action] = []

    /// - Parameters:
    ///   - unmoved: finished file jobs without a final path.
    ///   - live: queued, retrying or breaker-waiting file jobs (running ones were made queued first).
    ///   - handler: the handler a live job runs under now (its own if still configured, else the first that
    ///     matches its name), nil if none.
    ///   - processing, inbox: `lstat` of a name in the processing area and in Inbox.
    ///   - movedFile: where a finished job's own file is in Done/ or Failed/, found by its claimed inode.
    init(
        unmoved: [JobRecord], live: [JobRecord], handler: (JobRecord) -> String?,
        processing: (RelativePath) -> FileStatus?, inbox: (RelativePath) -> FileStatus?,
        movedFile: (JobRecord) -> RelativePath? = { _ in nil }
    ) {
        for job in unmoved {
            // Another inode under the name is a newcomer only if the job's own file is found where it went:
            // a worker that rewrote its input (sed -i) also leaves another inode, and that file is the job's.
            // A job recorded without its claim's identity cannot be looked for (another file of the name in Done/
            // could be an older job's).
            let present = processing(job.name)
            let ownFileHere = present.map { Self.isClaimedFile($0, of: job) } ?? false
            if !ownFileHere, job.claimInode != nil, let finalName = movedFile(job) {
                actions.append(present == nil ? .alreadyMoved(job, finalName: finalName) : .newerFileUnderName(job, finalName: finalName))
            } else {
                // Also when the file is gone: the move finishes a cross-filesystem copy or notes it was removed.
                actions.append(.finishMove(job))
            }
        }
        for job in live {
            guard let handlerName = handler(job) else {
                actions.append(.fail(job, reason: "no handler (handler \(job.handler ?? "?") is no longer configured)"))
                continue
            }
            if let present = processing(job.name) {
                if !present.isRegular {
                    actions.append(.fail(job, reason: Dispatcher.notRegular(present.kind)))
                } else {
                    actions.append(.restore(job, handler: handlerName))
                }
            } else if let back = inbox(job.name), back.isRegular, Self.isClaimedFile(back, of: job) {
                actions.append(.reclaim(job, handler: handlerName))
            } else {
                actions.append(.fail(job, reason: "its file disappeared while the daemon was down"))
            }
        }
    }

    /// Whether the entry found under a job's name is the file that job claimed, by inode: the processing area
    /// is on Inbox's filesystem, and device numbers may change across a reboot. Jobs recorded before claim
    /// identities were stored cannot be checked and are taken at their word.
    static func isClaimedFile(_ status: FileStatus, of job: JobRecord) -> Bool {
        guard let inode = job.claimInode else { return true }
        return status.inode == inode
    }
}
