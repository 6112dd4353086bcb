import ArgumentParser
import Foundation
import OrchestratorCore
import OrchestratorDaemon

/// `cancel`, `priority` and `handler pause|resume`: acting on jobs, with or without a running daemon.
extension Orchestrator {
    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a job: a waiting one goes to Failed/ at once, never run; a running one's group gets SIGTERM, SIGKILL after the grace. No retry. Finished or unknown: exit 65.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "A job id, or a path in Inbox, the processing area, Done or Failed (or the name relative to them).")
        var target: String
        @Option(help: "Why; the job's reason becomes \"cancelled: TEXT\".") var reason: String?

        func run() throws {
            let config = try options.load()
            printOut(try reportingErrors { () throws(CommandError) in
                try InterventionCommands.cancel(
                    config: config, target: target, reason: reason, workingDirectory: FileManager.default.currentDirectoryPath)
            })
        }
    }

    struct Priority: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a waiting job's base priority (1..10, higher first). A running or finished job: exit 65.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "A job id, or a path in Inbox or the processing area (or the name relative to them).")
        var target: String
        @Argument(help: "The new priority, 1..10.") var priority: Int

        func validate() throws {
            if !Intervention.priorities.contains(priority) { throw ValidationError(Self.outOfRange("\(priority)")) }
        }

        static func outOfRange(_ given: String) -> String {
            "priority must be \(Intervention.priorities.lowerBound)..\(Intervention.priorities.upperBound), not \(given)"
        }

        func run() throws {
            let config = try options.load()
            printOut(try reportingErrors { () throws(CommandError) in
                try InterventionCommands.setPriority(
                    config: config, target: target, priority: priority, workingDirectory: FileManager.default.currentDirectoryPath)
            })
        }
    }

    struct HandlerCommand: CommandGroup {
        static let configuration = CommandConfiguration(
            commandName: "handler", abstract: "Pause or resume a handler.", subcommands: [Pause.self, Resume.self])

        struct Pause: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Its jobs wait (state paused) until resumed, across restarts; running ones finish.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The handler's name.") var name: String

            func run() throws {
                let config = try options.load()
                printOut(try reportingErrors { () throws(CommandError) in
                    try InterventionCommands.setHandlerPaused(config: config, handler: name, paused: true)
                })
            }
        }

        struct Resume: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Let a paused handler's jobs run again.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The handler's name.") var name: String

            func run() throws {
                let config = try options.load()
                printOut(try reportingErrors { () throws(CommandError) in
                    try InterventionCommands.setHandlerPaused(config: config, handler: name, paused: false)
                })
            }
        }
    }
}
