import TestSupport
import Testing
@testable import OrchestratorCore

struct BackoffPolicyTests {
    @Test func doublesFromTheBaseWithinTenPercent() {
        var generator = SplitMix64(state: 7)
        let policy = BackoffPolicy(base: .seconds(30))
        for (attempt, nominal) in [(1, 30_000.0), (2, 60_000.0), (3, 120_000.0), (4, 240_000.0)] {
            for _ in 0..<50 {
                let delay = Double(policy.delay(afterFailedAttempt: attempt, using: &generator).wholeMilliseconds)
                #expect(delay >= nominal * 0.9 - 1 && delay <= nominal * 1.1 + 1, "attempt \(attempt): \(delay)")
            }
        }
    }

    @Test func jitterSpreadsDelays() {
        var generator = SplitMix64(state: 1)
        let policy = BackoffPolicy(base: .seconds(10))
        let delays = Set((0..<20).map { _ in policy.delay(afterFailedAttempt: 1, using: &generator) })
        #expect(delays.count > 10)
    }

    @Test func capIsRespectedEvenForHugeAttemptNumbers() {
        var generator = SplitMix64(state: 3)
        let policy = BackoffPolicy(base: .seconds(30), cap: .seconds(300))
        for attempt in [10, 63, 64, 1000, Int.max] {
            let delay = policy.delay(afterFailedAttempt: attempt, using: &generator)
            #expect(delay <= Duration.seconds(330) && delay >= Duration.seconds(270))
        }
        #expect(BackoffPolicy(base: .seconds(30)).cap == .seconds(3600))
        #expect(BackoffPolicy(base: .seconds(7200)).cap == .seconds(7200))
    }

    @Test func sameSeedSameDelays() {
        var first = SplitMix64(state: 99)
        var second = SplitMix64(state: 99)
        let policy = BackoffPolicy(base: .milliseconds(50))
        #expect((1...5).map { policy.delay(afterFailedAttempt: $0, using: &first) }
            == (1...5).map { policy.delay(afterFailedAttempt: $0, using: &second) })
    }
}

@Suite struct DurationTextTests {
    @Test func configTextRoundTrips() throws {
        for text in ["500ms", "30s", "10m", "1h30m", "2d", "1d2h3m4s5ms"] {
            #expect(try Duration(parsing: text).configText == text)
        }
    }
}
