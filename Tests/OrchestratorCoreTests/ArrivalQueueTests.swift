import TestSupport
import Testing

@testable import OrchestratorCore

@Suite struct ArrivalQueueTests {
    func drain(_ queue: inout ArrivalQueue<String>) -> [String] {
        var order: [String] = []
        while let name = queue.next() { order.append(name) }
        return order
    }

    @Test func higherPriorityFirstAndArrivalOrderWithinAPriority() {
        var queue = ArrivalQueue<String>()
        for (name, priority) in [("low1", 1), ("mid1", 5), ("low2", 1), ("high1", 9), ("mid2", 5), ("high2", 9)] {
            queue.add(name, priority: priority)
        }
        #expect(queue.count == 6)
        #expect(drain(&queue) == ["high1", "high2", "mid1", "mid2", "low1", "low2"])
        #expect(queue.isEmpty)
        #expect(queue.next() == nil)
    }

    /// An urgent file dropped after a burst is claimed before the burst's rest, which is what keeps it ahead in the
    /// ready queue too.
    @Test func anUrgentArrivalAfterABurstIsTakenNext() {
        var queue = ArrivalQueue<String>()
        for index in 0..<1000 { queue.add("bulk-\(index)", priority: 0) }
        #expect(queue.next() == "bulk-0")
        queue.add("urgent", priority: 10)
        #expect(queue.next() == "urgent")
        #expect(queue.next() == "bulk-1")
        #expect(queue.count == 998)
    }

    /// Events announce a file more than once (moved in, then a sweep's walk, a settle timer): it is claimed once, in
    /// its first place.
    @Test func aNameAddedTwiceKeepsItsFirstPlace() {
        var queue = ArrivalQueue<String>()
        queue.add("a", priority: 1)
        queue.add("b", priority: 1)
        queue.add("a", priority: 5)
        #expect(queue.count == 2)
        #expect(queue.contains("a"))
        #expect(drain(&queue) == ["a", "b"])
        #expect(!queue.contains("a"))
        // Taken, it may arrive again (a file of the same name, later).
        queue.add("a", priority: 1)
        #expect(drain(&queue) == ["a"])
    }

    @Test func theTopPriorityIsTheNextNamesOwn() {
        var queue = ArrivalQueue<String>()
        #expect(queue.topPriority == nil)
        queue.add("low", priority: 1)
        queue.add("high", priority: 9)
        #expect(queue.topPriority == 9)
        #expect(queue.next() == "high")
        #expect(queue.topPriority == 1)
        #expect(queue.next() == "low")
        #expect(queue.topPriority == nil)
    }

    /// What the dispatcher compares an arrival's priority with: the jobs queued at or above it.
    @Test func theReadyQueueCountsTheJobsAtOrAboveAPriority() {
        var ready = ReadyQueue<Int>(agingStep: 0)
        for (id, priority) in [(1, 0), (2, 0), (3, 5), (4, 9), (5, 20)] { ready.push(id, priority: priority, at: 0) }
        #expect(ready.count(atLeast: 0) == 5)
        #expect(ready.count(atLeast: 1) == 3)
        #expect(ready.count(atLeast: 9) == 2)
        #expect(ready.count(atLeast: 10) == 1)  // 20 is kept at the top level
        #expect(ready.count(atLeast: -3) == 5)
        _ = ready.pop(at: 0)
        #expect(ready.count(atLeast: 9) == 1)
    }

    @Test func removeAllForgetsEverything() {
        var queue = ArrivalQueue<String>()
        queue.add("a", priority: 1)
        queue.add("b", priority: 3)
        queue.removeAll()
        #expect(queue.isEmpty)
        #expect(queue.next() == nil)
        queue.add("c", priority: 2)
        #expect(drain(&queue) == ["c"])
    }
}
