import Foundation
import OrchestratorConfig

/// `orchestrator config check`.
public enum ConfigReport {
    /// The text to print and the exit status: every problem as `FILE:LINE: error: WHAT`, exit 78.
    public static func check(path: String, json: Bool) -> (String, ExitStatus) {
        do throws(ConfigErrors) {
            let config = try Config.load(file: path)
            let problems = config.hostProblems()
            if !problems.isEmpty { throw ConfigErrors(problems: problems) }
            if json {
                let object: [String: Any] = [
                    "ok": true, "file": config.file, "problems": [Any](), "handlers": config.handlers.map(\.name),
                    "tasks": config.tasks.map(\.name),
                ]
                return ((try? Reports.render(object)) ?? "{}", .ok)
            }
            return ("\(config.file): ok (\(config.handlers.count) handlers, \(config.tasks.count) tasks)", .ok)
        } catch {
            if json {
                let object: [String: Any] = [
                    "ok": false, "file": path,
                    "problems": error.problems.map { ["file": $0.file, "line": $0.line, "message": $0.message] as [String: Any] },
                ]
                return ((try? Reports.render(object)) ?? "{}", .config)
            }
            return (error.problems.map(\.description).joined(separator: "\n"), .config)
        }
    }
}
