import ArgumentParser
import Foundation
import OrchestratorDaemon

/// `service install|uninstall`: the systemd unit or pm2 ecosystem file for this config.
extension Orchestrator {
    struct ServiceCommand: CommandGroup {
        static let configuration = CommandConfiguration(
            commandName: "service", abstract: "Install this config as a systemd or pm2 service, or remove it.",
            subcommands: [Install.self, Uninstall.self])

        /// `--systemd [--user] | --pm2`.
        struct Selector: ParsableArguments {
            @Flag(help: "A systemd unit (system-wide, running as you; --user for your own manager).") var systemd = false
            @Flag(help: "With --systemd: a unit for your user manager (~/.config/systemd/user), no User=.") var user = false
            @Flag(help: "A pm2 ecosystem file beside the config.") var pm2 = false

            func validate() throws {
                if systemd && pm2 { throw ValidationError("give either --systemd or --pm2, not both") }
                if user && !systemd { throw ValidationError("--user goes with --systemd") }
            }

            var manager: ServiceManager? {
                if pm2 { return .pm2 }
                if systemd { return user ? .systemdUser : .systemd }
                return nil
            }
        }

        struct Install: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write the unit or ecosystem file for this config and this binary; enable and start it where systemctl or pm2 is usable.")
            @OptionGroup var options: ConfigOption
            @OptionGroup var selector: Selector
            @Flag(help: "Print the file and the commands it would run; change nothing.") var dryRun = false

            func validate() throws {
                if selector.manager == nil { throw ValidationError("give --systemd [--user] or --pm2") }
            }

            func run() throws {
                let config = try options.load()
                guard let manager = selector.manager else { return }
                try reportingErrors { () throws(CommandError) in
                    try ServiceCommands.install(config: config, manager: manager, dryRun: dryRun, say: printOut)
                }
            }
        }

        struct Uninstall: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Stop, disable and remove what install wrote for this config (for every manager unless one is given). Nothing installed: exit 65.")
            @OptionGroup var options: ConfigOption
            @OptionGroup var selector: Selector
            @Flag(help: "Say what it would run and remove; change nothing.") var dryRun = false

            func run() throws {
                let config = try options.load()
                try reportingErrors { () throws(CommandError) in
                    try ServiceCommands.uninstall(config: config, manager: selector.manager, dryRun: dryRun, say: printOut)
                }
            }
        }
    }
}
