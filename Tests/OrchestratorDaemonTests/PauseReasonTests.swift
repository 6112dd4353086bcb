import Testing

@testable import OrchestratorDaemon

/// What the log, `status` and systemd are told when a write that may heal fails: a full disk is said to be full,
/// an I/O error or a quota on a disk with room is not.
struct PauseReasonTests {
    @Test(arguments: [nil, 0, 4096, PauseReason.nearlyFull - 1] as [UInt64?])
    func aDiskWithNextToNoRoomIsFull(freeBytes: UInt64?) {
        let reason = PauseReason.writeFailed(on: "/srv/state", freeBytes: freeBytes)
        #expect(reason.text == "no space on /srv/state")
        #expect(reason.forSpace)
        #expect(reason.endsWhen == "space returns")
    }

    @Test func aDiskWithRoomIsNotCalledFull() {
        let reason = PauseReason.writeFailed(on: "/srv/state", freeBytes: 3 << 30)
        #expect(reason.text == "cannot write on /srv/state although 3072 MiB are free")
        #expect(!reason.forSpace)
        #expect(reason.endsWhen == "that changes")
    }
}
