/// Which service manager `service install|uninstall` talks to.
public enum ServiceManager: Sendable, Equatable, CaseIterable {
    /// The system manager: `/etc/systemd/system`, `User=` the invoking user.
    case systemd
    /// The invoking user's manager (`--user`): `~/.config/systemd/user`, no `User=`.
    case systemdUser
    /// pm2: an ecosystem file beside the config.
    case pm2

    /// The command that must be on `PATH` for the manager to be told.
    var tool: String { self == .pm2 ? "pm2" : "systemctl" }

    var flags: String {
        switch self {
        case .systemd: "--systemd"
        case .systemdUser: "--systemd --user"
        case .pm2: "--pm2"
        }
    }
}

/// Where a service file goes and what the manager is told: decided from the definition and the
/// environment alone, so a dry run prints exactly what a real run would do.
public struct ServicePlan: Sendable, Equatable {
    public var manager: ServiceManager
    /// The unit or pm2 app name.
    public var name: String
    /// Absolute path of the unit or ecosystem file.
    public var file: String
    /// Its text (install only).
    public var text: String
    /// Run, in order, after the file is written (install) or before it is removed (uninstall).
    public var commandsBefore: [[String]]
    public var commandsAfter: [[String]]

    /// Where the invoking user's files live, for `--user` units.
    public struct Environment: Sendable, Equatable {
        public var home: String
        /// `$XDG_CONFIG_HOME`, when set to an absolute path (the XDG rule: ignore a relative one).
        public var configHome: String?

        public init(home: String, configHome: String?) {
            self.home = home
            self.configHome = configHome
        }

        var userConfigHome: String {
            if let configHome, configHome.hasPrefix("/") { return configHome }
            return (home == "/" ? "" : home) + "/.config"
        }
    }

    public static func install(
        _ manager: ServiceManager, definition: ServiceDefinition, account: ServiceAccount, environment: Environment
    ) throws(ServiceFileError) -> ServicePlan {
        var plan = try locate(manager, definition: definition, environment: environment)
        switch manager {
        case .systemd:
            plan.text = try ServiceFiles.systemdUnit(definition, account: account)
            plan.commandsAfter = [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", plan.name]]
        case .systemdUser:
            plan.text = try ServiceFiles.systemdUnit(definition, account: nil)
            plan.commandsAfter = [
                ["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", plan.name],
            ]
        case .pm2:
            plan.text = try ServiceFiles.pm2Ecosystem(definition)
            // `save` makes pm2's boot-time resurrection (set up once with `pm2 startup`) include it.
            plan.commandsAfter = [["pm2", "start", plan.file], ["pm2", "save"]]
        }
        return plan
    }

    public static func uninstall(
        _ manager: ServiceManager, definition: ServiceDefinition, environment: Environment
    ) throws(ServiceFileError) -> ServicePlan {
        var plan = try locate(manager, definition: definition, environment: environment)
        switch manager {
        case .systemd:
            plan.commandsBefore = [["systemctl", "disable", "--now", plan.name]]
            plan.commandsAfter = [["systemctl", "daemon-reload"]]
        case .systemdUser:
            plan.commandsBefore = [["systemctl", "--user", "disable", "--now", plan.name]]
            plan.commandsAfter = [["systemctl", "--user", "daemon-reload"]]
        case .pm2:
            plan.commandsBefore = [["pm2", "delete", plan.name]]
            plan.commandsAfter = [["pm2", "save"]]
        }
        return plan
    }

    private static func locate(
        _ manager: ServiceManager, definition: ServiceDefinition, environment: Environment
    ) throws(ServiceFileError) -> ServicePlan {
        switch manager {
        case .systemd:
            let name = try ServiceFiles.unitName(for: definition)
            return ServicePlan(manager: manager, name: name, file: "/etc/systemd/system/" + name)
        case .systemdUser:
            let name = try ServiceFiles.unitName(for: definition)
            return ServicePlan(manager: manager, name: name, file: environment.userConfigHome + "/systemd/user/" + name)
        case .pm2:
            // Beside the config, named after it: reviewable next to it, one per config file, and ending in
            // `.config.js`, which is how pm2 tells an ecosystem file from a script.
            let directory = definition.workingDirectory == "/" ? "" : definition.workingDirectory
            var stem = Substring(definition.configFile.split(separator: "/").last ?? "orchestrator")
            if stem.hasSuffix(".toml") { stem = stem.dropLast(5) }
            return ServicePlan(
                manager: manager, name: ServiceFiles.pm2Name(for: definition), file: "\(directory)/\(stem).ecosystem.config.js")
        }
    }

    private init(manager: ServiceManager, name: String, file: String) {
        self.manager = manager
        self.name = name
        self.file = file
        self.text = ""
        self.commandsBefore = []
        self.commandsAfter = []
    }

    /// A command as a user would type it into a shell.
    public static func shellLine(_ command: [String]) -> String {
        command.map { word in
            let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_./=:@+,".unicodeScalars.contains($0))
            }
            return plain ? word : "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
        }.joined(separator: " ")
    }
}
