import TestSupport
import Testing

@testable import OrchestratorCore

@Suite struct ClaimPacingTests {
    let pacing = ClaimPacing(maxConcurrent: 2)

    @Test func sixteenPerWorkerAtLeastSixtyFourAndAQuarterOfThatToStartAgain() {
        #expect(pacing.highWater == 64 && pacing.lowWater == 16)
        #expect(ClaimPacing(maxConcurrent: 8).highWater == 128)
        #expect(ClaimPacing(maxConcurrent: 8).lowWater == 32)
    }

    /// Claims come a batch at a time: nothing while the queue holds a quarter or more, then up to the high water.
    @Test func theQueueIsRefilledOnlyOnceItIsLow() {
        #expect(pacing.room(queued: 0, uncommitted: 0) == 64)
        #expect(pacing.room(queued: 15, uncommitted: 0) == 49)
        #expect(pacing.room(queued: 16, uncommitted: 0) == 0)
        #expect(pacing.room(queued: 63, uncommitted: 0) == 0)
        // A batch under way (claims not yet recorded) goes on to the high water, whatever the queue holds.
        #expect(pacing.room(queued: 20, uncommitted: 4) == 40)
        #expect(pacing.room(queued: 60, uncommitted: 4) == 0)
    }

    @Test func aBurstIsTakenAQueuesWorthAtATimeInArrivalOrder() {
        var arrivals = ArrivalQueue<Int>()
        for index in 0..<100 { arrivals.add(index, priority: 5) }
        let first = pacing.take(from: &arrivals, queued: 0, uncommitted: 0) { _ in 0 }
        #expect(first == Array(0..<64))
        // The workers took 40: 24 left, not low yet.
        #expect(pacing.take(from: &arrivals, queued: 24, uncommitted: 0) { _ in 24 }.isEmpty)
        #expect(!pacing.canTake(from: arrivals, queued: 24, uncommitted: 0) { _ in 24 })
        // 10 left: refilled to 64.
        #expect(pacing.canTake(from: arrivals, queued: 10, uncommitted: 0) { _ in 10 })
        #expect(pacing.take(from: &arrivals, queued: 10, uncommitted: 0) { _ in 10 } == Array(64..<100))
        #expect(arrivals.isEmpty)
        #expect(!pacing.canTake(from: arrivals, queued: 0, uncommitted: 0) { _ in 0 })
    }

    /// An urgent file behind a burst, with the queue full of the burst: it goes past the queue, and only it.
    @Test func anUrgentArrivalGoesPastAFullQueue() {
        var arrivals = ArrivalQueue<String>()
        for index in 0..<50 { arrivals.add("bulk\(index)", priority: 5) }
        arrivals.add("urgent", priority: 9)
        let queuedAtOrAbove = { (priority: Int) in priority <= 5 ? 64 : 0 }
        #expect(pacing.canTake(from: arrivals, queued: 64, uncommitted: 0, queuedAtOrAbove: queuedAtOrAbove))
        #expect(pacing.take(from: &arrivals, queued: 64, uncommitted: 0, queuedAtOrAbove: queuedAtOrAbove) == ["urgent"])
        #expect(arrivals.count == 50)
        #expect(!pacing.canTake(from: arrivals, queued: 64, uncommitted: 0, queuedAtOrAbove: queuedAtOrAbove))
    }

    /// Past the queue at most a low water's worth per priority: a flood of urgent files does not claim without bound.
    @Test func urgentArrivalsPastTheQueueAreBounded() {
        var arrivals = ArrivalQueue<Int>()
        for index in 0..<100 { arrivals.add(index, priority: 9) }
        let taken = pacing.take(from: &arrivals, queued: 64, uncommitted: 0) { $0 <= 9 ? 3 : 0 }
        #expect(taken == Array(0..<13))  // 3 queued at 9 already, 13 more makes the low water of 16
        #expect(pacing.take(from: &arrivals, queued: 77, uncommitted: 0) { $0 <= 9 ? 16 : 0 }.isEmpty)
    }
}
