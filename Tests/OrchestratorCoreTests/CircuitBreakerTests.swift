import Testing

@testable import OrchestratorCore

@Suite struct CircuitBreakerTests {
    @Test func opensAfterConsecutiveFailuresAndASuccessResets() {
        var breaker = CircuitBreaker(threshold: 3, cooldown: 1000)
        let r1 = breaker.recordFailure(at: 0)
        #expect(!r1)
        let r2 = breaker.recordFailure(at: 0)
        #expect(!r2)
        breaker.recordSuccess()
        let r3 = breaker.recordFailure(at: 0)
        #expect(!r3)
        let r4 = breaker.recordFailure(at: 0)
        #expect(!r4)
        let r5 = breaker.admit(at: 0)
        #expect(r5)
        let r6 = breaker.recordFailure(at: 10)
        #expect(r6)
        #expect(breaker.state == .open(until: 1010))
        let r7 = breaker.admit(at: 1009)
        #expect(!r7)
        #expect(breaker.reopensAt == 1010)
    }

    @Test func oneProbeAfterTheCooldownDecides() {
        var breaker = CircuitBreaker(threshold: 1, cooldown: 500)
        breaker.recordFailure(at: 0)
        let r8 = breaker.admit(at: 500)
        #expect(r8)
        let r9 = breaker.admit(at: 501)
        #expect(!r9, "only one probe at a time")
        // The probe fails: open for another cooldown.
        let r10 = breaker.recordFailure(at: 600)
        #expect(r10)
        let r11 = breaker.admit(at: 1099)
        #expect(!r11)
        let r12 = breaker.admit(at: 1100)
        #expect(r12)
        breaker.recordSuccess()
        #expect(breaker.state == .closed)
        let first = breaker.admit(at: 1100)
        let second = breaker.admit(at: 1100)
        #expect(first && second)
    }

    @Test func aProbeCutShortLetsTheNextOneThrough() {
        var breaker = CircuitBreaker(threshold: 1, cooldown: 10)
        breaker.recordFailure(at: 0)
        let r13 = breaker.admit(at: 10)
        #expect(r13)
        breaker.recordNoVerdict()
        let r14 = breaker.admit(at: 11)
        #expect(r14)
    }
}
