import ArgumentParser
import Foundation
import OrchestratorConfig
import OrchestratorDaemon
import OrchestratorHTTP
import OrchestratorMetrics

@main
struct Orchestrator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestrator",
        abstract: "Turns a folder into a reliable work queue: each file dropped into Inbox/ runs through a worker.",
        version: OrchestratorVersion.current,
        subcommands: [
            Init.self, Watch.self, Replay.self, Status.self, History.self, Show.self, Tasks.self, TaskCommand.self,
            Trigger.self, Sweep.self, ConfigCommand.self, Cron.self, Cancel.self, Priority.self, HandlerCommand.self,
            ServiceCommand.self,
        ])

    /// SIGHUP's default action ends the process. Until the daemon listens for it (after its config is read and its
    /// store opened: tens of milliseconds), one (logrotate or `pm2 sendSignal` just after a restart) is ignored rather
    /// than fatal, from the first line that runs; the config being read is the file's anyway. A one-shot command
    /// listens for it too (as a stop) once it runs; the others are short.
    static func main() {
        signal(SIGHUP, SIG_IGN)
        // ArgumentParser takes `-3` for an option and then says an argument is missing (apple/swift-argument-parser#31):
        // a priority below the range is said as such.
        let arguments = withGlobalOptionsMoved(Array(CommandLine.arguments.dropFirst()))[...]
        if arguments.first == "priority", let negative = arguments.dropFirst().first(where: { $0.count > 1 && $0.hasPrefix("-") && Int($0) != nil }) {
            FileHandle.standardError.write(Data("error: \(Priority.outOfRange(negative))\n".utf8))
            Glibc.exit(ExitCode.validationFailure.rawValue)
        }
        // A group given a word that is none of its subcommands: ArgumentParser then complains of the first option after
        // it (`handler frob default --config X`: "Unknown option '--config'"), which hides the typo.
        if let group = configuration.subcommands.first(where: { $0._commandName == arguments.first }) as? any CommandGroup.Type,
            let word = arguments.dropFirst().first, !word.hasPrefix("-"),
            !group.configuration.subcommands.contains(where: { $0._commandName == word })
        {
            FileHandle.standardError.write(Data("error: '\(word)' is not a subcommand of '\(group._commandName)' (one of: \(group.subcommandNames))\n".utf8))
            Glibc.exit(ExitCode.validationFailure.rawValue)
        }
        // A word that is no command: ArgumentParser then complains of the first option after it ("Unknown option
        // '--config'").
        if let word = arguments.first, !word.hasPrefix("-"), word != "help",
            !configuration.subcommands.contains(where: { $0._commandName == word })
        {
            let names = configuration.subcommands.map { $0._commandName }.joined(separator: ", ")
            FileHandle.standardError.write(Data("error: '\(word)' is not a command (one of: \(names))\n".utf8))
            Glibc.exit(ExitCode.validationFailure.rawValue)
        }
        var command: any ParsableCommand
        do {
            command = try parseAsRoot(Array(arguments))
            try command.run()
        } catch {
            exitSayingOneLine(error)
        }
        Glibc.exit(0)
    }

    /// `--config FILE` (or `--store URL`) before the command (`orchestrator --config FILE status`), where SPEC section
    /// 3's "every command takes --config" lets a user write it: moved after the command's words, where ArgumentParser
    /// reads it (before a `--` that ends the options).
    static func withGlobalOptionsMoved(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            if first == "--config" || first == "--store", rest.count >= 2 {
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--config=") || first.hasPrefix("--store=") {
                leading.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard !leading.isEmpty, !rest.isEmpty else { return arguments }
        if let end = rest.firstIndex(of: "--") { return Array(rest[..<end]) + leading + Array(rest[end...]) }
        return Array(rest) + leading
    }

    /// Usage errors on one line, as every other error is (SPEC: "Each error is one line on stderr"): ArgumentParser's
    /// own message with its usage and help lines dropped, and a list of choices folded into the line. Help, the
    /// version and exit codes thrown on purpose go through ArgumentParser as they are.
    static func exitSayingOneLine(_ error: any Error) -> Never {
        let code = exitCode(for: error)
        let message = message(for: error)
        guard code != .success, !message.isEmpty else { exit(withError: error) }
        FileHandle.standardError.write(Data("error: \(oneLine(usageMessage: message))\n".utf8))
        Glibc.exit(code.rawValue)
    }

    static func oneLine(usageMessage message: String) -> String {
        var parts: [String] = []
        for line in message.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("Usage:") || text.hasPrefix("Help:") || text.hasPrefix("See '") { break }
            if text.hasPrefix("- ") {
                parts.append((parts.isEmpty || parts.last!.hasSuffix(":") ? " " : ", ") + text.dropFirst(2))
            } else if !text.isEmpty {
                parts.append((parts.isEmpty ? "" : " ") + text)
            }
        }
        var line = parts.joined()
        if line.hasPrefix("Error: ") { line.removeFirst("Error: ".count) }
        return line
    }
}

/// `--config FILE`, else `$ORCHESTRATOR_CONFIG`, else `./config/orchestrator.toml`.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: $ORCHESTRATOR_CONFIG, else ./config/orchestrator.toml).")
    var config: String?

    var path: String {
        let chosen = config ?? ProcessInfo.processInfo.environment["ORCHESTRATOR_CONFIG"] ?? "config/orchestrator.toml"
        return chosen.hasPrefix("/") ? chosen : FileManager.default.currentDirectoryPath + "/" + chosen
    }

    @Option(
        name: .long,
        help: "Store URL, postgres://USER@HOST:PORT/DB (default: $ORCHESTRATOR_STORE, else [store] url, else SQLite in the state dir).")
    var store: String?

    func load() throws -> Config {
        try reportingErrors { () throws(CommandError) in try loaded() }
    }

    private func loaded() throws(CommandError) -> Config {
        var config = try loadConfig(path)
        try StoreFactory.applyOverride(to: &config, flag: store, environment: ProcessInfo.processInfo.environment)
        return config
    }

    /// `load` for the daemon: a config it refuses is refused with every problem `config check` lists (the checks
    /// against this machine too), not only the first kind found.
    func loadListingEveryProblem() throws -> Config {
        try reportingErrors { () throws(CommandError) in
            do throws(CommandError) {
                return try loaded()
            } catch where error.status == .config {
                do throws(ConfigErrors) {
                    _ = try ConfigReport.checked(path: path, storeFlag: store)
                } catch let every {
                    throw CommandError(configErrors: every)
                }
                throw error
            }
        }
    }

    /// For the commands that only show the state: a config file with errors that do not touch where the state is
    /// (an edit that broke it while the daemon runs on the config it loaded) is read anyway, its errors printed first.
    func loadForReading() throws -> Config {
        try reportingErrors { () throws(CommandError) in
            var config = try loadConfigForReading(path) { problems in
                let lines = problems.map(\.description)
                FileHandle.standardError.write(Data((
                    ["warning: the config file has errors; a running daemon keeps the config it last loaded. Showing the state it names, with the tasks and handlers this file still defines (the daemon's may differ until the file is fixed and reloaded):"]
                        + lines).joined(separator: "\n").utf8 + [UInt8(ascii: "\n")]))
            }
            try StoreFactory.applyOverride(to: &config, flag: store, environment: ProcessInfo.processInfo.environment)
            return config
        }
    }
}

/// Prints a command's error lines on stderr and exits with its status; never a stack trace.
func reportingErrors<T>(_ body: () throws(CommandError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        FileHandle.standardError.write(Data((error.lines.joined(separator: "\n") + "\n").utf8))
        throw ExitCode(error.status.rawValue)
    }
}

func printOut(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

extension Orchestrator {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create Inbox/ Done/ Failed/ config/orchestrator.toml, a sample worker and the state dir; never overwrites.")
        @Argument(help: "Directory to set up (default: the current directory, or the folder above --config's).") var directory: String?
        @Option(help: "Where to write the config (default: DIR/config/orchestrator.toml); its folder's parent is the instance folder.")
        var config: String?

        func run() throws {
            let lines = try reportingErrors { () throws(CommandError) in
                try OrchestratorDaemon.Init.run(directory: directory, configFile: config)
            }
            lines.forEach(printOut)
        }
    }

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the daemon: watch Inbox, run workers, until SIGTERM/SIGINT.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Log format on stderr: human or json.") var logFormat: LogFormat = .human
        @Flag(help: "Decide and log everything; run and move nothing.") var dryRun = false

        func run() throws {
            let config = try options.loadListingEveryProblem()
            let status = try reportingErrors { () throws(CommandError) in
                let metrics = DaemonMetrics()
                let services = config.http.map { [APIServer.service(settings: $0, metrics: { metrics.prometheusText() })] } ?? []
                return try Daemon.run(config: config, logFormat: logFormat, dryRun: dryRun, services: services, metrics: metrics)
            }
            if status != .ok { throw ExitCode(status.rawValue) }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move files from Failed/ back into Inbox/; each becomes a new job with a fresh retry budget.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Files in Failed/ (paths, or names relative to Failed/).") var paths: [String] = []
        @Flag(help: "Replay every file in Failed/.") var all = false
        @Flag(help: "Say what would be replayed; move nothing.") var dryRun = false

        func validate() throws {
            if all == !paths.isEmpty { throw ValidationError("give either PATH... or --all") }
        }

        func run() throws {
            let config = try options.load()
            let outcome = try reportingErrors { () throws(CommandError) in
                try OrchestratorDaemon.Replay.run(
                    config: config, paths: paths, all: all, dryRun: dryRun,
                    workingDirectory: FileManager.default.currentDirectoryPath)
            }
            outcome.lines.forEach(printOut)
            if !outcome.problems.isEmpty {
                FileHandle.standardError.write(Data((outcome.problems.joined(separator: "\n") + "\n").utf8))
                throw ExitCode(ExitStatus.badInput.rawValue)
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Daemon alive?, queue depth, running jobs. Exits 0 whether or not a daemon runs.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "One JSON document on stdout.") var json = false

        func run() throws {
            let config = try options.loadForReading()
            printOut(try reportingErrors { () throws(CommandError) in try Reports.status(config: config, json: json) })
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recent runs, newest first.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Only attempts that failed.") var failed = false
        @Option(help: "How many rows.") var limit: Int = 20
        @Flag(help: "One JSON document on stdout.") var json = false

        func validate() throws {
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            let config = try options.loadForReading()
            printOut(try reportingErrors { () throws(CommandError) in
                try Reports.history(config: config, limit: limit, failedOnly: failed, json: json)
            })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One job: every attempt, exit status, signal, duration, CPU, max RSS, log path, stderr tail.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "A job id, or a path in Inbox, Done or Failed (or the name relative to them).") var target: String
        @Flag(help: "One JSON document on stdout.") var json = false

        func run() throws {
            let config = try options.loadForReading()
            printOut(try reportingErrors { () throws(CommandError) in
                try Reports.show(
                    config: config, target: target, json: json, workingDirectory: FileManager.default.currentDirectoryPath)
            })
        }
    }

    struct ConfigCommand: CommandGroup {
        static let configuration = CommandConfiguration(
            commandName: "config", abstract: "Configuration tools.", subcommands: [Check.self])

        struct Check: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Validate the config; print every problem as FILE:LINE.")
            @OptionGroup var options: ConfigOption
            @Flag(help: "One JSON document on stdout.") var json = false

            func run() throws {
                let (text, status) = ConfigReport.check(path: options.path, storeFlag: options.store, json: json)
                if !text.isEmpty {
                    if json || status == .ok { printOut(text) } else {
                        FileHandle.standardError.write(Data((text + "\n").utf8))
                    }
                }
                if status != .ok { throw ExitCode(status.rawValue) }
            }
        }
    }
}

extension Orchestrator {
    struct Tasks: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List tasks with their trigger, next fire time, last result and statistics.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "One JSON document on stdout.") var json = false

        func run() throws {
            let config = try options.loadForReading()
            printOut(try reportingErrors { () throws(CommandError) in try TaskCommands.list(config: config, json: json) })
        }
    }

    struct TaskCommand: CommandGroup {
        static let configuration = CommandConfiguration(
            commandName: "task", abstract: "Run, enable or disable a task.", subcommands: [Run.self, Enable.self, Disable.self])

        struct Run: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Run a task now: ahead of everything in a running daemon, else in the foreground (exit 0 if it succeeded, 1 if not).")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The task's name.") var name: String
            @Option(help: "Log format on stderr for a foreground run: human or json.") var logFormat: LogFormat = .human

            func run() throws {
                let config = try options.load()
                let (status, lines) = try reportingErrors { () throws(CommandError) in
                    try Batch.taskRun(config: config, task: name, logFormat: logFormat)
                }
                lines.forEach(printOut)
                if status != .ok { throw ExitCode(status.rawValue) }
            }
        }

        struct Enable: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Let a task run on its trigger again.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The task's name.") var name: String

            func run() throws {
                let config = try options.load()
                printOut(try reportingErrors { () throws(CommandError) in
                    try TaskCommands.setEnabled(config: config, task: name, enabled: true)
                })
            }
        }

        struct Disable: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Stop a task from running on its trigger.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The task's name.") var name: String

            func run() throws {
                let config = try options.load()
                printOut(try reportingErrors { () throws(CommandError) in
                    try TaskCommands.setEnabled(config: config, task: name, enabled: false)
                })
            }
        }
    }

    struct Sweep: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run sweeps once and print what ran, was skipped and failed; exit 1 on failures.")
        @OptionGroup var options: ConfigOption
        @Option(help: "all, retry, ingest, upload, watchdog or prune.") var mode: Batch.SweepMode
        @Flag(help: "Say what would run; run and move nothing.") var dryRun = false
        @Option(help: "Log format on stderr: human or json.") var logFormat: LogFormat = .human

        func run() throws {
            let config = try options.load()
            let (status, lines) = try reportingErrors { () throws(CommandError) in
                try Batch.sweep(config: config, mode: mode, dryRun: dryRun, logFormat: logFormat)
            }
            lines.forEach(printOut)
            if status != .ok { throw ExitCode(status.rawValue) }
        }
    }

    struct Trigger: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fire an event: tasks with on = EVENT are queued. Exits 0 once the event is recorded.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The event's name.") var event: String

        func run() throws {
            let config = try options.load()
            printOut(try reportingErrors { () throws(CommandError) in try TaskCommands.trigger(config: config, event: event) })
        }
    }
}

extension LogFormat: ExpressibleByArgument {}
extension Batch.SweepMode: ExpressibleByArgument {}

/// A command that only groups others (`task`, `service`, ...): named without one of them it is a usage error (64, as
/// every usage error is), not its help with exit 0, which a script would take for success.
protocol CommandGroup: ParsableCommand {}

extension CommandGroup {
    static var subcommandNames: String { configuration.subcommands.map { $0._commandName }.joined(separator: ", ") }

    func run() throws {
        throw ValidationError("missing subcommand (one of: \(Self.subcommandNames))")
    }
}
