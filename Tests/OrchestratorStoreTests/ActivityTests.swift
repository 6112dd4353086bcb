import Foundation
import OrchestratorCore
import Testing
@testable import OrchestratorStore

@Suite struct ActivityTests {
    /// Jobs land in the minute they ended, each counted once however many attempts it took, with the run time
    /// of its last attempt; what ended before the window and what has not ended are left out.
    @Test func jobsEndedAreCountedPerMinuteWithTheirLastAttemptsRunTime() throws {
        let temporary = try TemporaryStore()
        let store = temporary.store
        let minute: UnixTime = 1_800_000_000 - 1_800_000_000.truncatingRemainder(dividingBy: 60)
        _ = try store.finishedFile("before.txt", at: minute - 1)
        _ = try store.finishedFile("a.txt", at: minute + 5)
        _ = try store.finishedFile("b.txt", at: minute + 59, succeeded: false)
        _ = try store.finishedFile("c.txt", at: minute + 125)
        // Two attempts, the second of 4 s: counted once, with 4 s.
        try store.write { transaction in
            let id = try transaction.insertJob(
                kind: .file, name: RelativePath(Array("retried.txt".utf8)), handler: "h", state: .queued, priority: 5,
                maxAttempts: 3, at: minute)
            try transaction.setState(jobID: id, from: .queued, to: .running, attempts: 1, at: minute)
            let first = try transaction.startAttempt(jobID: id, number: 1, logPath: [], at: minute)
            try transaction.finishAttempt(attemptID: first, AttemptResult(outcome: .failed), at: minute + 1)
            let second = try transaction.startAttempt(jobID: id, number: 2, logPath: [], at: minute + 126)
            try transaction.finishAttempt(attemptID: second, AttemptResult(outcome: .succeeded), at: minute + 130)
            try transaction.setState(jobID: id, from: .running, to: .done, attempts: 2, at: minute + 130)
        }
        // Still running: not in any minute.
        try store.write { transaction in
            let id = try transaction.insertJob(
                kind: .file, name: RelativePath(Array("running.txt".utf8)), handler: "h", state: .queued, priority: 5,
                maxAttempts: 3, at: minute)
            try transaction.setState(jobID: id, from: .queued, to: .running, attempts: 1, at: minute)
            _ = try transaction.startAttempt(jobID: id, number: 1, logPath: [], at: minute)
        }

        let activity = try store.read { try $0.activityPerMinute(since: minute) }
        #expect(activity.map(\.minute) == [minute, minute + 120])
        #expect(activity.map(\.done) == [1, 2])
        #expect(activity.map(\.failed) == [1, 0])
        #expect(activity[0].averageSeconds == 1)
        #expect(activity[1].maxSeconds == 4)
        #expect(activity[1].averageSeconds == 2.5)
    }
}
