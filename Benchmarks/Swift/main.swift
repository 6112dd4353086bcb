// Micro-benchmarks of the pure scheduling pieces, run by `Benchmarks/bench.sh wheel` (release build):
// the timer wheel against a binary heap from swift-collections on the same timers, and cron next-fire
// throughput. Figures are for comparison within one run only.
//
//   orchestrator-bench                 everything
//   orchestrator-bench metrics         only the cost of recording metrics per file and of a scrape
//   orchestrator-bench cron [EXPR...]  only cron; EXPRs (default: bench.sh's five) for the fires-in-sequence
//                                      figure, the in-process counterpart of `bench.sh cron-cli`
import Foundation
import HeapModule
import OrchestratorCore
import OrchestratorCron

struct Generator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func seconds(_ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    body()
    let elapsed = clock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// A heap entry: deadline, then insertion order (FIFO among equal deadlines, as the wheel).
struct HeapTimer: Comparable {
    let deadline: UInt64
    let id: Int
    static func < (a: HeapTimer, b: HeapTimer) -> Bool { (a.deadline, a.id) < (b.deadline, b.id) }
}

let count = Int(ProcessInfo.processInfo.environment["TIMERS"] ?? "") ?? 1_000_000
// Deadlines from 1 ms to about 2 hours: backoffs, timeouts, settle checks and sweeps, with far timers
// that cascade through the wheel's levels.
var generator = Generator(state: 42)
let deadlines = (0..<count).map { _ in UInt64.random(in: 1...7_200_000, using: &generator) }
let cancelled = (0..<count).map { _ in Bool.random(using: &generator) }
let step: UInt64 = 1000  // the dispatcher advances to "now" on each wake-up; here every simulated second

func runWheel(cancelHalf: Bool) -> (schedule: Double, cancel: Double, fire: Double, fired: Int) {
    var wheel = TimerWheel<Int>(now: 0)
    var handles: [TimerHandle] = []
    handles.reserveCapacity(count)
    let schedule = seconds { for (index, deadline) in deadlines.enumerated() { handles.append(wheel.schedule(at: deadline, index)) } }
    let cancel = seconds {
        guard cancelHalf else { return }
        for index in 0..<count where cancelled[index] { _ = wheel.cancel(handles[index]) }
    }
    var fired = 0
    let fire = seconds {
        var time: UInt64 = 0
        while !wheel.isEmpty {
            time += step
            fired += wheel.advance(to: time).count
        }
    }
    return (schedule, cancel, fire, fired)
}

func runHeap(cancelHalf: Bool) -> (schedule: Double, cancel: Double, fire: Double, fired: Int) {
    var heap = Heap<HeapTimer>()
    // A heap cannot remove from the middle cheaply; cancelling marks, and firing skips the marked (the usual way).
    var dead = [Bool](repeating: false, count: count)
    let schedule = seconds { for (index, deadline) in deadlines.enumerated() { heap.insert(HeapTimer(deadline: deadline, id: index)) } }
    let cancel = seconds {
        guard cancelHalf else { return }
        for index in 0..<count where cancelled[index] { dead[index] = true }
    }
    var fired = 0
    let fire = seconds {
        var time: UInt64 = 0
        while !heap.isEmpty {
            time += step
            while let top = heap.min, top.deadline <= time {
                heap.removeMin()
                if !dead[top.id] { fired += 1 }
            }
        }
    }
    return (schedule, cancel, fire, fired)
}

func report(_ name: String, _ result: (schedule: Double, cancel: Double, fire: Double, fired: Int)) -> Double {
    let total = result.schedule + result.cancel + result.fire
    let label = name.padding(toLength: 24, withPad: " ", startingAt: 0)
    print(label + String(format: "schedule %6.3f s  cancel %6.3f s  fire %6.3f s  total %6.3f s  (%d fired)",
                         result.schedule, result.cancel, result.fire, total, result.fired))
    return total
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "metrics" {
    runMetricsBench()
    exit(0)
}
let onlyCron = arguments.first == "cron"
if !onlyCron {
    print("\(count) timers, deadlines 1 ms ... 2 h, advanced in 1 s steps")
    let wheelAll = report("wheel, all fire", runWheel(cancelHalf: false))
    let heapAll = report("heap, all fire", runHeap(cancelHalf: false))
    let wheelHalf = report("wheel, half cancelled", runWheel(cancelHalf: true))
    let heapHalf = report("heap, half cancelled", runHeap(cancelHalf: true))
    print(String(format: "heap / wheel time: all fire %.2f, half cancelled %.2f", heapAll / wheelAll, heapHalf / wheelHalf))
}

// Cron: next-fire computations per second over a mixed set of expressions and zones.
let expressions = [
    "*/15 * * * *", "30 2 * * *", "0 9 * * MON-FRI", "0 0 1,15 * FRI", "*/5 9-17 * * 1-5", "0 0 29 2 *",
    "@hourly", "@daily", "0 0 1 1 *", "15,45 */2 * * *", "0 0 */2 * MON", "0 12 13 * 5", "* * * * *",
    "0 4 * * 0", "30 1 1-7 * *", "0 0 29 2 */7",
]
var schedules: [CronSchedule] = []
for zone in ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"] {
    let rules = try loadZone(zone)
    for text in expressions { schedules.append(CronSchedule(expression: try CronExpression(parsing: text), zone: rules)) }
}
let starts = (0..<4096).map { _ in Int64.random(in: 946_684_800...2_208_988_800, using: &generator) }  // 2000-2040
var checksum: Int64 = 0
let calls = 200_000
let cronTime = seconds {
    for index in 0..<calls {
        checksum &+= schedules[index % schedules.count].nextFire(after: starts[(index &* 7) % starts.count]) ?? 0
    }
}
print(String(format: "cron next-fire: %.0f computations/s (%d schedules: 16 expressions x 4 zones)", Double(calls) / cronTime, schedules.count))
let rare = try CronSchedule(expression: CronExpression(parsing: "0 0 29 2 */7"), zone: loadZone("Europe/Berlin"))
let rareCalls = 20_000
let rareTime = seconds { for index in 0..<rareCalls { checksum &+= rare.nextFire(after: starts[index % starts.count]) ?? 0 } }
print(String(format: "cron next-fire, 29 February on a Sunday in Europe/Berlin: %.0f computations/s", Double(rareCalls) / rareTime))

// Cron fires in sequence, as `cron next --count N` computes them: 1,000,000 fires of each expression from
// 2026-01-01 in Europe/Berlin, evaluation alone and with each line written into memory (no I/O).
let sequenceExpressions =
    onlyCron && arguments.count > 1
    ? Array(arguments.dropFirst()) : ["*/5 * * * *", "0 9 * * 1-5", "30 2 * * *", "*/15 1-3 * * *", "0 0 1 * *"]
let berlin = try loadZone("Europe/Berlin")
let sequenceSchedules = try sequenceExpressions.map { CronSchedule(expression: try CronExpression(parsing: $0), zone: berlin) }
let firesEach = 1_000_000
let sequenceStart: Int64 = 1_767_225_600  // 2026-01-01T00:00:00Z
let evaluationTime = seconds {
    for schedule in sequenceSchedules {
        var fires = schedule.fires(after: sequenceStart)
        for _ in 0..<firesEach { checksum &+= fires.next()?.instant ?? 0 }
    }
}
let block = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16 + CronTimestampWriter.maximumLineLength)
let linesTime = seconds {
    for schedule in sequenceSchedules {
        var fires = schedule.fires(after: sequenceStart)
        var writer = CronTimestampWriter()
        var used = 0
        for _ in 0..<firesEach {
            guard let fire = fires.next() else { break }
            used += writer.writeLine(fire.instant, offset: fire.offset, to: block + used)
            if used >= 1 << 16 {
                checksum &+= Int64(block[used - 2])
                used = 0
            }
        }
    }
}
block.deallocate()
let sequenceFires = Double(firesEach * sequenceSchedules.count)
print(String(format: "cron fires in sequence, %d expressions in Europe/Berlin: %.0f fires/s evaluated, %.0f fires/s with lines written to memory",
             sequenceSchedules.count, sequenceFires / evaluationTime, sequenceFires / linesTime))
if checksum == 0 { print("(checksum 0)") }
