#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorMetrics
import OrchestratorPlatform
import OrchestratorStore
import TestSupport
import Testing

@testable import OrchestratorDaemon

/// The dispatcher of `watch`, in this process, with metrics: what `GET /metrics` would serve moves as files
/// are processed. (The HTTP server is not part of this; the renderer it calls is.)
@Suite(.serialized) struct DispatcherMetricsTests {
    @Test(.timeLimit(.minutes(1))) func countersMoveAsFilesAreProcessed() throws {
        let root = try Self.makeInstance(
            """
            [limits]
            max_concurrent = 2

            [[handler]]
            name = "refuse \\"bad\\" ones"
            match = ["*.bad"]
            command = ["false"]
            max_attempts = 1

            [[handler]]
            name = "accept"
            command = ["true"]
            breaker = { failures = 3, cooldown = "1m" }
            """)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let running = try RunningDispatcher(configFile: root + "/config/orchestrator.toml")
        defer { running.stop() }

        // Before any file: the start's walk of Inbox, no runs, nothing queued, every breaker closed.
        var text = try running.waitForMetrics("the start's Inbox walk is counted") {
            $0.value("orchestrator_inbox_scans_total", ["reason": "start"]) == 1
        }
        #expect(text.value("orchestrator_jobs", ["state": "queued"]) == 0)
        #expect(text.value("orchestrator_handler_breaker_state", ["handler": "accept"]) == 0)
        #expect(text.samples(named: "orchestrator_handler_runs_total").isEmpty)

        for name in ["a.txt", "b.txt", "c.txt", "d.bad"] { try Self.drop(name, into: root + "/Inbox") }
        // A scrape is no snapshot: the gauges are counted on the dispatcher's queue just before the counters are
        // read, and the families are read one after another while the dispatcher records. Wait for a scrape in
        // which every family has all four files.
        let refusing = "refuse \"bad\" ones"
        text = try running.waitForMetrics("four files have finished, in every family") {
            $0.value("orchestrator_jobs_finished_total", ["kind": "file", "state": "done"]) == 3
                && $0.value("orchestrator_jobs_finished_total", ["kind": "file", "state": "failed"]) == 1
                && $0.value("orchestrator_jobs", ["state": "running"]) == 0
                && $0.value("orchestrator_handler_runs_total", ["handler": "accept", "result": "succeeded"]) == 3
                && $0.value("orchestrator_handler_runs_total", ["handler": refusing, "result": "failed"]) == 1
                && $0.value("orchestrator_handler_run_duration_seconds_count", ["handler": "accept"]) == 3
                && $0.value("orchestrator_queue_wait_seconds_count", ["kind": "file"]) == 4
        }
        #expect(text.value("orchestrator_handler_runs_total", ["handler": "accept", "result": "failed"]) == 0)
        #expect(text.value("orchestrator_handler_runs_total", ["handler": refusing, "result": "succeeded"]) == 0)
        #expect(text.value("orchestrator_jobs", ["state": "running"]) == 0)
        #expect(text.value("orchestrator_queue_depth") == 0)
        #expect(text.value("orchestrator_stuck_files") == 0)
        #expect(text.value("orchestrator_disk_paused") == 0)

        // One more, to see the counter move again rather than settle at a value.
        try Self.drop("e.txt", into: root + "/Inbox")
        // A scrape reads one family after another while the dispatcher records, so it is no snapshot: a run can
        // be counted in a family read late and missing from one read early. Wait for a scrape that has it in all.
        text = try running.waitForMetrics("the fifth file is counted in its run, its duration and its job") {
            $0.value("orchestrator_handler_runs_total", ["handler": "accept", "result": "succeeded"]) == 4
                && $0.value("orchestrator_handler_run_duration_seconds_count", ["handler": "accept"]) == 4
                && $0.value("orchestrator_jobs_finished_total", ["kind": "file", "state": "done"]) == 4
        }
        #expect(text.value("orchestrator_handler_runs_total", ["handler": "accept", "result": "failed"]) == 0)
    }

    /// A breaker that opens: its counter, its gauge and the job parked behind it, as scraped.
    @Test(.timeLimit(.minutes(1))) func anOpenBreakerShowsInItsGaugeAndCounter() throws {
        let root = try Self.makeInstance(
            """
            [limits]
            max_concurrent = 1

            [[handler]]
            name = "flaky"
            command = ["false"]
            max_attempts = 1
            breaker = { failures = 2, cooldown = "10m" }
            """)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let running = try RunningDispatcher(configFile: root + "/config/orchestrator.toml")
        defer { running.stop() }
        for name in ["a.txt", "b.txt", "c.txt"] { try Self.drop(name, into: root + "/Inbox") }
        let text = try running.waitForMetrics("the third file waits behind the open breaker") {
            $0.value("orchestrator_jobs", ["state": "breaker_wait"]) == 1
        }
        #expect(text.value("orchestrator_handler_breaker_opens_total", ["handler": "flaky"]) == 1)
        #expect(text.value("orchestrator_handler_breaker_state", ["handler": "flaky"]) == 2)
        #expect(text.value("orchestrator_handler_runs_total", ["handler": "flaky", "result": "failed"]) == 2)
        #expect(text.value("orchestrator_jobs_finished_total", ["kind": "file", "state": "failed"]) == 2)
        #expect(text.value("orchestrator_queue_depth") == 0)
    }

    /// The second job does not fit beside the first's CPU estimate: one refusal for that spell, however many
    /// cycles look at the queue meanwhile; the wait shows in the queue-wait histogram.
    @Test(.timeLimit(.minutes(1))) func anAdmissionWaitIsCountedOncePerSpellByItsLimit() throws {
        let root = try Self.makeInstance(
            """
            [limits]
            max_concurrent = 2
            max_cpu_percent = 80

            [[handler]]
            name = "heavy"
            command = ["sleep", "1"]
            cpu_percent = 60
            """)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let running = try RunningDispatcher(configFile: root + "/config/orchestrator.toml")
        defer { running.stop() }
        for name in ["a.txt", "b.txt"] { try Self.drop(name, into: root + "/Inbox") }
        var text = try running.waitForMetrics("the second job waits for the first's CPU estimate") {
            $0.value("orchestrator_admission_refusals_total", ["reason": "cpu_estimates"]) == 1
                && $0.value("orchestrator_queue_depth") == 1
        }
        #expect(text.value("orchestrator_jobs", ["state": "running"]) == 1)
        text = try running.waitForMetrics("both have run") {
            $0.value("orchestrator_handler_runs_total", ["handler": "heavy", "result": "succeeded"]) == 2
        }
        #expect(text.value("orchestrator_admission_refusals_total", ["reason": "cpu_estimates"]) == 1)
        for limit in AdmissionLimit.allCases where limit != .cpuEstimates {
            #expect(text.value("orchestrator_admission_refusals_total", ["reason": limit.rawValue]) == 0)
        }
        // The second waited for most of the first's second.
        #expect(text.value("orchestrator_queue_wait_seconds_bucket", ["kind": "file", "le": "0.5"]) == 1)
        #expect(text.value("orchestrator_queue_wait_seconds_count", ["kind": "file"]) == 2)
        let durations = try #require(text.value("orchestrator_handler_run_duration_seconds_sum", ["handler": "heavy"]))
        #expect(durations >= 2 && durations < 10)
    }

    /// Without metrics (one-shot commands) nothing is recorded and nothing breaks.
    @Test(.timeLimit(.minutes(1))) func aDispatcherWithoutMetricsRunsAsBefore() throws {
        let root = try Self.makeInstance(
            """
            [[handler]]
            name = "accept"
            command = ["true"]
            """)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let running = try RunningDispatcher(configFile: root + "/config/orchestrator.toml", metrics: nil)
        defer { running.stop() }
        try Self.drop("a.txt", into: root + "/Inbox")
        try waitUntil("a.txt reaches Done", timeout: 20) { FileManager.default.fileExists(atPath: root + "/Done/a.txt") }
    }

    // MARK: Helpers

    static func makeInstance(_ config: String) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)").path
        for folder in ["config", "Inbox", "Done", "Failed"] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        try ("[inbox]\nsettle = \"100ms\"\n\n" + config).write(toFile: root + "/config/orchestrator.toml", atomically: true, encoding: .utf8)
        return root
    }

    /// Written beside Inbox and renamed in, as producers should.
    static func drop(_ name: String, into inbox: String) throws {
        let staging = inbox + "/../" + name + ".staging"
        try "content of \(name)\n".write(toFile: staging, atomically: false, encoding: .utf8)
        guard rename(staging, inbox + "/" + name) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
    }
}

/// A dispatcher as `watch` runs it, started on its queue, stopped with SIGTERM's event.
final class RunningDispatcher: Sendable {
    let dispatcher: Dispatcher
    let render: @Sendable () -> String
    private let stopped = DispatchSemaphore(value: 0)

    init(configFile: String, metrics: DaemonMetrics? = DaemonMetrics()) throws {
        let config = try Config.load(file: configFile)
        try Daemon.prepareFolders(config)
        let store = try SQLiteStore(directory: config.paths.state)
        let stopped = stopped
        let dispatcher = Dispatcher(
            config: config, store: store, logger: Daemon.makeLogger(format: .human),
            notifier: SystemdNotifier(environment: [:]), metrics: metrics
        ) { _ in stopped.signal() }
        self.dispatcher = dispatcher
        // What the HTTP server is handed, before the dispatcher starts.
        if let metrics {
            render = { metrics.prometheusText() }
        } else {
            render = { "" }
        }
        let started = DispatchSemaphore(value: 0)
        let failure = LockedBox<String?>(nil)
        dispatcher.queue.async {
            do { try dispatcher.start() } catch { failure.value = "\(error)" }
            started.signal()
        }
        guard started.wait(timeout: .now() + 20) == .success else { throw TestTimeout("the dispatcher did not start") }
        if let message = failure.value { throw TestTimeout("the dispatcher did not start: \(message)") }
    }

    /// Scrapes until `condition` holds (each scrape parsed as a scraper would), or fails at the deadline.
    func waitForMetrics(_ what: String, timeout: Double = 20, _ condition: (PrometheusText) -> Bool) throws -> PrometheusText {
        var last = try PrometheusText(render())
        try waitUntil(what, timeout: timeout) {
            last = try PrometheusText(render())
            return condition(last)
        }
        return last
    }

    func stop() {
        dispatcher.queue.async { [dispatcher] in dispatcher.post(.signal(SIGTERM)) }
        if stopped.wait(timeout: .now() + 20) == .timedOut { Issue.record("the dispatcher did not stop within 20 s") }
    }
}

struct TestTimeout: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(20_000)
    }
    if try condition() { return }
    throw TestTimeout("timed out after \(timeout)s waiting until \(what)")
}
