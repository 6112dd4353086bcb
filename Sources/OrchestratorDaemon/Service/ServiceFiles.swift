import OrchestratorConfig

/// What a service file is generated from: this config's absolute paths, the binary and the account.
/// Built from the config in force, so the unit and the ecosystem file never drift from it.
public struct ServiceDefinition: Sendable, Equatable {
    /// The absolute path of the orchestrator binary the service runs.
    public var binary: String
    /// The absolute path of the config file, passed as `--config`.
    public var configFile: String
    /// The config file's directory: where workers run anyway.
    public var workingDirectory: String
    /// Every folder the daemon writes: Inbox, the processing area, Done, Failed, the state dir.
    public var writablePaths: [String]
    /// `[limits] shutdown_grace`: the service manager must wait longer than this before it kills.
    public var shutdownGrace: Duration

    public init(binary: String, configFile: String, workingDirectory: String, writablePaths: [String],
                shutdownGrace: Duration) {
        self.binary = binary
        self.configFile = configFile
        self.workingDirectory = workingDirectory
        self.writablePaths = writablePaths
        self.shutdownGrace = shutdownGrace
    }

    /// With `init`'s layout the whole instance folder is writable, as in `deploy/orchestrator.service`: workers
    /// write beside the config (the sample one to `../reports`). The config's folders outside it are added one by one.
    public init(config: Config, binary: String) {
        var folders: [String] = []
        let root = Self.instanceRoot(of: config.file)
        if let root { folders.append(root) }
        for folder in [config.paths.inbox, config.paths.processing, config.paths.done, config.paths.failed, config.paths.state]
        where !folders.contains(folder) && !(root.map { folder.hasPrefix($0 == "/" ? "/" : $0 + "/") } ?? false) {
            folders.append(folder)
        }
        self.init(binary: binary, configFile: config.file, workingDirectory: config.baseDirectory,
                  writablePaths: folders, shutdownGrace: config.limits.shutdownGrace)
    }

    private static let layoutSuffix = "/config/orchestrator.toml"

    /// `/srv/x` for `/srv/x/config/orchestrator.toml` (the layout `init` writes); nil for a config elsewhere.
    static func instanceRoot(of configFile: String) -> String? {
        guard configFile.hasSuffix(layoutSuffix) else { return nil }
        let root = String(configFile.dropLast(layoutSuffix.count))
        return root.isEmpty ? "/" : root
    }

    /// The folder that names the instance: `/srv/x` for `/srv/x/config/orchestrator.toml` (the layout `init`
    /// writes), else the config file itself, so that two configs never share a unit name.
    public var instancePath: String { Self.instanceRoot(of: configFile) ?? configFile }

    /// How long a stop may take: the grace for the workers plus a margin to end their groups and record them.
    var stopTimeoutSeconds: Int64 { Self.ceilingSeconds(shutdownGrace) + 60 }

    /// pm2's `kill_timeout` in milliseconds: above the grace, or pm2 SIGKILLs the daemon mid-drain.
    var pm2KillTimeoutMilliseconds: Int64 {
        let (seconds, attoseconds) = shutdownGrace.components
        return seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000 + 5000
    }

    private static func ceilingSeconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds + (attoseconds > 0 ? 1 : 0)
    }
}

/// Who a system unit runs as. A user unit (`--user`) has none: it runs as the user whose manager runs it.
public struct ServiceAccount: Sendable, Equatable {
    public var user: String
    public var group: String

    public init(user: String, group: String) {
        self.user = user
        self.group = group
    }
}

/// A path or name that a service file cannot carry.
public struct ServiceFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
}

/// The text of the systemd unit and the pm2 ecosystem file. Pure: definition in, text out.
public enum ServiceFiles {
    /// Exit statuses that a restart cannot heal: usage, another owner of the state dir or Inbox, config error.
    static let permanentExitStatuses = [64, 69, 78]

    /// `orchestrator-<systemd-escape --path INSTANCE>.service`.
    public static func unitName(for definition: ServiceDefinition) throws(ServiceFileError) -> String {
        let name = "orchestrator-" + SystemdSyntax.escapePath(definition.instancePath) + ".service"
        // systemd's limit on unit names.
        guard name.utf8.count <= 255 else {
            throw ServiceFileError(description: "the unit name for \(definition.instancePath) would be longer than 255 bytes")
        }
        return name
    }

    /// The pm2 app name: readable, since people type it (`pm2 logs NAME`), and safe in pm2's log file names.
    public static func pm2Name(for definition: ServiceDefinition) -> String {
        let components = definition.instancePath.split(separator: "/").map { component in
            String(component.unicodeScalars.map { scalar -> Character in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "._-".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            })
        }
        return (["orchestrator"] + components).joined(separator: "-")
    }

    /// `PrivateTmp=yes` hides the machine's /tmp from the service: an instance kept there (a trial) would not be found,
    /// so the unit then says why it goes without.
    static func privateTmp(_ definition: ServiceDefinition) -> [String] {
        let paths = [definition.configFile, definition.workingDirectory] + definition.writablePaths
        let inTmp = paths.first { path in ["/tmp", "/var/tmp"].contains { path == $0 || path.hasPrefix($0 + "/") } }
        guard let inTmp else { return ["PrivateTmp=yes"] }
        return ["# No PrivateTmp=: \(inTmp) is under a temporary folder, which it would hide."]
    }

    /// The unit for a system manager (`account` given) or a user manager (`account` nil).
    public static func systemdUnit(_ definition: ServiceDefinition, account: ServiceAccount?) throws(ServiceFileError) -> String {
        try refuseUnwritable(definition)
        try refuseUnsafeExecutable(definition.binary)
        let user = account == nil
        // systemd substitutes `$VAR` in the arguments but not in the executable's path.
        let execStart = ([SystemdSyntax.quoted(definition.binary, expandsVariables: false)]
            + ["watch", "--config", definition.configFile].map { SystemdSyntax.quoted($0, expandsVariables: true) })
            .joined(separator: " ")
        let writable = definition.writablePaths.map { SystemdSyntax.quoted($0, expandsVariables: false) }.joined(separator: " ")
        var lines = [
            "# Written by `orchestrator service install --systemd\(user ? " --user" : "")` for",
            "#   \(definition.configFile)",
            "# `orchestrator service uninstall` stops, disables and removes it; installing again rewrites it from the config.",
            "[Unit]",
            "Description=orchestrator: folder work queue and task scheduler (\(SystemdSyntax.specifiersEscaped(definition.instancePath)))",
            "After=local-fs.target",
            "",
            "[Service]",
            "Type=notify",
        ]
        if let account {
            lines += [
                "# Workers run as this user too.",
                "User=\(SystemdSyntax.specifiersEscaped(account.user))",
                "Group=\(SystemdSyntax.specifiersEscaped(account.group))",
            ]
        }
        lines += [
            "ExecStart=\(execStart)",
            "# SIGHUP reloads the config; an invalid one is refused and logged, the old one stays in force.",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "WorkingDirectory=\(SystemdSyntax.specifiersEscaped(definition.workingDirectory))",
            "# The daemon pings from its own timer wheel, so a wedged dispatcher is restarted.",
            "WatchdogSec=60",
            "# SIGTERM to the daemon only: it stops workers itself within shutdown_grace (\(formatted(definition.shutdownGrace)));",
            "# whatever is left after TimeoutStopSec is killed with the whole cgroup.",
            "KillMode=mixed",
            "TimeoutStopSec=\(definition.stopTimeoutSeconds)",
            "Restart=on-failure",
            "RestartSec=2",
            "# Usage (64), another owner of the state dir or Inbox (69) and a config error (78) do not heal by",
            "# restarting: stay stopped until someone fixes them.",
            "RestartPreventExitStatus=\(permanentExitStatuses.map(String.init).joined(separator: " "))",
            "# Sandboxing: the file system is read-only except the instance folder (for a config outside init's",
            "# layout: its Inbox, processing, Done, Failed and state). Add every other folder a worker writes to ReadWritePaths=.",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=\(writable)",
        ] + privateTmp(definition) + [
            "",
            "[Install]",
            "WantedBy=\(user ? "default.target" : "multi-user.target")",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The pm2 ecosystem file: one app running `watch` on this config.
    public static func pm2Ecosystem(_ definition: ServiceDefinition) throws(ServiceFileError) -> String {
        try refuseUnwritable(definition)
        let arguments = ["watch", "--config", definition.configFile].map(JavaScriptSyntax.stringLiteral).joined(separator: ", ")
        let lines = [
            "// Written by `orchestrator service install --pm2` for",
            "//   \(JavaScriptSyntax.commentSafe(definition.configFile))",
            "// `orchestrator service uninstall` deletes the app and removes this file. pm2 stops apps with SIGINT,",
            "// which orchestrator treats like SIGTERM (drain, then stop workers).",
            "module.exports = {",
            "  apps: [",
            "    {",
            "      name: \(JavaScriptSyntax.stringLiteral(pm2Name(for: definition))),",
            "      script: \(JavaScriptSyntax.stringLiteral(definition.binary)),",
            "      args: [\(arguments)],",
            "      cwd: \(JavaScriptSyntax.stringLiteral(definition.workingDirectory)),",
            "      interpreter: \"none\",",
            "      // Signal the daemon only, not every process in its tree: the daemon gives running workers",
            "      // shutdown_grace and then ends their process groups itself.",
            "      treekill: false,",
            "      // Above [limits] shutdown_grace (\(formatted(definition.shutdownGrace))) plus a moment to end the workers'",
            "      // groups and record them, or pm2 SIGKILLs the daemon mid-drain.",
            "      kill_timeout: \(definition.pm2KillTimeoutMilliseconds),",
            "      autorestart: true,",
            "      // Usage (64), another owner of the state dir or Inbox (69), config error (78): restarting cannot help.",
            "      stop_exit_codes: [\(permanentExitStatuses.map(String.init).joined(separator: ", "))],",
            "      max_restarts: 10,",
            "      restart_delay: 2000,",
            "    },",
            "  ],",
            "};",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// A control character in a path would end a line of the unit (or a comment); neither file can carry it.
    private static func refuseUnwritable(_ definition: ServiceDefinition) throws(ServiceFileError) {
        for path in [definition.binary, definition.configFile, definition.workingDirectory] + definition.writablePaths
        where path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw ServiceFileError(description: "path \(path.debugDescription) contains a control character; a service file cannot name it")
        }
    }

    /// systemd refuses to run an executable whose path holds a quote or a backslash, however it is escaped.
    private static func refuseUnsafeExecutable(_ path: String) throws(ServiceFileError) {
        if let character = path.first(where: { "\"'\\".contains($0) }) {
            throw ServiceFileError(description: "systemd cannot run an executable whose path contains \(character): \(path) (install the binary elsewhere)")
        }
    }

    private static func formatted(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds)s" }
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms"
    }
}

/// systemd's unit file syntax (systemd.unit(5), systemd.service(5), systemd-escape(1)).
public enum SystemdSyntax {
    /// `systemd-escape --path`: slashes trimmed and collapsed, then `/` becomes `-`, and every byte other than
    /// ASCII letters, digits, `:`, `_` and a `.` that does not lead becomes `\xNN`; the root is `-`.
    public static func escapePath(_ path: String) -> String {
        let components = path.utf8.split(separator: UInt8(ascii: "/")).filter { !$0.elementsEqual(".".utf8) }
        if components.isEmpty { return "-" }
        var escaped = ""
        for (index, byte) in components.joined(separator: [UInt8(ascii: "/")]).enumerated() {
            switch byte {
            case UInt8(ascii: "/"):
                escaped += "-"
            case UInt8(ascii: "."):
                escaped += index == 0 ? "\\x2e" : "."
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: ":"), UInt8(ascii: "_"):
                escaped.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                escaped += "\\x" + hex(byte)
            }
        }
        return escaped
    }

    /// One word of a setting that unquotes and C-unescapes its words (`ExecStart=`, `ReadWritePaths=`): in double
    /// quotes, `\` and `"` escaped, `%` doubled (specifiers expand everywhere) and, where `$VAR` expands
    /// (`ExecStart=`), `$` doubled.
    public static func quoted(_ word: String, expandsVariables: Bool) -> String {
        var result = "\""
        for scalar in word.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "%": result += "%%"
            case "$" where expandsVariables: result += "$$"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// A value taken whole (`WorkingDirectory=`, `User=`, `Description=`): only specifiers expand.
    public static func specifiersEscaped(_ value: String) -> String {
        var result = ""
        for scalar in value.unicodeScalars {
            if scalar == "%" { result += "%%" } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }
}

/// JavaScript source for the pm2 ecosystem file.
public enum JavaScriptSyntax {
    /// A double-quoted string literal that evaluates to exactly `text`.
    public static func stringLiteral(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case _ where scalar.value < 0x20 || scalar.value == 0x7f || scalar.value == 0x2028 || scalar.value == 0x2029:
                let digits = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// Text inside a `//` comment: a line terminator would end it, so those are shown escaped.
    static func commentSafe(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x2028: result += "\\u2028"
            case 0x2029: result += "\\u2029"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
