import TestSupport
import Testing

@testable import OrchestratorCore

@Suite struct ReadyQueueTests {
    func drain(_ queue: inout ReadyQueue<String>, at now: UInt64) -> [String] {
        var order: [String] = []
        while let entry = queue.pop(at: now) { order.append(entry.id) }
        return order
    }

    @Test func higherPriorityFirstAndFIFOWithinAPriority() {
        var queue = ReadyQueue<String>(agingStep: 0)
        for (id, priority) in [("low1", 1), ("mid1", 5), ("high1", 9), ("low2", 1), ("high2", 9), ("mid2", 5)] {
            queue.push(id, priority: priority, at: 0)
        }
        #expect(queue.count == 6)
        #expect(drain(&queue, at: 1_000_000) == ["high1", "high2", "mid1", "mid2", "low1", "low2"])
        #expect(queue.isEmpty)
    }

    @Test func waitingJobsAgeOnePriorityPerStepUpToTen() {
        var queue = ReadyQueue<String>(agingStep: 1000)
        queue.push("old-low", priority: 1, at: 0)
        queue.push("new-mid", priority: 5, at: 5_000)
        // At 5.5 s the low job has gained 5: 1 + 5 = 6 > 5.
        let r1 = queue.peek(at: 5_500)
        #expect(r1?.id == "old-low")
        // At 3 s it has only gained 3 (4 < 5).
        let r2 = queue.peek(at: 3_000)
        #expect(r2?.id == "new-mid")
        // A tie goes to the job queued first.
        let r3 = queue.peek(at: 4_000)
        #expect(r3?.id == "old-low")
        let entry = queue.peek(at: 999_000)!
        #expect(queue.effectivePriority(entry, at: 999_000) == 10)
    }

    @Test func aManualRunAboveTenIsAheadOfAgedJobs() {
        var queue = ReadyQueue<String>(agingStep: 1)
        queue.push("aged", priority: 1, at: 0)
        queue.push("manual", priority: 11, at: 1_000_000)
        let r4 = queue.pop(at: 1_000_000)
        #expect(r4?.id == "manual")
        let r5 = queue.pop(at: 1_000_000)
        #expect(r5?.id == "aged")
    }

    @Test func staleEntriesAreDropped() {
        var queue = ReadyQueue<String>(agingStep: 0)
        queue.push("gone", priority: 5, at: 0)
        queue.push("here", priority: 3, at: 0)
        let r6 = queue.pop(at: 0) { $0 == "gone" }
        #expect(r6?.id == "here")
        #expect(queue.isEmpty)
    }

    @Test func popOrderIsEffectivePriorityThenArrival() {
        var queue = ReadyQueue<String>(agingStep: 100)
        var generator = SplitMix64(state: 3)
        var reference: [(id: String, priority: Int, queuedAt: UInt64)] = []
        for index in 0..<200 {
            let priority = Int(generator.next() % 11)
            let queuedAt = UInt64(index * 7)
            queue.push("j\(index)", priority: priority, at: queuedAt)
            // At 2,000 ms a job has gained one level per 100 ms waited, up to 10 (unless it started above).
            let aged = priority >= 10 ? priority : min(10, priority + Int((2_000 - queuedAt) / 100))
            reference.append(("j\(index)", aged, queuedAt))
        }
        let expected = reference.sorted { $0.priority != $1.priority ? $0.priority > $1.priority : $0.queuedAt < $1.queuedAt }
        #expect(drain(&queue, at: 2_000) == expected.map(\.id))
    }
}
