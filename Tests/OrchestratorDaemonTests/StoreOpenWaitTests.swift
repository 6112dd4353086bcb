import OrchestratorStore
import Testing

@testable import OrchestratorDaemon

/// `watch` on a disk too full to open the store: what waits, the retry schedule and the watchdog pings in
/// between, driven by times handed in.
@Suite struct StoreOpenWaitTests {
    @Test func onlyLackOfSpaceIsWaitedFor() {
        #expect(StoreOpenWait.waits(for: .outOfSpace))
        #expect(!StoreOpenWait.waits(for: .fatal), "a corrupt or unreadable database exits 1 as before")
        #expect(!StoreOpenWait.waits(for: .busy))
    }

    @Test func retriesWaitOneSecondDoublingToThirty() {
        var wait = StoreOpenWait(pingInterval: nil, now: .zero)
        var now = Duration.zero
        var delays: [Duration] = []
        for _ in 0..<8 {
            let delay = wait.failed(at: now)
            delays.append(delay)
            #expect(wait.nextAttempt == now + delay)
            now += delay
        }
        #expect(delays == [1, 2, 4, 8, 16, 30, 30, 30].map { Duration.seconds($0) })
        #expect(wait.failures == 8)
    }

    @Test func withoutWatchdogItWakesOnlyForTheAttempt() {
        var wait = StoreOpenWait(pingInterval: nil, now: .seconds(100))
        _ = wait.failed(at: .seconds(100))
        #expect(wait.nextWake == .seconds(101))
        // Woken early (a SIGHUP): nothing is due yet.
        #expect(wait.woke(at: .milliseconds(100_500)) == StoreOpenWait.Due())
        #expect(wait.woke(at: .seconds(101)) == StoreOpenWait.Due(ping: false, attempt: true))
    }

    /// systemd kills a unit whose pings are further apart than WATCHDOG_USEC: the pings (every half of it) go on
    /// through long retry delays and across attempts.
    @Test func watchdogPingsKeepTheirIntervalThroughTheRetries() {
        let interval = Duration.seconds(10)
        var wait = StoreOpenWait(pingInterval: interval, now: .zero)
        var now = Duration.zero
        var pings: [Duration] = []
        var attempts: [Duration] = []
        // Each attempt takes 200 ms (a ping due meanwhile waits for it); each wake comes 5 ms late.
        for _ in 0..<8 {
            now += .milliseconds(200)
            _ = wait.failed(at: now)
            while true {
                now = max(now, wait.nextWake) + .milliseconds(5)
                let due = wait.woke(at: now)
                if due.ping { pings.append(now) }
                if due.attempt {
                    attempts.append(now)
                    break
                }
            }
        }
        #expect(attempts.count == 8)
        #expect(pings.count == Int((now / interval).rounded(.down)), "\(pings.count) pings in \(now)")
        #expect(pings.first == .milliseconds(10_005))
        let gaps = zip(pings.dropFirst(), pings).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= interval && $0 <= interval + .milliseconds(205) }, "\(gaps)")
    }

    @Test func systemdIsGivenUntilTheNextAttemptAndSlack() {
        var wait = StoreOpenWait(pingInterval: nil, now: .zero)
        for _ in 0..<5 { _ = wait.failed(at: .seconds(40)) }
        #expect(wait.extendTimeout(at: .seconds(40)) == .seconds(46))
        #expect(wait.extendTimeout(at: .seconds(60)) == .seconds(30), "overdue: the slack alone")
    }

    @Test func freeSpaceIsDescribedInTheLargestWholeUnit() {
        #expect(StoreOpenWait.describe(freeBytes: 0) == "0 bytes free")
        #expect(StoreOpenWait.describe(freeBytes: 12 << 10 + 5) == "12 KiB free")
        #expect(StoreOpenWait.describe(freeBytes: 3 << 20) == "3 MiB free")
        #expect(StoreOpenWait.describe(freeBytes: nil) == "free space unknown")
    }
}
