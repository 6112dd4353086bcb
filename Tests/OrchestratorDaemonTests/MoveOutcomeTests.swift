#if canImport(Glibc)
import Glibc
#endif
import OrchestratorCore
import Testing

@testable import OrchestratorDaemon

/// What the dispatcher does with a finished file after its move, from the mover's answer alone.
struct MoveOutcomeTests {
    @Test func aMovedFileIsRecordedUnderItsFinalName() {
        let name = RelativePath(Array("a (2).txt".utf8))
        #expect(MoveOutcome(finalName: name, error: nil, errorCode: nil) == .moved(name))
    }

    @Test func aFileItsWorkerTookAwayHasNothingToMove() {
        #expect(MoveOutcome(finalName: nil, error: nil, errorCode: nil) == .inputGone)
    }

    /// Out of space, over quota or a failing disk pause the daemon; any other error leaves the file for the sweep.
    @Test func aFailedMoveStaysAndPausesOnlyForTheDisk() {
        for code in [ENOSPC, EDQUOT, EIO] {
            #expect(MoveOutcome(finalName: nil, error: "full", errorCode: code) == .stuck(reason: "full", outOfSpace: true))
        }
        #expect(MoveOutcome(finalName: nil, error: "denied", errorCode: EACCES) == .stuck(reason: "denied", outOfSpace: false))
        #expect(MoveOutcome(finalName: nil, error: "odd", errorCode: nil) == .stuck(reason: "odd", outOfSpace: false))
    }
}
