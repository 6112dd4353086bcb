import Foundation
import Testing

/// The one queue, held back by `max_concurrent = 1` so that its order is visible.
@Suite struct PriorityTests {
    /// `block*` waits for a `release` file; every worker appends its file name to `order.log`.
    static func config(starvationAfter: String) -> String {
        let record = "echo \"$ORCH_NAME\" >> ../order.log"
        return """
            [inbox]
            settle = "100ms"

            [limits]
            max_concurrent = 1
            starvation_after = "\(starvationAfter)"
            shutdown_grace = "5s"

            [[handler]]
            name = "blocker"
            match = ["block*"]
            command = ["/bin/sh", "-c", 'while [ ! -e ../release ]; do sleep 0.02; done; \(record)']

            [[handler]]
            name = "urgent"
            match = ["high*"]
            priority = 9
            command = ["/bin/sh", "-c", '\(record)']

            [[handler]]
            name = "background"
            match = ["low*"]
            priority = 1
            command = ["/bin/sh", "-c", '\(record)']

            [[handler]]
            name = "normal"
            command = ["/bin/sh", "-c", '\(record)']
            """
    }

    func holdQueue(_ instance: TestInstance) throws {
        try instance.startDaemon()
        try instance.drop("block")
        try instance.waitUntil("the blocker runs", timeout: 10) {
            ((try? instance.json(["status"])) as? [String: Any]).flatMap { ($0["running"] as? [Any])?.count } == 1
        }
    }

    func queued(_ instance: TestInstance) throws -> Int {
        let status = try #require(try instance.json(["status"]) as? [String: Any])
        return (status["jobs"] as? [String: Int])?["queued"] ?? -1
    }

    @Test func higherPriorityRunsFirstAndEqualsInArrivalOrder() throws {
        let instance = try TestInstance(config: Self.config(starvationAfter: "30m"))
        try holdQueue(instance)
        for name in ["low1", "mid1", "high1", "low2", "high2", "mid2"] {
            try instance.drop(name)
            // One at a time, so that arrival order is the order of the drops.
            let expected = ["low1", "mid1", "high1", "low2", "high2", "mid2"].firstIndex(of: name)! + 1
            try instance.waitUntil("\(name) is queued", timeout: 10) { try queued(instance) == expected }
        }
        #expect(FileManager.default.createFile(atPath: instance.path("release"), contents: nil))
        try instance.waitUntil("all ran", timeout: 20) { instance.lines(of: "order.log").count == 7 }
        #expect(instance.lines(of: "order.log") == ["block", "high1", "high2", "mid1", "mid2", "low1", "low2"])
        instance.stopDaemon()
    }

    @Test func aJobThatWaitsLongGainsPriority() throws {
        let instance = try TestInstance(config: Self.config(starvationAfter: "1s"))
        try holdQueue(instance)
        try instance.drop("low-old")
        try instance.waitUntil("low-old is queued", timeout: 10) { try queued(instance) == 1 }
        let queuedAt = Date()
        // Priority 1 + 1 per second waited: above 5 once more than 4 s have passed.
        try waitUntil("low-old has waited 5 s", timeout: 10) { Date().timeIntervalSince(queuedAt) > 5 }
        try instance.drop("mid-new")
        try instance.drop("high-new")
        try instance.waitUntil("both are queued", timeout: 10) { try queued(instance) == 3 }
        #expect(FileManager.default.createFile(atPath: instance.path("release"), contents: nil))
        try instance.waitUntil("all ran", timeout: 20) { instance.lines(of: "order.log").count == 4 }
        // low-old (aged to 6) passes mid-new (5) but not high-new (9).
        #expect(instance.lines(of: "order.log") == ["block", "high-new", "low-old", "mid-new"])
        instance.stopDaemon()
    }
}

@Suite struct BreakerTests {
    @Test func breakerOpensParksJobsWithoutSpendingAttemptsAndClosesAfterAProbe() throws {
        let config = testConfig(
            handler: """
                command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> ../runs.log; test ! -e ../broken']
                max_attempts = 1
                breaker = { failures = 2, cooldown = "1s" }
                """, maxConcurrent: 1)
        let instance = try TestInstance(config: config)
        #expect(FileManager.default.createFile(atPath: instance.path("broken"), contents: nil))
        try instance.startDaemon()
        try instance.drop("f1")
        try instance.waitUntil("f1 failed", timeout: 10) { instance.count(in: "Failed") == 1 }
        try instance.drop("f2")
        try instance.waitUntil("f2 failed", timeout: 10) { instance.count(in: "Failed") == 2 }

        // Open: f3 waits in breaker_wait and does not run.
        try instance.drop("f3")
        try instance.waitUntil("f3 waits for the breaker", timeout: 10) {
            let status = try #require(try instance.json(["status"]) as? [String: Any])
            return (status["jobs"] as? [String: Int])?["breaker_wait"] == 1
        }
        let status = try #require(try instance.json(["status"]) as? [String: Any])
        let breakers = try #require(status["breakers"] as? [[String: Any]])
        #expect(breakers.first?["state"] as? String == "open")
        #expect(breakers.first?["owner"] as? String == "handler test")
        #expect(instance.lines(of: "runs.log") == ["f1", "f2"])

        // Repaired: after the cooldown f3 is the probe; it succeeds and the circuit closes.
        try FileManager.default.removeItem(atPath: instance.path("broken"))
        try instance.waitUntil("f3 done", timeout: 10) { instance.names(in: "Done").contains(Array("f3".utf8)) }
        try instance.drop("f4")
        try instance.waitUntil("f4 done", timeout: 10) { instance.names(in: "Done").contains(Array("f4".utf8)) }
        let after = try #require(try instance.json(["status"]) as? [String: Any])
        #expect((after["breakers"] as? [[String: Any]])?.first?["state"] as? String == "closed")
        let shown = try #require(try instance.json(["show", "f3"]) as? [String: Any])
        #expect((shown["attempts"] as? [Any])?.count == 1, "waiting for the breaker spent no attempt")
        let states = (shown["transitions"] as? [[String: Any]])?.compactMap { $0["to"] as? String } ?? []
        #expect(states.contains("breaker_wait"))
        instance.stopDaemon()
    }
}

@Suite struct QueueAdmissionTests {
    @Test func estimatesHoldWorkBackAndABigJobStillRunsAlone() throws {
        let config = """
            [inbox]
            settle = "100ms"

            [limits]
            max_concurrent = 4
            max_cpu_percent = 80
            shutdown_grace = "5s"

            [[handler]]
            name = "big"
            match = ["big*"]
            cpu_percent = 90
            command = ["/bin/sh", "-c", 'while [ ! -e ../release-big ]; do sleep 0.02; done']

            [[handler]]
            name = "heavy"
            cpu_percent = 60
            command = ["/bin/sh", "-c", 'while [ ! -e ../release ]; do sleep 0.02; done']
            """
        let instance = try TestInstance(config: config)
        try instance.startDaemon()
        func status() throws -> [String: Any] { try #require(try instance.json(["status"]) as? [String: Any]) }
        func running() throws -> Int { (try status()["running"] as? [Any])?.count ?? -1 }

        // 90% on its own: above max_cpu_percent, but nothing else runs, so it runs.
        try instance.drop("big1")
        try instance.waitUntil("big1 runs", timeout: 10) { try running() == 1 }
        try instance.drop("h1")
        try instance.waitUntil("h1 waits behind big1", timeout: 10) {
            (try status()["queue_waits_because"] as? String)?.contains("max_cpu_percent 80") == true
        }
        #expect(try running() == 1)
        #expect(FileManager.default.createFile(atPath: instance.path("release-big"), contents: nil))

        // Two 60% jobs do not fit under 80% together, although max_concurrent is 4.
        try instance.drop("h2")
        try instance.waitUntil("h1 runs and h2 waits", timeout: 10) {
            let current = try status()
            return (current["running"] as? [Any])?.count == 1 && (current["jobs"] as? [String: Int])?["queued"] == 1
        }
        #expect((try status()["queue_waits_because"] as? String) == "estimates: running 60% + next 60% CPU > max_cpu_percent 80")
        #expect(FileManager.default.createFile(atPath: instance.path("release"), contents: nil))
        try instance.waitUntil("all done", timeout: 10) { instance.count(in: "Done") == 3 }
        #expect(try status()["queue_waits_because"] is NSNull)
        instance.stopDaemon()
    }
}
