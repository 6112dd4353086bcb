import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore
import Testing

@testable import OrchestratorDaemon

/// Start-up recovery decided from store records and a folder listing handed in.
@Suite struct RecoveryPlanTests {
    func file(inode: UInt64, kind: FileStatus.Kind = .regular) -> FileStatus {
        FileStatus(size: 5, modified: 0, device: 42, inode: inode, kind: kind)
    }

    func plan(
        unmoved: [JobRecord] = [], live: [JobRecord] = [], processing: [String: FileStatus] = [:],
        inbox: [String: FileStatus] = [:], handlers: Set<String> = ["h"], moved: [Int64: String] = [:]
    ) -> [RecoveryPlan.Action] {
        RecoveryPlan(
            unmoved: unmoved, live: live, handler: { job in job.handler.flatMap { handlers.contains($0) ? $0 : nil } },
            processing: { processing[$0.description] }, inbox: { inbox[$0.description] },
            movedFile: { job in moved[job.id].map(RelativePath.init) }
        ).actions
    }

    @Test func aFinishedJobsOwnFileIsMovedNeverRun() {
        let job = JobRecord(id: 1, name: RelativePath("a.txt"), handler: "h", state: .done, claimDevice: 42, claimInode: 100)
        #expect(plan(unmoved: [job], processing: ["a.txt": file(inode: 100)]) == [.finishMove(job)])
        // Gone (its worker removed it, or a cross-filesystem copy was cut short): the move looks for the copy.
        #expect(plan(unmoved: [job]) == [.finishMove(job)])
    }

    /// The name-reuse case: the job's file left, a newcomer of the same name was claimed, and the daemon
    /// died before the job's final path was committed. The newcomer must not become the job's result.
    @Test func aNewerFileUnderAFinishedJobsNameIsNotItsResult() {
        let job = JobRecord(id: 1, name: RelativePath("a.txt"), handler: "h", state: .done, claimDevice: 42, claimInode: 100)
        #expect(plan(unmoved: [job], processing: ["a.txt": file(inode: 200)], moved: [1: "a.txt"])
            == [.newerFileUnderName(job, finalName: RelativePath("a.txt"))])
    }

    /// A worker that rewrote its input (sed -i) leaves another inode under the name, and that file is the
    /// job's own: its own file is nowhere else, so it is moved, never run again.
    @Test func anotherInodeWithTheJobsFileNowhereElseIsTheJobsOwn() {
        let job = JobRecord(id: 1, name: RelativePath("a.txt"), handler: "h", state: .done, claimDevice: 42, claimInode: 100)
        #expect(plan(unmoved: [job], processing: ["a.txt": file(inode: 200)]) == [.finishMove(job)])
        // Device numbers may change across a reboot: the inode decides.
        let rebooted = FileStatus(size: 5, modified: 0, device: 7, inode: 100, kind: .regular)
        #expect(plan(unmoved: [job], processing: ["a.txt": rebooted], moved: [1: "a.txt"]) == [.finishMove(job)])
    }

    /// The daemon died after the mover put the file in Done/ and before its final path was committed: the file
    /// is found where it went and recorded there (its upload follows), not taken as removed by its worker.
    @Test func aFileThatReachedDoneBeforeTheStopIsRecordedWhereItIs() {
        let job = JobRecord(id: 1, name: RelativePath("a.txt"), handler: "h", state: .done, claimDevice: 42, claimInode: 100)
        #expect(plan(unmoved: [job], moved: [1: "a.txt~1"]) == [.alreadyMoved(job, finalName: RelativePath("a.txt~1"))])
        // Without the claim's identity a file of the name in Done/ could be an older job's: not taken.
        let unidentified = JobRecord(id: 2, name: RelativePath("b.txt"), handler: "h", state: .done)
        #expect(plan(unmoved: [unidentified], moved: [2: "b.txt"]) == [.finishMove(unidentified)])
    }

    @Test func aNewFileOfTheNameInInboxIsNotAClaimThatWasLost() {
        let job = JobRecord(id: 1, name: RelativePath("b"), handler: "h", state: .queued, claimDevice: 42, claimInode: 100)
        #expect(plan(live: [job], inbox: ["b": file(inode: 100)]) == [.reclaim(job, handler: "h")])
        #expect(plan(live: [job], inbox: ["b": file(inode: 300)]) == [.fail(job, reason: "its file disappeared while the daemon was down")])
    }

    @Test func jobsRecordedWithoutAnIdentityAreTakenAtTheirWord() {
        let job = JobRecord(id: 1, name: RelativePath("a.txt"), handler: "h", state: .failed)
        #expect(plan(unmoved: [job], processing: ["a.txt": file(inode: 999)]) == [.finishMove(job)])
    }

    @Test func liveJobsAreRestoredReclaimedOrFailed() {
        let waiting = JobRecord(id: 1, name: RelativePath("w"), handler: "h", state: .queued)
        let back = JobRecord(id: 2, name: RelativePath("b"), handler: "h", state: .retryWait)
        let gone = JobRecord(id: 3, name: RelativePath("g"), handler: "h", state: .queued)
        let link = JobRecord(id: 4, name: RelativePath("l"), handler: "h", state: .queued)
        let orphan = JobRecord(id: 5, name: RelativePath("o"), handler: "removed", state: .queued)
        let actions = plan(
            live: [waiting, back, gone, link, orphan],
            processing: ["w": file(inode: 1), "l": file(inode: 4, kind: .symlink), "o": file(inode: 5)],
            inbox: ["b": file(inode: 2)])
        #expect(actions == [
            .restore(waiting, handler: "h"),
            .reclaim(back, handler: "h"),
            .fail(gone, reason: "its file disappeared while the daemon was down"),
            .fail(link, reason: "not a regular file (symlink)"),
            .fail(orphan, reason: "no handler (handler removed is no longer configured)"),
        ])
    }

    @Test func somethingOtherThanAFileBackInInboxIsNotReclaimed() {
        let job = JobRecord(id: 1, name: RelativePath("x"), handler: "h", state: .queued)
        #expect(plan(live: [job], inbox: ["x": file(inode: 9, kind: .fifo)]) == [.fail(job, reason: "its file disappeared while the daemon was down")])
    }
}
