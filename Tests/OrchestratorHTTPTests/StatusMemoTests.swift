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
        #expect(memo.answer(now: 1_000, clock: { 1_000 }, compute: counter.next) == "answer 1")
        #expect(memo.answer(now: 1_000 + StatusMemo.maximumAge - 1, compute: counter.next) == "answer 1")
        #expect(memo.answer(now: 1_000 + StatusMemo.maximumAge, compute: counter.next) == "answer 2")
        #expect(counter.value == 2)
    }

    /// An answer that took long to compute (a store of months of history) is shared for four times as long, up to
    /// five seconds: a dashboard polling every second then costs a quarter of a core at most, not all of it.
    @Test func anAnswerThatCostMoreIsSharedLonger() {
        let memo = StatusMemo()
        let counter = Counter()
        let second: UInt64 = 1_000_000_000
        #expect(memo.answer(now: 10 * second, clock: { 10 * second + second / 2 }, compute: counter.next) == "answer 1")
        #expect(memo.answer(now: 12 * second - 1, compute: counter.next) == "answer 1")
        #expect(memo.answer(now: 12 * second, clock: { 12 * second + 3 * second }, compute: counter.next) == "answer 2")
        #expect(memo.answer(now: 17 * second - 1, compute: counter.next) == "answer 2")
        #expect(memo.answer(now: 17 * second, compute: counter.next) == "answer 3")
        #expect(StatusMemo.lifetime(cost: 0) == StatusMemo.maximumAge && StatusMemo.lifetime(cost: .max) == StatusMemo.longestAge)
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
