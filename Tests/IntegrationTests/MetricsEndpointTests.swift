#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// `GET /metrics` on the real binary, read by prometheus_client's own parser (scripts/parse-metrics): the text is
/// valid exposition format and the counters move as files are processed.
@Suite(.timeLimit(.minutes(2))) struct MetricsEndpointTests {
    static let config = """
        [inbox]
        settle = "100ms"

        [http]
        listen = "127.0.0.1:0"

        [[handler]]
        name = "refuse \\"bad\\" ones"
        match = ["*.bad"]
        command = ["/bin/false"]
        max_attempts = 1

        [[handler]]
        name = "accept"
        command = ["/bin/true"]
        breaker = { failures = 3, cooldown = "1m" }
        """

    @Test func countersMoveAsFilesAreProcessed() throws {
        let instance = try TestInstance(config: Self.config)
        try instance.startDaemon()
        let base = try instance.apiBase()
        let api = APIClient(base: base, token: nil)

        var metrics = try Self.scrape(api)
        #expect(metrics.value("orchestrator_inbox_scans", "orchestrator_inbox_scans_total", ["reason": "start"]) == 1)
        #expect(metrics.value("orchestrator_handler_breaker_state", "orchestrator_handler_breaker_state", ["handler": "accept"]) == 0)
        #expect(metrics.value("orchestrator_jobs", "orchestrator_jobs", ["state": "queued"]) == 0)

        for name in ["a.txt", "b.txt", "c.txt", "d.bad"] { try instance.drop(name) }
        let runs = "orchestrator_handler_runs"
        let duration = "orchestrator_handler_run_duration_seconds"
        // A scrape reads one family after another while the daemon records, so it is no snapshot: wait for one in
        // which every family has all four files.
        try instance.waitUntil("the four files are counted in every family", timeout: 20) {
            metrics = try Self.scrape(api)
            return metrics.value("orchestrator_jobs_finished", "orchestrator_jobs_finished_total", ["kind": "file", "state": "done"]) == 3
                && metrics.value("orchestrator_jobs_finished", "orchestrator_jobs_finished_total", ["kind": "file", "state": "failed"]) == 1
                && metrics.value("orchestrator_jobs", "orchestrator_jobs", ["state": "running"]) == 0
                && metrics.value(runs, runs + "_total", ["handler": "accept", "result": "succeeded"]) == 3
                && metrics.value(runs, runs + "_total", ["handler": "refuse \"bad\" ones", "result": "failed"]) == 1
                && metrics.value(duration, duration + "_count", ["handler": "accept"]) == 3
                && metrics.value("orchestrator_queue_wait_seconds", "orchestrator_queue_wait_seconds_count", ["kind": "file"]) == 4
        }
        #expect(metrics.families[duration]?.type == "histogram")

        try instance.drop("e.txt")
        try instance.waitUntil("the fifth file is counted", timeout: 20) {
            metrics = try Self.scrape(api)
            return metrics.value(runs, runs + "_total", ["handler": "accept", "result": "succeeded"]) == 4
        }
        #expect(instance.stopDaemon() == 0)
    }

    struct Parsed {
        let families: [String: (type: String, samples: [(name: String, labels: [String: String], value: Double)])]

        func value(_ family: String, _ sample: String, _ labels: [String: String]) -> Double? {
            let matches = families[family]?.samples.filter { $0.name == sample && $0.labels == labels } ?? []
            return matches.count == 1 ? matches[0].value : nil
        }
    }

    /// GET /metrics, through scripts/parse-metrics (bounded to 30 s).
    static func scrape(_ api: APIClient) throws -> Parsed {
        let answer = try api.get("/metrics")
        #expect(answer.status == 200)
        #expect(answer.contentType.hasPrefix("text/plain"))
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/parse-metrics").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script]
        let input = Pipe()
        let outputPath = NSTemporaryDirectory() + "metrics-\(UUID().uuidString).json"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { unlink(outputPath) }
        process.standardInput = input
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        try process.run()
        input.fileHandleForWriting.write(answer.body)
        try input.fileHandleForWriting.close()
        guard waitForExit(process, within: 30, "parse-metrics") else { throw TimedOut(description: "parse-metrics did not exit") }
        #expect(process.terminationStatus == 0, "prometheus_client refused the text:\n\(String(decoding: answer.body, as: UTF8.self))")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: outputPath))) as? [String: Any] ?? [:]
        var families: [String: (type: String, samples: [(name: String, labels: [String: String], value: Double)])] = [:]
        for (name, value) in json {
            guard let family = value as? [String: Any], let type = family["type"] as? String,
                let samples = family["samples"] as? [[String: Any]]
            else { continue }
            families[name] = (
                type,
                samples.map { sample in
                    let number = (sample["value"] as? Double) ?? ((sample["value"] as? String) == "+Inf" ? .infinity : .nan)
                    return (sample["name"] as? String ?? "", sample["labels"] as? [String: String] ?? [:], number)
                }
            )
        }
        return Parsed(families: families)
    }
}
