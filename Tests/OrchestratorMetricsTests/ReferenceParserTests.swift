import Foundation
import OrchestratorMetrics
import Testing

/// The text as Prometheus' own Python client parses it (scripts/parse-metrics, installed by scripts/setup): what a
/// real scraper accepts, not only what our own small reader does.
@Suite struct ReferenceParserTests {
    @Test(.timeLimit(.minutes(1))) func prometheusClientAcceptsTheText() throws {
        let metrics = DaemonMetrics()
        let odd = "we\"ird\\name\nnext line"
        let meter = metrics.meter(for: .handler(odd))
        for seconds in [0.0005, 0.02, 75, 5400] { meter.attemptEnded(.succeeded, seconds: seconds) }
        meter.started(afterWaiting: 2)
        metrics.meter(for: .task("backup")).attemptEnded(.timedOut, seconds: 600)
        metrics.inboxScanStarted(reason: "resumed after a full disk")
        metrics.sweepFinished("ingest", result: "ok", items: 2)
        metrics.admissionRefused(.memoryEstimates)
        let text = metrics.prometheusText(
            live: LiveGauges(jobs: [.queued: 7], queueDepth: 7, breakers: [.handler(odd): .open, .task("backup"): .closed]))

        let families = try Self.parse(text)
        // The client names counter families without `_total`; their samples keep it.
        let runs = try #require(families["orchestrator_handler_runs"])
        #expect(runs.type == "counter")
        #expect(runs.value("orchestrator_handler_runs_total", ["handler": odd, "result": "succeeded"]) == 4)
        let duration = try #require(families["orchestrator_handler_run_duration_seconds"])
        #expect(duration.type == "histogram")
        #expect(duration.value("orchestrator_handler_run_duration_seconds_count", ["handler": odd]) == 4)
        #expect(duration.value("orchestrator_handler_run_duration_seconds_bucket", ["handler": odd, "le": "0.001"]) == 1)
        #expect(duration.value("orchestrator_handler_run_duration_seconds_bucket", ["handler": odd, "le": "+Inf"]) == 4)
        #expect(families["orchestrator_task_runs"]?.value("orchestrator_task_runs_total", ["task": "backup", "result": "timed_out"]) == 1)
        #expect(families["orchestrator_jobs"]?.value("orchestrator_jobs", ["state": "queued"]) == 7)
        #expect(families["orchestrator_handler_breaker_state"]?.value("orchestrator_handler_breaker_state", ["handler": odd]) == 2)
        #expect(families["orchestrator_inbox_scans"]?.value("orchestrator_inbox_scans_total", ["reason": "resumed after a full disk"]) == 1)
        #expect(families["orchestrator_admission_refusals"]?.value("orchestrator_admission_refusals_total", ["reason": "memory_estimates"]) == 1)
        for (name, family) in families {
            #expect(!family.help.isEmpty, "\(name) has no HELP")
        }
    }

    @Test(.timeLimit(.minutes(1))) func theScriptRefusesBrokenText() throws {
        #expect(throws: (any Error).self) { try Self.parse("orchestrator_x{a=\"unterminated} 1\n") }
        #expect(throws: (any Error).self) {
            // Not cumulative, and +Inf is not the count.
            try Self.parse(
                """
                # TYPE h histogram
                h_bucket{le="1"} 5
                h_bucket{le="2"} 3
                h_bucket{le="+Inf"} 5
                h_count 6
                h_sum 1

                """)
        }
    }

    struct Family: Decodable {
        struct Sample: Decodable {
            let name: String
            let labels: [String: String]
            let value: Double
            enum CodingKeys: CodingKey { case name, labels, value }
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                name = try container.decode(String.self, forKey: .name)
                labels = try container.decode([String: String].self, forKey: .labels)
                if let number = try? container.decode(Double.self, forKey: .value) {
                    value = number
                } else {
                    let text = try container.decode(String.self, forKey: .value)
                    value = text == "+Inf" ? .infinity : text == "-Inf" ? -.infinity : .nan
                }
            }
        }
        let type: String
        let help: String
        let samples: [Sample]

        func value(_ name: String, _ labels: [String: String]) -> Double? {
            let matches = samples.filter { $0.name == name && $0.labels == labels }
            return matches.count == 1 ? matches[0].value : nil
        }
    }

    struct ScriptFailed: Error, CustomStringConvertible { let description: String }

    /// Runs scripts/parse-metrics on `text`, bounded to 20 s.
    static func parse(_ text: String) throws -> [String: Family] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/parse-metrics")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let killer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 20, execute: killer)
        defer { killer.cancel() }
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let json = output.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw ScriptFailed(description: "parse-metrics exited \(process.terminationStatus): \(message)")
        }
        return try JSONDecoder().decode([String: Family].self, from: json)
    }
}
