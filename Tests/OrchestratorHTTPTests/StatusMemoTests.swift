import Testing

@testable import OrchestratorHTTP

@Suite struct StatusMemoTests {
    final class Counter: @unchecked Sendable {
        var value = 0
        func next() -> String {
            value += 1
            return "answer \(value)"
        }
    }

    @Test func answersWithinTheMaximumAgeAreShared() {
        let memo = StatusMemo()
        let counter = Counter()
        #expect(memo.answer(now: 1_000, compute: counter.next) == "answer 1")
        #expect(memo.answer(now: 1_000 + StatusMemo.maximumAge - 1, compute: counter.next) == "answer 1")
        #expect(memo.answer(now: 1_000 + StatusMemo.maximumAge, compute: counter.next) == "answer 2")
        #expect(counter.value == 2)
    }

    @Test func aChangeIsSeenByTheNextAnswer() {
        let memo = StatusMemo()
        let counter = Counter()
        #expect(memo.answer(now: 0, compute: counter.next) == "answer 1")
        memo.invalidate()
        #expect(memo.answer(now: 1, compute: counter.next) == "answer 2")
    }

    /// An answer computed while a change came in is not kept: it may predate the change.
    @Test func anAnswerRacingAChangeIsNotKept() {
        let memo = StatusMemo()
        var calls = 0
        let first = memo.answer(now: 0) {
            calls += 1
            memo.invalidate()
            return "before the change"
        }
        #expect(first == "before the change")
        #expect(memo.answer(now: 1) { calls += 1; return "after" } == "after")
        #expect(calls == 2)
    }

    @Test func aClockThatGoesBackDoesNotServeAnOldAnswer() {
        let memo = StatusMemo()
        let counter = Counter()
        _ = memo.answer(now: 5_000_000_000, compute: counter.next)
        #expect(memo.answer(now: 1, compute: counter.next) == "answer 2")
    }
}
