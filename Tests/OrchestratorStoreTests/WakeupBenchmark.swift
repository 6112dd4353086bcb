import Foundation
import OrchestratorCore
import OrchestratorPostgres
import Testing

@testable import OrchestratorPostgresStore
@testable import OrchestratorStore

/// Measurements, not checks: what a wake-up takes from one daemon's enqueue to another's claim, and what the NOTIFY
/// costs the enqueue. Run beside a server, in a release build for the Swift side's share:
/// `ORCH_WAKEUP_BENCH=1 scripts/postgres swift test -c release --filter WakeupBenchmark`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["ORCH_WAKEUP_BENCH"] == "1"), .serialized)
struct WakeupBenchmark {
    private static func open() throws -> (store: PostgresStore, another: () throws -> PostgresStore, cleanUp: () -> Void) {
        let url = try #require(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"])
        let schema = "orch_bench_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        return (
            try PostgresStore(url: url, schema: schema), { try PostgresStore(url: url, schema: schema) },
            { _ = try? PostgresConnection(url: url).execute("DROP SCHEMA \"\(schema)\" CASCADE") }
        )
    }

    private static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    private static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }

    /// Insert + NOTIFY committed on handle A → B's descriptor readable → B's drain and claim committed.
    @Test func enqueueToClaimOnAnotherHandle() throws {
        let (store, another, cleanUp) = try Self.open()
        defer { cleanUp() }
        let other = try another()
        let wakeups = try #require(try other.openWakeups())
        let clock = ContinuousClock()
        var total: [Double] = []
        var toReadable: [Double] = []
        var commit: [Double] = []
        for round in 0..<220 {
            let start = clock.now
            let id = try store.write {
                try $0.insertJob(kind: .file, name: RelativePath(Array("f\(round)".utf8)), handler: "h", state: .queued,
                                 priority: 5, maxAttempts: 1, at: 1)
            }
            let committed = clock.now
            guard try readable(wakeups.descriptor, until: Date() + 10) else { Issue.record("round \(round): no wake-up"); return }
            let woke = clock.now
            #expect(try wakeups.drain().notified)
            let claimed = try other.write { try $0.claimNext(node: "b", lease: 60, kinds: [.file], agingStep: 0) }
            let end = clock.now
            #expect(claimed?.id == id)
            guard round >= 20 else { continue }  // warm-up
            total.append(Self.milliseconds(end - start))
            toReadable.append(Self.milliseconds(woke - start))
            commit.append(Self.milliseconds(committed - start))
        }
        for (name, values) in [("insert+commit", commit), ("until B readable", toReadable), ("until B claimed", total)] {
            let sorted = values.sorted()
            print(String(format: "wakeup latency %@: p50 %.3f ms, p95 %.3f ms, max %.3f ms (n=%d)",
                         name, Self.percentile(sorted, 0.5), Self.percentile(sorted, 0.95), sorted.last ?? 0, sorted.count))
        }
    }

    /// 3,000 queued jobs in transactions of 50 (and 1,000 in transactions of one, where the NOTIFY weighs most),
    /// with the NOTIFY and without, interleaved, three runs each (or `ORCH_WAKEUP_BENCH_RUNS`); a listener is open
    /// throughout, as other daemons' would be.
    @Test(arguments: [(jobs: 3000, perTransaction: 50), (jobs: 1000, perTransaction: 1)])
    func enqueueThroughputWithAndWithoutNotify(jobs: Int, perTransaction: Int) throws {
        let clock = ContinuousClock()
        var rates: [Bool: [Double]] = [true: [], false: []]
        let runs = Int(ProcessInfo.processInfo.environment["ORCH_WAKEUP_BENCH_RUNS"] ?? "") ?? 3
        for run in 0..<runs {
            // Alternating which goes first, so that neither always runs on a warmer server.
            for notifying in run % 2 == 0 ? [true, false] : [false, true] {
                let (store, another, cleanUp) = try Self.open()
                defer { cleanUp() }
                let listener = try #require(try another().openWakeups())
                store.announcesWakeups.store(notifying, ordering: .relaxed)
                let start = clock.now
                for batch in 0..<(jobs / perTransaction) {
                    try store.write { transaction in
                        for index in 0..<perTransaction {
                            _ = try transaction.insertJob(
                                kind: .file, name: RelativePath(Array("r\(run)-\(batch)-\(index)".utf8)), handler: "h",
                                state: .queued, priority: 5, maxAttempts: 1, at: 1)
                        }
                    }
                }
                let seconds = Self.milliseconds(clock.now - start) / 1000
                rates[notifying]!.append(Double(jobs) / seconds)
                _ = try listener.drain()
            }
        }
        let with = rates[true]!
        let without = rates[false]!
        let ratios = zip(with, without).map { $0 / $1 }
        print("""
            enqueue \(jobs) jobs, \(perTransaction) per transaction: jobs/s with NOTIFY \(with.map { Int($0) }), \
            without \(without.map { Int($0) }); with/without per run \(ratios.map { String(format: "%.3f", $0) }), \
            median \(String(format: "%.3f", ratios.sorted()[ratios.count / 2]))
            """)
    }
}
