#if canImport(Glibc)
import Glibc
#endif
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
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

/// How a file just renamed into the processing area is recorded.
struct ClaimVerdictTests {
    private func status(_ kind: FileStatus.Kind) -> FileStatus {
        FileStatus(size: 0, modified: 0, device: 1, inode: 2, kind: kind, linkCount: 1)
    }

    @Test func onlyARegularFileGoesToItsHandler() throws {
        let handler = try #require(try Config.parse(text: "[[handler]]\nname = \"h\"\ncommand = [\"true\"]\n", file: "/c/o.toml").handlers.first)
        let name = RelativePath(Array("a".utf8))
        guard case .queue(let taken) = Claim(name: name, status: status(.regular)).verdict(handler: handler) else {
            Issue.record("a regular file was not queued")
            return
        }
        #expect(taken.name == "h")
        for kind in [FileStatus.Kind.fifo, .socket, .symlink, .directory] {
            guard case .fail(let reason, _) = Claim(name: name, status: status(kind)).verdict(handler: handler) else {
                Issue.record("\(kind) was queued")
                continue
            }
            #expect(reason == "not a regular file (\(kind.rawValue))")
        }
        guard case .fail(let reason, let detail) = Claim(name: name, status: status(.regular)).verdict(handler: nil) else {
            Issue.record("a file no handler takes was queued")
            return
        }
        #expect(reason == "no handler" && detail == "no handler matches")
    }
}
