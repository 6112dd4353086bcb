import TestSupport
@testable import OrchestratorCore
import Testing

// MARK: - Helpers

/// The obvious implementation: a sorted array, scanned from the front.
private struct ReferenceWheel {
    var now: UInt64
    /// Sorted by (deadline, sequence).
    var pending: [(deadline: UInt64, sequence: Int, id: Int)] = []
    var nextSequence = 0

    init(now: UInt64) { self.now = now }

    mutating func schedule(at deadline: UInt64, id: Int) {
        let sequence = nextSequence
        nextSequence += 1
        // Sequences only grow, so the insertion point is after every deadline <= this one.
        var low = 0
        var high = pending.count
        while low < high {
            let mid = (low + high) / 2
            if pending[mid].deadline <= deadline { low = mid + 1 } else { high = mid }
        }
        pending.insert((deadline, sequence, id), at: low)
    }

    mutating func cancel(id: Int) -> Int? {
        guard let position = pending.firstIndex(where: { $0.id == id }) else { return nil }
        return pending.remove(at: position).id
    }

    mutating func advance(to time: UInt64) -> [(deadline: UInt64, id: Int)] {
        now = max(now, time)
        let dueCount = pending.prefix(while: { $0.deadline <= now }).count
        let fired = pending.prefix(dueCount).map { (deadline: $0.deadline, id: $0.id) }
        pending.removeFirst(dueCount)
        return fired
    }
}

private struct Firing: Equatable {
    var time: UInt64
    var deadline: UInt64
    var payload: Int
}

/// Calls `advance(to:)` at each of `times` and records at which call each timer came out.
private func drive(_ wheel: inout TimerWheel<Int>, through times: [UInt64]) -> [Firing] {
    var firings: [Firing] = []
    for time in times {
        for timer in wheel.advance(to: time) {
            firings.append(Firing(time: time, deadline: timer.deadline, payload: timer.payload))
        }
    }
    return firings
}

/// Sleeps until `nextWakeup()` and advances exactly there, as the daemon does; returns the firings and the number of
/// wake-ups. Gives up after `limit` wake-ups so that a bug cannot hang the test run.
private func driveByWakeups(_ wheel: inout TimerWheel<Int>, limit: Int = 100_000) -> (firings: [Firing], wakeups: Int) {
    var firings: [Firing] = []
    var wakeups = 0
    while let wake = wheel.nextWakeup(), wakeups < limit {
        wakeups += 1
        for timer in wheel.advance(to: wake) {
            firings.append(Firing(time: wake, deadline: timer.deadline, payload: timer.payload))
        }
    }
    return (firings, wakeups)
}

private func sortedByDeadline(_ deadlines: [UInt64]) -> [(deadline: UInt64, payload: Int)] {
    deadlines.enumerated()
        .map { (deadline: $0.element, payload: $0.offset) }
        .sorted { ($0.deadline, $0.payload) < ($1.deadline, $1.payload) }
}

/// Deadlines at and around every level boundary, both relative to `start` and absolute (aligned multiples).
private func boundaryDeadlines(from start: UInt64) -> [UInt64] {
    let offsets: [UInt64] = [
        1, 2, 63, 64, 65, 4095, 4096, 4097, 262_143, 262_144, 262_145, 300_000, 16_777_215, 16_777_216, 16_777_217,
        86_400_000, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, (1 << 36) - 1, 1 << 36, (1 << 36) + 1, 1 << 40,
    ]
    var deadlines = offsets.map { start + $0 }
    for bits in stride(from: 6, through: 42, by: 6) {
        let aligned = ((start >> UInt64(bits)) + 1) << UInt64(bits)
        deadlines += [aligned - 1, aligned, aligned + 1].filter { $0 > start }
    }
    return deadlines
}

/// A time line for "many small steps": every millisecond for a while, then steps growing by 1/8 each time, which
/// crosses every level boundary many times without being aligned to any of them.
private func smallSteps(from start: UInt64, through end: UInt64) -> [UInt64] {
    var times: [UInt64] = []
    var time = start
    var step: UInt64 = 1
    while time < end {
        time = min(end, time + step)
        times.append(time)
        if time - start > 5_000 { step += step / 8 + 1 }
    }
    return times
}

struct TimerWheelTests {
    // MARK: - Basics

    @Test func emptyWheelIsIdle() {
        var wheel = TimerWheel<Int>(now: 1_000)
        #expect(wheel.isEmpty)
        #expect(wheel.count == 0)
        #expect(wheel.nextWakeup() == nil)
        #expect(wheel.advance(to: 10 * 86_400_000).isEmpty)
        #expect(wheel.now == 10 * 86_400_000)
        #expect(wheel.nextWakeup() == nil)
    }

    @Test func timeNeverMovesBackwards() {
        var wheel = TimerWheel<Int>(now: 5_000)
        wheel.schedule(at: 6_000, 1)
        #expect(wheel.advance(to: 4_000).isEmpty)
        #expect(wheel.now == 5_000)
        #expect(wheel.nextWakeup() == 6_000)
        #expect(wheel.advance(to: 6_000).map(\.payload) == [1])
    }

    @Test func firesInDeadlineOrderAcrossLevels() {
        var wheel = TimerWheel<Int>(now: 0)
        let deadlines: [UInt64] = [86_400_000, 5, 300_000, 4096, 1 << 40, 64, 63, 1, 262_144, 4097, 70_000_000_000]
        for (payload, deadline) in deadlines.enumerated() {
            wheel.schedule(at: deadline, payload)
        }
        #expect(wheel.count == deadlines.count)
        let fired = wheel.advance(to: 1 << 41)
        #expect(fired.map(\.deadline) == deadlines.sorted())
        #expect(fired.map(\.payload) == sortedByDeadline(deadlines).map(\.payload))
        #expect(wheel.isEmpty)
    }

    @Test func equalDeadlinesFireInScheduleOrder() {
        var wheel = TimerWheel<Int>(now: 0)
        // Scheduled early, so it waits on a high level and reaches level 0 by cascading, after payload 2 was put
        // straight onto level 0: FIFO must still hold.
        wheel.schedule(at: 300_000, 1)
        _ = wheel.advance(to: 299_990)
        wheel.schedule(at: 300_000, 2)
        wheel.schedule(at: 300_000, 3)
        wheel.schedule(at: 299_999, 0)
        #expect(wheel.advance(to: 300_000).map(\.payload) == [0, 1, 2, 3])
    }

    @Test func fifoSurvivesCancellationsInTheSameSlot() {
        var wheel = TimerWheel<Int>(now: 0)
        let handles = (0 ..< 10).map { wheel.schedule(at: 1_000, $0) }
        #expect(wheel.cancel(handles[2]) == 2)
        #expect(wheel.cancel(handles[0]) == 0)
        #expect(wheel.cancel(handles[7]) == 7)
        #expect(wheel.advance(to: 1_000).map(\.payload) == [1, 3, 4, 5, 6, 8, 9])
    }

    @Test func deadlinesAtOrBeforeNowFireOnTheNextAdvance() {
        var wheel = TimerWheel<Int>(now: 1_000)
        wheel.schedule(at: 1_000, 3)
        wheel.schedule(at: 5, 2)
        wheel.schedule(at: 0, 1)
        wheel.schedule(at: 1_001, 4)
        #expect(wheel.nextWakeup() == 1_000)
        // Even an advance to an earlier time returns what is due at `now`, in deadline order.
        let fired = wheel.advance(to: 10)
        #expect(fired.map(\.deadline) == [0, 5, 1_000])
        #expect(fired.map(\.payload) == [1, 2, 3])
        #expect(wheel.now == 1_000)
        #expect(wheel.nextWakeup() == 1_001)
        #expect(wheel.advance(to: 1_001).map(\.payload) == [4])
    }

    @Test func timerAtNowPlusOneFiresAtNowPlusOne() {
        for start: UInt64 in [0, 62, 63, 64, 4_095, 262_143, (1 << 36) - 1] {
            var wheel = TimerWheel<Int>(now: start)
            wheel.schedule(at: start + 1, 7)
            #expect(wheel.nextWakeup() == start + 1)
            #expect(wheel.advance(to: start).isEmpty)
            #expect(wheel.advance(to: start + 1).map(\.payload) == [7])
        }
    }

    @Test func extremeDeadlinesDoNotOverflow() {
        var wheel = TimerWheel<Int>(now: 0)
        wheel.schedule(at: UInt64.max, 2)
        wheel.schedule(at: UInt64.max - 1, 1)
        #expect(wheel.nextWakeup() == UInt64.max - 1)
        #expect(wheel.advance(to: UInt64.max - 2).isEmpty)
        #expect(wheel.advance(to: UInt64.max).map(\.payload) == [1, 2])

        var late = TimerWheel<Int>(now: UInt64.max - 100)
        late.schedule(at: UInt64.max, 1)
        #expect(late.nextWakeup() == UInt64.max)
        #expect(late.advance(to: UInt64.max).map(\.payload) == [1])
    }

    @Test func optionalPayloadsRoundTrip() {
        var wheel = TimerWheel<Int?>(now: 0)
        let handle = wheel.schedule(at: 10, nil)
        wheel.schedule(at: 20, nil)
        #expect(wheel.cancel(handle) == .some(nil))
        #expect(wheel.cancel(handle) == nil)
        let fired = wheel.advance(to: 20)
        #expect(fired.count == 1)
        #expect(fired.first?.payload == .some(nil))
    }

    @Test func wheelIsSendableForSendablePayloads() {
        func requireSendable<T: Sendable>(_: T.Type) {}
        requireSendable(TimerWheel<Int>.self)
        requireSendable(TimerHandle.self)
    }

    // MARK: - Cancel

    @Test func cancelPendingTimerReturnsItsPayload() {
        var wheel = TimerWheel<Int>(now: 0)
        let near = wheel.schedule(at: 10, 1)
        let far = wheel.schedule(at: 86_400_000, 2)
        let beyond = wheel.schedule(at: 1 << 40, 3)
        let due = wheel.schedule(at: 0, 4)
        #expect(wheel.count == 4)
        #expect(wheel.cancel(far) == 2)
        #expect(wheel.cancel(beyond) == 3)
        #expect(wheel.cancel(due) == 4)
        #expect(wheel.count == 1)
        #expect(wheel.nextWakeup() == 10)
        #expect(wheel.cancel(near) == 1)
        #expect(wheel.isEmpty)
        #expect(wheel.nextWakeup() == nil)
        #expect(wheel.advance(to: 1 << 41).isEmpty)
    }

    @Test func cancelAfterFiringAndDoubleCancelAreHarmless() {
        var wheel = TimerWheel<Int>(now: 0)
        let fired = wheel.schedule(at: 5, 1)
        let cancelled = wheel.schedule(at: 50, 2)
        #expect(wheel.advance(to: 5).map(\.payload) == [1])
        #expect(wheel.cancel(fired) == nil)
        #expect(wheel.cancel(cancelled) == 2)
        #expect(wheel.cancel(cancelled) == nil)
        #expect(wheel.count == 0)
    }

    @Test func staleHandleDoesNotCancelTheTimerReusingItsSlot() {
        var wheel = TimerWheel<Int>(now: 0)
        let old = wheel.schedule(at: 100, 1)
        #expect(wheel.cancel(old) == 1)
        let new = wheel.schedule(at: 100, 2)
        #expect(new.index == old.index, "the slab entry is expected to be reused")
        #expect(new != old)
        #expect(wheel.cancel(old) == nil)
        #expect(wheel.count == 1)

        // Same after the old timer fired instead of being cancelled.
        let firedOld = wheel.schedule(at: 50, 3)
        #expect(wheel.advance(to: 50).map(\.payload) == [3])
        let reuser = wheel.schedule(at: 200, 4)
        #expect(reuser.index == firedOld.index)
        #expect(wheel.cancel(firedOld) == nil)
        #expect(wheel.advance(to: 200).map(\.payload) == [2, 4])
    }

    @Test func handleFromAnotherWheelIsHarmless() {
        var big = TimerWheel<Int>(now: 0)
        var small = TimerWheel<Int>(now: 0)
        for payload in 0 ..< 100 { big.schedule(at: 10, payload) }
        let foreign = big.schedule(at: 10, 100)
        small.schedule(at: 10, 0)
        #expect(small.cancel(foreign) == nil)
        #expect(small.count == 1)
    }

    // MARK: - Cascading through every level

    @Test(arguments: [0, 1, 63, 64, 4_095, 262_000, 123_456_789, (1 << 36) - 3, 5 << 36] as [UInt64])
    func boundaryDeadlinesFireExactlyWhenDue(start: UInt64) {
        let deadlines = boundaryDeadlines(from: start)
        let expected = sortedByDeadline(deadlines)
        let end = deadlines.max()! + 1

        func fresh() -> TimerWheel<Int> {
            var wheel = TimerWheel<Int>(now: start)
            for (payload, deadline) in deadlines.enumerated() { wheel.schedule(at: deadline, payload) }
            return wheel
        }
        /// The fire time must be the first `advance(to:)` argument at or after the deadline: never early, never late.
        func expectExactFireTimes(_ firings: [Firing], _ times: [UInt64]) {
            #expect(firings.map(\.payload) == expected.map(\.payload))
            for firing in firings {
                let firstDue = times.first { $0 >= firing.deadline }
                #expect(firing.time == firstDue, "deadline \(firing.deadline) fired at \(firing.time)")
            }
        }

        // Many small steps, including the tick before, at and after every deadline.
        let aligned = Set(smallSteps(from: start, through: end) + deadlines.flatMap { [$0 - 1, $0, $0 + 1] })
            .filter { $0 > start }.sorted()
        var stepped = fresh()
        let steppedFirings = drive(&stepped, through: aligned)
        expectExactFireTimes(steppedFirings, aligned)
        #expect(steppedFirings.allSatisfy { $0.time == $0.deadline })
        #expect(stepped.isEmpty)

        // Many small steps that hit no deadline on purpose.
        let unaligned = smallSteps(from: start, through: end)
        var coarse = fresh()
        expectExactFireTimes(drive(&coarse, through: unaligned), unaligned)
        #expect(coarse.isEmpty)

        // One big step.
        var jumped = fresh()
        let jumpedFirings = drive(&jumped, through: [end])
        expectExactFireTimes(jumpedFirings, [end])
        #expect(jumpedFirings.map(\.deadline) == steppedFirings.map(\.deadline))

        // Driven by nextWakeup alone, like the daemon: every timer fires exactly at its deadline.
        var woken = fresh()
        let (wokenFirings, wakeups) = driveByWakeups(&woken)
        #expect(wokenFirings.map(\.payload) == expected.map(\.payload))
        #expect(wokenFirings.allSatisfy { $0.time == $0.deadline })
        #expect(wakeups == Set(deadlines).count)
    }

    // MARK: - nextWakeup

    @Test func nextWakeupIsExactForNearTimers() {
        var wheel = TimerWheel<Int>(now: 100)
        wheel.schedule(at: 130, 1)
        wheel.schedule(at: 120, 2)
        #expect(wheel.nextWakeup() == 120)
        _ = wheel.advance(to: 120)
        #expect(wheel.nextWakeup() == 130)
    }

    @Test(arguments: [100, 4_097, 300_000, 86_400_000, 30 * 86_400_000, (1 << 36) + 17, 1 << 40] as [UInt64])
    func farTimerNeedsFewWakeups(offset: UInt64) {
        for start: UInt64 in [0, 12_345, (1 << 36) - 1] {
            var wheel = TimerWheel<Int>(now: start)
            wheel.schedule(at: start + offset, 1)
            let wake = wheel.nextWakeup()
            #expect(wake != nil && wake! <= start + offset)
            let (firings, wakeups) = driveByWakeups(&wheel)
            #expect(firings == [Firing(time: start + offset, deadline: start + offset, payload: 1)])
            #expect(wakeups <= TimerWheelLayout.levelCount + 1)
            #expect(wakeups == 1, "the wheel knows the exact deadline, so no cascade wake-ups are needed")
        }
    }

    @Test func cancellingTheEarliestTimerOnlyCostsOneEarlyWakeup() {
        var wheel = TimerWheel<Int>(now: 0)
        // Both on the same level-3 slot, so the slot's lower bound goes stale when the first is cancelled.
        let first = wheel.schedule(at: 1_000_000, 1)
        wheel.schedule(at: 1_000_500, 2)
        #expect(wheel.cancel(first) == 1)
        let early = wheel.nextWakeup()!
        #expect(early <= 1_000_500)
        #expect(wheel.advance(to: early).isEmpty)
        #expect(wheel.nextWakeup() == 1_000_500)
        let (firings, wakeups) = driveByWakeups(&wheel)
        #expect(firings.map(\.payload) == [2])
        #expect(wakeups == 1)
    }

    @Test func cancellingTheOnlyFarTimerLeavesNoWakeup() {
        var wheel = TimerWheel<Int>(now: 0)
        let handle = wheel.schedule(at: 50 * 86_400_000, 1)
        #expect(wheel.nextWakeup() == 50 * 86_400_000)
        wheel.cancel(handle)
        #expect(wheel.nextWakeup() == nil)
    }

    @Test func advancingDaysOverAnEmptyOrSparseWheelIsFast() {
        let day: UInt64 = 86_400_000
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            var wheel = TimerWheel<Int>(now: 0)
            #expect(wheel.advance(to: 10 * day).isEmpty)
            wheel.schedule(at: 400 * day, 1)
            wheel.schedule(at: 11 * day + 1, 2)
            // Ten days in one-minute hops: each hop must cost the same as an idle one.
            var fired: [Int] = []
            for minute in 1 ... 14_400 as ClosedRange<UInt64> {
                fired += wheel.advance(to: 10 * day + minute * 60_000).map(\.payload)
            }
            #expect(fired == [2])
            #expect(wheel.advance(to: 400 * day).map(\.payload) == [1])
        }
        // Generous for a debug build on a loaded machine: the loop does no per-tick work.
        #expect(elapsed < .seconds(5))
    }

    // MARK: - Differential test against the sorted-array reference

    @Test(arguments: 1 ... 8 as ClosedRange<UInt64>)
    func matchesReferenceOnRandomOperations(seed: UInt64) {
        var random = SplitMix64(state: seed)
        let start = seed.isMultiple(of: 2) ? UInt64.random(in: 0 ... 1 << 40, using: &random) : (seed << 36) - 50
        var wheel = TimerWheel<Int>(now: start)
        var reference = ReferenceWheel(now: start)
        var handles: [TimerHandle] = []

        func randomDeadline() -> UInt64 {
            let now = reference.now
            switch UInt64.random(in: 0 ..< 100, using: &random) {
            case 0 ..< 5: return now - min(now, .random(in: 0 ... 10_000, using: &random))
            case 5 ..< 8: return now
            case 8 ..< 40: return now + .random(in: 1 ... 70, using: &random)
            case 40 ..< 60: return now + .random(in: 1 ... 5_000, using: &random)
            case 60 ..< 80: return now + .random(in: 1 ... 5_000_000, using: &random)
            case 80 ..< 85: return now + .random(in: 1 ... 1 << 38, using: &random)
            case 85 ..< 95:
                // Aligned to a level boundary, or one tick either side of it.
                let bits = UInt64(6 * Int.random(in: 1 ... 7, using: &random))
                let aligned = ((now >> bits) + 1) << bits
                return aligned + .random(in: 0 ... 2, using: &random) - 1
            default:
                // The same deadline as a pending timer, to exercise FIFO.
                return reference.pending.randomElement(using: &random)?.deadline ?? now + 1
            }
        }

        func randomAdvanceTarget() -> UInt64 {
            let now = reference.now
            switch UInt64.random(in: 0 ..< 100, using: &random) {
            case 0 ..< 5: return now - min(now, .random(in: 0 ... 1_000, using: &random))
            case 5 ..< 30: return now + .random(in: 0 ... 3, using: &random)
            case 30 ..< 50: return now + .random(in: 0 ... 300, using: &random)
            case 50 ..< 65: return now + .random(in: 0 ... 100_000, using: &random)
            case 65 ..< 72: return now + .random(in: 0 ... 50_000_000, using: &random)
            case 72 ..< 74: return now + .random(in: 0 ... 1 << 39, using: &random)
            case 74 ..< 90: return wheel.nextWakeup() ?? now + 1
            default: return reference.pending.randomElement(using: &random)?.deadline ?? now
            }
        }

        for step in 0 ..< 12_500 {
            switch UInt64.random(in: 0 ..< 100, using: &random) {
            case 0 ..< 55:
                let deadline = randomDeadline()
                handles.append(wheel.schedule(at: deadline, handles.count))
                reference.schedule(at: deadline, id: handles.count - 1)
            case 55 ..< 70:
                guard let id = handles.indices.randomElement(using: &random) else { continue }
                let cancelled = wheel.cancel(handles[id])
                #expect(cancelled == reference.cancel(id: id), "seed \(seed) step \(step): cancel \(id)")
            default:
                let target = randomAdvanceTarget()
                let fired = wheel.advance(to: target)
                let expected = reference.advance(to: target)
                #expect(fired.map(\.deadline) == expected.map(\.deadline), "seed \(seed) step \(step): advance")
                #expect(fired.map(\.payload) == expected.map(\.id), "seed \(seed) step \(step): advance")
            }

            #expect(wheel.now == reference.now)
            #expect(wheel.count == reference.pending.count)
            if let earliest = reference.pending.first?.deadline {
                let wake = wheel.nextWakeup()
                #expect(wake != nil)
                if let wake {
                    #expect(wake >= reference.now)
                    #expect(wake <= max(earliest, reference.now), "seed \(seed) step \(step): wake-up too late")
                }
            } else {
                #expect(wheel.nextWakeup() == nil)
            }
        }

        // Whatever is left fires when driven by wake-ups alone, in the reference's order.
        let expected = reference.advance(to: .max)
        let (firings, _) = driveByWakeups(&wheel)
        #expect(firings.map(\.payload) == expected.map(\.id))
        #expect(firings.allSatisfy { $0.time >= $0.deadline })
        #expect(wheel.isEmpty)
    }
}
