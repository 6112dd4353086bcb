import Foundation
import OrchestratorConfig
import OrchestratorStore

extension Reports {
    /// Jobs ended per minute over the last `window` seconds, with their run durations: the dashboard's chart.
    /// Every minute of the window is present (zero when nothing ended), so a chart needs no gap filling.
    public static func activity(config: Config, window: Int, now: Date = Date()) throws(CommandError) -> String {
        let end = (now.timeIntervalSince1970 / 60).rounded(.down) * 60
        let start = end - Double(max(1, window / 60) - 1) * 60
        let minutes: [MinuteActivity]
        do {
            minutes = try openStoreIfPresent(config)?.read { try $0.activityPerMinute(since: start) } ?? []
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.failure, "error: cannot read the state database: \(error)")
        }
        let byMinute = Dictionary(minutes.map { ($0.minute, $0) }, uniquingKeysWith: { first, _ in first })
        var rows: [[String: Any]] = []
        var minute = start
        while minute <= end {
            let found = byMinute[minute]
            rows.append([
                "at": iso(minute), "done": found?.done ?? 0, "failed": found?.failed ?? 0,
                "average_seconds": found?.averageSeconds as Any? ?? NSNull(),
                "max_seconds": found?.maxSeconds as Any? ?? NSNull(),
            ])
            minute += 60
        }
        return try render(["window_seconds": Int(end - start) + 60, "minutes": rows])
    }
}
