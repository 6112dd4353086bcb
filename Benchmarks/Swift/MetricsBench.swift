import OrchestratorCore
import OrchestratorMetrics

/// What the dispatcher records for one file (the meter looked up at the start, the queue wait, the attempt
/// and its duration, the job's end), and what one scrape costs, on one thread.
func runMetricsBench() {
    let metrics = DaemonMetrics()
    let owners = (0..<8).map { MeteredOwner.handler("handler-\($0)") }
    let files = 2_000_000
    let perFile = seconds {
        for index in 0..<files {
            let meter = metrics.meter(for: owners[index & 7])
            meter.started(afterWaiting: Double(index & 1023) / 1000)
            meter.attemptEnded(.succeeded, seconds: Double(index & 4095) / 1000)
            metrics.jobFinished(.file, succeeded: true)
        }
    } / Double(files)
    print(String(format: "metrics: %.0f ns recorded per file (%d files, 8 handlers)", perFile * 1e9, files))
    var live = LiveGauges(jobs: [.queued: 100, .running: 2], queueDepth: 100)
    for owner in owners { live.breakers[owner] = .closed }
    var bytes = 0
    let scrapes = 2_000
    let perScrape = seconds {
        for _ in 0..<scrapes { bytes = metrics.prometheusText(live: live).utf8.count }
    } / Double(scrapes)
    print(String(format: "metrics: %.0f µs per scrape of %d bytes", perScrape * 1e6, bytes))
}
