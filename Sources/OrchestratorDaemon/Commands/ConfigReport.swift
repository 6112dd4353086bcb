import Foundation
import OrchestratorConfig

/// `orchestrator config check`.
public enum ConfigReport {
    /// The text to print and the exit status: every problem as `FILE:LINE: error: WHAT`, exit 78.
    /// `storeFlag`: `--store`, which with `$ORCHESTRATOR_STORE` decides the store the config is checked for.
    public static func check(path: String, storeFlag: String? = nil, json: Bool) -> (String, ExitStatus) {
        // The store the config is checked for, as `watch` takes it: a bad `--store` or `$ORCHESTRATOR_STORE` fails
        // the check as it fails the daemon's start (it was passed over, and the file said "ok").
        if let problem = storeOverrideProblem(flag: storeFlag, environment: ProcessInfo.processInfo.environment) {
            let status: ExitStatus = storeFlag == nil ? .config : .usage
            if json {
                let object: [String: Any] = ["ok": false, "file": path, "problems": [["file": NSNull(), "line": NSNull(), "message": problem] as [String: Any]]]
                return ((try? Reports.render(object)) ?? "{}", status)
            }
            return ("error: " + problem, status)
        }
        do throws(ConfigErrors) {
            let config = try checked(path: path, storeFlag: storeFlag)
            let warnings = config.warnings()
            if json {
                let object: [String: Any] = [
                    "ok": true, "file": config.file, "problems": [Any](), "handlers": config.handlers.map(\.name),
                    "tasks": config.tasks.map(\.name),
                    "warnings": warnings.map { ["file": $0.file, "line": $0.line, "message": $0.message] as [String: Any] },
                ]
                return ((try? Reports.render(object)) ?? "{}", .ok)
            }
            let summary = "\(config.file): ok (\(counted(config.handlers.count, "handler")), \(counted(config.tasks.count, "task")))"
            return ((warnings.map(\.description) + [summary]).joined(separator: "\n"), .ok)
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

    /// Every problem of the file, or the config if it has none: errors in the text do not hide the checks against
    /// this machine, both kinds are listed at once. (A value with an error has a default standing in for it, so a
    /// machine check on its line is left out.) `config check` prints them, and so does a `watch` that refuses to start.
    public static func checked(path: String, storeFlag: String? = nil) throws(ConfigErrors) -> Config {
        var (config, textProblems, locationTrouble) = try Config.loadForChecking(file: path)
        if let flag = storeFlag, StoreSettings.problem(with: flag) == nil {
            (config.store.url, config.store.origin) = (flag, .commandLine)
        } else if let variable = ProcessInfo.processInfo.environment["ORCHESTRATOR_STORE"], StoreSettings.problem(with: variable) == nil {
            (config.store.url, config.store.origin) = (variable, .environment)
        }
        // With `[paths]`, `[store]` or `[node]` in doubt, where the folders are is not known: only the commands are
        // checked against the machine.
        let machine = locationTrouble
            ? config.commandProblems(searchPath: Config.processSearchPath())
            : config.hostProblems() + [config.roleProblem()].compactMap { $0 }
        let problems = ConfigProblem.merged(text: textProblems, machine: machine)
        if !problems.isEmpty { throw ConfigErrors(problems: problems) }
        return config
    }

    /// What is wrong with the store URL given on the command line or in the environment, as `applyOverride` says it.
    static func storeOverrideProblem(flag: String?, environment: [String: String]) -> String? {
        if let flag { return StoreSettings.problem(with: flag).map { "--store: \($0)" } }
        if let variable = environment["ORCHESTRATOR_STORE"], !variable.isEmpty {
            return StoreSettings.problem(with: variable).map { "ORCHESTRATOR_STORE: \($0)" }
        }
        return nil
    }

    private static func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
}
