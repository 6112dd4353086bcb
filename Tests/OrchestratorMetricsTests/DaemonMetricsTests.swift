import CoreMetrics
import Foundation
import OrchestratorCore
import OrchestratorMetrics
import TestSupport
import Testing

@Suite struct DaemonMetricsTests {
    private func parse(_ metrics: DaemonMetrics, live: LiveGauges? = LiveGauges()) throws -> PrometheusText {
        try PrometheusText(metrics.prometheusText(live: live))
    }

    @Test func runsAreCountedByHandlerAndResult() throws {
        let metrics = DaemonMetrics()
        let convert = metrics.meter(for: .handler("convert"))
        convert.attemptEnded(.succeeded, seconds: 0.0015)
        convert.attemptEnded(.succeeded, seconds: 0.2)
        convert.attemptEnded(.failed, seconds: 12)
        convert.attemptEnded(.timedOut, seconds: 3600)
        convert.attemptEnded(.startFailed, seconds: nil)
        metrics.meter(for: .task("backup")).attemptEnded(.cancelled, seconds: 1)
        metrics.meter(for: .upload("convert")).attemptEnded(.interrupted, seconds: 2)

        let text = try parse(metrics)
        let runs = "orchestrator_handler_runs_total"
        #expect(text.types[runs] == "counter")
        #expect(text.value(runs, ["handler": "convert", "result": "succeeded"]) == 2)
        #expect(text.value(runs, ["handler": "convert", "result": "failed"]) == 1)
        #expect(text.value(runs, ["handler": "convert", "result": "timed_out"]) == 1)
        #expect(text.value(runs, ["handler": "convert", "result": "start_failed"]) == 1)
        // Every result of a metered owner is there from its first run on, 0 until it happens.
        #expect(text.value(runs, ["handler": "convert", "result": "cancelled"]) == 0)
        #expect(text.samples(named: runs).count == RunResult.allCases.count)
        #expect(text.value("orchestrator_task_runs_total", ["task": "backup", "result": "cancelled"]) == 1)
        #expect(text.value("orchestrator_upload_runs_total", ["handler": "convert", "result": "interrupted"]) == 1)
        // An upload's runs are not its handler's.
        #expect(text.value(runs, ["handler": "convert", "result": "interrupted"]) == 0)
    }

    @Test func durationHistogramIsCumulativeFromAMillisecondToHours() throws {
        let metrics = DaemonMetrics()
        let meter = metrics.meter(for: .handler("convert"))
        for seconds in [0.0009, 0.0015, 0.2, 12, 3600, 9000] { meter.attemptEnded(.succeeded, seconds: seconds) }
        meter.attemptEnded(.startFailed, seconds: nil)  // never ran: no duration

        let text = try parse(metrics)
        let name = "orchestrator_handler_run_duration_seconds"
        #expect(text.types[name] == "histogram")
        #expect(text.value(name + "_count", ["handler": "convert"]) == 6)
        let sum = try #require(text.value(name + "_sum", ["handler": "convert"]))
        #expect(abs(sum - 12612.2024) < 1e-6)
        try expectCumulative(text, name, labels: ["handler": "convert"], count: 6)
        let buckets = Dictionary(
            uniqueKeysWithValues: text.samples(named: name + "_bucket").map { (Double($0.labels["le"]!.replacingInf)!, $0.value) })
        #expect(buckets[0.001] == 1)
        #expect(buckets[0.0025] == 2)
        #expect(buckets[0.25] == 3)
        #expect(buckets[30] == 4)
        #expect(buckets[3600] == 5)
        #expect(buckets[7200] == 5)
        #expect(buckets[.infinity] == 6)
    }

    @Test func queueWaitIsByKindOfJob() throws {
        let metrics = DaemonMetrics()
        metrics.meter(for: .handler("a")).started(afterWaiting: 0.003)
        metrics.meter(for: .handler("b")).started(afterWaiting: 40)
        metrics.meter(for: .task("nightly")).started(afterWaiting: 0)

        let text = try parse(metrics)
        let name = "orchestrator_queue_wait_seconds"
        #expect(text.value(name + "_count", ["kind": "file"]) == 2)
        #expect(text.value(name + "_count", ["kind": "task"]) == 1)
        #expect(text.value(name + "_count", ["kind": "upload"]) == 0)
        #expect(text.value(name + "_sum", ["kind": "file"]) == 40.003)
        for kind in ["file", "task", "upload"] {
            try expectCumulative(text, name, labels: ["kind": kind], count: kind == "file" ? 2 : kind == "task" ? 1 : 0)
        }
    }

    @Test func gaugesShowTheLiveStateHandedIn() throws {
        let metrics = DaemonMetrics()
        let live = LiveGauges(
            jobs: [.queued: 3, .running: 2, .breakerWait: 1], queueDepth: 3, stuckFiles: 4, diskPaused: true,
            breakers: [.handler("convert"): .open, .task("backup"): .halfOpen, .handler("resize"): .closed])
        var text = try parse(metrics, live: live)
        #expect(text.types["orchestrator_jobs"] == "gauge")
        #expect(text.value("orchestrator_jobs", ["state": "queued"]) == 3)
        #expect(text.value("orchestrator_jobs", ["state": "running"]) == 2)
        #expect(text.value("orchestrator_jobs", ["state": "breaker_wait"]) == 1)
        #expect(text.value("orchestrator_jobs", ["state": "retry_wait"]) == 0)
        #expect(text.value("orchestrator_jobs", ["state": "paused"]) == 0)
        #expect(text.value("orchestrator_jobs", ["state": "done"]) == nil, "finished jobs are counted, not gauged")
        #expect(text.value("orchestrator_queue_depth") == 3)
        #expect(text.value("orchestrator_stuck_files") == 4)
        #expect(text.value("orchestrator_disk_paused") == 1)
        #expect(text.value("orchestrator_handler_breaker_state", ["handler": "convert"]) == 2)
        #expect(text.value("orchestrator_handler_breaker_state", ["handler": "resize"]) == 0)
        #expect(text.value("orchestrator_task_breaker_state", ["task": "backup"]) == 1)

        // The dispatcher did not answer: the gauges stay as they were.
        text = try parse(metrics, live: nil)
        #expect(text.value("orchestrator_jobs", ["state": "queued"]) == 3)

        // A reload removed a breaker: its series goes.
        text = try parse(metrics, live: LiveGauges(breakers: [.handler("resize"): .halfOpen]))
        #expect(text.value("orchestrator_handler_breaker_state", ["handler": "resize"]) == 1)
        #expect(text.samples(named: "orchestrator_handler_breaker_state").count == 1)
        #expect(text.samples(named: "orchestrator_task_breaker_state").isEmpty)
        #expect(text.value("orchestrator_disk_paused") == 0)
        #expect(text.value("orchestrator_jobs", ["state": "queued"]) == 0)
    }

    @Test func theRendererReadsGaugesFromTheSourceBoundLater() throws {
        let metrics = DaemonMetrics()
        // Handed to the HTTP server before the dispatcher exists: counters only, gauges at 0.
        let render: @Sendable () -> String = { metrics.prometheusText() }
        metrics.inotifyOverflowed()
        var text = try PrometheusText(render())
        #expect(text.value("orchestrator_inotify_overflows_total") == 1)
        #expect(text.value("orchestrator_queue_depth") == 0)

        let answer = Answer()
        metrics.readGauges { answer.next() }
        answer.set(LiveGauges(jobs: [.queued: 5], queueDepth: 5))
        text = try PrometheusText(render())
        #expect(text.value("orchestrator_queue_depth") == 5)
        // No answer in time: the last values stay.
        answer.set(nil)
        text = try PrometheusText(render())
        #expect(text.value("orchestrator_queue_depth") == 5)
        #expect(answer.calls == 2)
    }

    @Test func rareEventsAreCountedByTheirFixedWords() throws {
        let metrics = DaemonMetrics()
        metrics.inotifyOverflowed()
        metrics.inotifyOverflowed()
        metrics.inboxScanStarted(reason: "overflow")
        metrics.inboxScanStarted(reason: "start")
        metrics.inboxScanStarted(reason: "overflow")
        metrics.sweepFinished("ingest", result: "ok", items: 3)
        metrics.sweepFinished("ingest", result: "ok", items: 0)
        metrics.sweepFinished("watchdog", result: "unhealthy")
        metrics.sweepFinished("prune", result: "skipped")
        metrics.admissionRefused(.hostCPU)
        metrics.breakerOpened(.handler("convert"))
        metrics.breakerOpened(.handler("convert"))
        metrics.breakerOpened(.task("backup"))
        metrics.diskPauseBegan()
        metrics.jobFinished(.file, succeeded: true)
        metrics.jobFinished(.file, succeeded: false)
        metrics.jobFinished(.file, succeeded: true)

        let text = try parse(metrics)
        #expect(text.value("orchestrator_inotify_overflows_total") == 2)
        #expect(text.value("orchestrator_inbox_scans_total", ["reason": "overflow"]) == 2)
        #expect(text.value("orchestrator_inbox_scans_total", ["reason": "start"]) == 1)
        #expect(text.value("orchestrator_sweeps_total", ["sweep": "ingest", "result": "ok"]) == 2)
        #expect(text.value("orchestrator_sweeps_total", ["sweep": "watchdog", "result": "unhealthy"]) == 1)
        #expect(text.value("orchestrator_sweeps_total", ["sweep": "prune", "result": "skipped"]) == 1)
        #expect(text.value("orchestrator_sweep_items_total", ["sweep": "ingest"]) == 3)
        #expect(text.value("orchestrator_admission_refusals_total", ["reason": "host_cpu"]) == 1)
        // Every reason is there from the start, so that a rate over it never lacks a series.
        for limit in AdmissionLimit.allCases where limit != .hostCPU {
            #expect(text.value("orchestrator_admission_refusals_total", ["reason": limit.rawValue]) == 0)
        }
        #expect(text.value("orchestrator_handler_breaker_opens_total", ["handler": "convert"]) == 2)
        #expect(text.value("orchestrator_task_breaker_opens_total", ["task": "backup"]) == 1)
        #expect(text.value("orchestrator_disk_pauses_total") == 1)
        #expect(text.value("orchestrator_jobs_finished_total", ["kind": "file", "state": "done"]) == 2)
        #expect(text.value("orchestrator_jobs_finished_total", ["kind": "file", "state": "failed"]) == 1)
        #expect(text.value("orchestrator_jobs_finished_total", ["kind": "task", "state": "done"]) == 0)
    }

    @Test func everyFamilyHasTypeAndHelpAndUnitsInItsName() throws {
        let metrics = DaemonMetrics()
        metrics.meter(for: .handler("a")).attemptEnded(.succeeded, seconds: 1)
        metrics.meter(for: .task("t")).attemptEnded(.succeeded, seconds: 1)
        metrics.inboxScanStarted(reason: "start")
        metrics.sweepFinished("retry", result: "ok", items: 1)
        metrics.breakerOpened(.handler("a"))
        let text = try parse(metrics, live: LiveGauges(breakers: [.handler("a"): .open]))
        let expected = [
            "jobs", "queue_depth", "stuck_files", "disk_paused", "jobs_finished_total", "queue_wait_seconds",
            "disk_pauses_total", "inotify_overflows_total", "admission_refusals_total", "handler_runs_total",
            "handler_run_duration_seconds", "task_runs_total", "task_run_duration_seconds", "inbox_scans_total",
            "sweeps_total", "sweep_items_total", "handler_breaker_opens_total", "handler_breaker_state",
        ].map { "orchestrator_" + $0 }
        #expect(Set(text.types.keys) == Set(expected))
        for (family, type) in text.types {
            #expect(family.hasPrefix("orchestrator_"))
            #expect(!(text.help[family] ?? "").isEmpty, "\(family) has no HELP")
            #expect((type == "counter") == family.hasSuffix("_total"), "\(family): counters and only counters end in _total")
            if type == "histogram" { #expect(family.hasSuffix("_seconds")) }
        }
    }

    @Test func labelValuesChosenByUsersAreEscaped() throws {
        let metrics = DaemonMetrics()
        let odd = "we\"ird\\name\nnext line, {braces} = é"
        metrics.meter(for: .handler(odd)).attemptEnded(.failed, seconds: 0.01)
        let text = try parse(metrics, live: LiveGauges(breakers: [.handler(odd): .open]))
        #expect(text.value("orchestrator_handler_runs_total", ["handler": odd, "result": "failed"]) == 1)
        #expect(text.value("orchestrator_handler_run_duration_seconds_count", ["handler": odd]) == 1)
        #expect(text.value("orchestrator_handler_breaker_state", ["handler": odd]) == 2)
    }

    @Test func aMeterIsCreatedOnceAndRegistriesAreSeparate() throws {
        let first = DaemonMetrics()
        #expect(first.meter(for: .handler("a")) === first.meter(for: .handler("a")))
        #expect(first.meter(for: .handler("a")) !== first.meter(for: .upload("a")))
        first.meter(for: .handler("a")).attemptEnded(.succeeded, seconds: 1)
        let second = DaemonMetrics()
        second.inotifyOverflowed()
        #expect(try parse(second).value("orchestrator_handler_runs_total", ["handler": "a", "result": "succeeded"]) == nil)
        #expect(try parse(first).value("orchestrator_inotify_overflows_total") == 0)
    }

    @Test func swiftMetricsCodeReportsIntoTheSameRegistry() throws {
        let metrics = DaemonMetrics()
        let requests = CoreMetrics.Counter(label: "orchestrator_http_requests_total", dimensions: [("route", "/metrics")], factory: metrics.factory)
        requests.increment(by: 2)
        #expect(try parse(metrics).value("orchestrator_http_requests_total", ["route": "/metrics"]) == 2)
    }

    @Test func recordingFromManyThreadsLosesNothing() async throws {
        let metrics = DaemonMetrics()
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    let meter = metrics.meter(for: .handler("h\(worker % 2)"))
                    for _ in 0..<1000 { meter.attemptEnded(.succeeded, seconds: 0.01) }
                }
            }
        }
        let text = try parse(metrics)
        #expect(text.value("orchestrator_handler_runs_total", ["handler": "h0", "result": "succeeded"]) == 4000)
        #expect(text.value("orchestrator_handler_run_duration_seconds_count", ["handler": "h1"]) == 4000)
    }

    /// Buckets never decrease, and `+Inf` equals `_count`.
    private func expectCumulative(_ text: PrometheusText, _ name: String, labels: [String: String], count: Double) throws {
        let buckets = text.samples(named: name + "_bucket")
            .filter { $0.labels.filter { $0.key != "le" } == labels }
            .map { (le: Double($0.labels["le"]!.replacingInf)!, value: $0.value) }
            .sorted { $0.le < $1.le }
        #expect(buckets.count == DaemonMetrics.durationBuckets.count + 1)
        #expect(buckets.map(\.le).dropLast() == ArraySlice(DaemonMetrics.durationBuckets))
        for (lower, upper) in zip(buckets, buckets.dropFirst()) { #expect(lower.value <= upper.value) }
        #expect(buckets.last?.le == .infinity)
        #expect(buckets.last?.value == count)
        #expect(text.value(name + "_count", labels) == count)
    }
}

extension String {
    fileprivate var replacingInf: String { self == "+Inf" ? "inf" : self }
}

/// A gauge source whose answer the test sets.
private final class Answer: @unchecked Sendable {
    private let lock = NSLock()
    private var value: LiveGauges?
    private(set) var calls = 0

    func set(_ gauges: LiveGauges?) { lock.withLock { value = gauges } }

    func next() -> LiveGauges? {
        lock.withLock {
            calls += 1
            return value
        }
    }
}
