#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorPlatform

/// `service install` and `service uninstall`: the effects around `ServicePlan` (write, tell the manager, remove).
public enum ServiceCommands {
    /// Writes the unit or ecosystem file for `config` and, where the manager is usable, enables and starts it.
    /// `say` gets each line of the report as it happens, so it interleaves with the manager's own output.
    public static func install(
        config: Config, manager: ServiceManager, dryRun: Bool, say: (String) -> Void
    ) throws(CommandError) {
        try refuseHostProblems(config, commands: true)
        let definition = ServiceDefinition(config: config, binary: try runningBinary())
        let plan = try planned { () throws(ServiceFileError) in
            try ServicePlan.install(manager, definition: definition, account: try serviceAccount(config), environment: environment())
        }
        let usable = managerUsable(manager)
        let comment = manager == .pm2 ? "//" : "#"
        if dryRun {
            // Only comments besides the file, so the whole output is itself a valid unit or ecosystem file.
            say(plan.text + "\(comment) orchestrator service install \(manager.flags) --dry-run: would write \(plan.file)")
            say(usable ? "\(comment) and run:" : "\(comment) \(unusableReason(manager)), so it would only write it and say to run:")
            plan.commandsAfter.forEach { say("\(comment)   \(ServicePlan.shellLine($0))") }
            return
        }
        let paths = config.paths
        try createFolders(
            definition.writablePaths + [paths.inbox, paths.processing, paths.done, paths.failed, paths.state],
            for: try? serviceAccount(config))
        try write(plan.text, to: plan.file, manager: manager)
        say("wrote \(plan.file)")
        guard usable else {
            say("\(unusableReason(manager)); to enable and start it, run:")
            plan.commandsAfter.forEach { say("  " + ServicePlan.shellLine($0)) }
            return
        }
        for command in plan.commandsAfter { try run(command, keeping: plan.file) }
        switch manager {
        case .systemd:
            say("started \(plan.name); see: systemctl status \(ServicePlan.shellLine([plan.name])); reload the config: systemctl reload \(ServicePlan.shellLine([plan.name]))")
        case .systemdUser:
            say("started \(plan.name); see: systemctl --user status \(ServicePlan.shellLine([plan.name])); reload the config: systemctl --user reload \(ServicePlan.shellLine([plan.name]))")
            say("to keep it running while you are logged out and start it at boot: loginctl enable-linger")
        case .pm2:
            say("started \(plan.name); see: pm2 status; reload the config: pm2 sendSignal SIGHUP \(ServicePlan.shellLine([plan.name])). To start pm2 itself at boot, run `pm2 startup` once.")
        }
    }

    /// Stops, disables and removes what `install` wrote for `config`: for `manager`, or for every manager
    /// whose file is there when nil. Nothing installed: 65.
    public static func uninstall(
        config: Config, manager: ServiceManager?, dryRun: Bool, say: (String) -> Void
    ) throws(CommandError) {
        let definition = ServiceDefinition(config: config, binary: "")
        var plans: [ServicePlan] = []
        for candidate in manager.map({ [$0] }) ?? ServiceManager.allCases {
            plans.append(try planned { () throws(ServiceFileError) in
                try ServicePlan.uninstall(candidate, definition: definition, environment: environment())
            })
        }
        let installed = plans.filter { FileSystem.status(PathBytes($0.file)) != nil }
        if installed.isEmpty {
            let looked = plans.map(\.file).joined(separator: ", ")
            throw CommandError(.badInput, "error: no service is installed for \(config.file) (no \(looked))")
        }
        for plan in installed {
            let usable = managerUsable(plan.manager)
            if dryRun {
                if usable { plan.commandsBefore.forEach { say("would run: " + ServicePlan.shellLine($0)) } }
                say("would remove \(plan.file)")
                if usable { plan.commandsAfter.forEach { say("would run: " + ServicePlan.shellLine($0)) } }
                continue
            }
            if usable {
                for command in plan.commandsBefore {
                    // pm2 forgets apps (a reboot without `pm2 save`, a `pm2 kill`): then there is nothing to stop.
                    if plan.manager == .pm2 {
                        if runStatus(command) != 0 { say("warning: `\(ServicePlan.shellLine(command))` failed; removing the file anyway") }
                    } else {
                        try run(command, keeping: plan.file)
                    }
                }
            }
            if unlink(plan.file) != 0 {
                throw CommandError(.failure, "error: cannot remove \(plan.file): \(String(cString: strerror(errno)))")
            }
            say("removed \(plan.file)")
            if usable {
                for command in plan.commandsAfter { try run(command, keeping: nil) }
            } else {
                say("\(unusableReason(plan.manager)): nothing to stop")
            }
        }
    }

    // MARK: The host

    private static func planned(_ body: () throws(ServiceFileError) -> ServicePlan) throws(CommandError) -> ServicePlan {
        do {
            return try body()
        } catch {
            throw CommandError(.badInput, "error: \(error.description)")
        }
    }

    /// The binary that is running now, symlinks resolved: the service runs this build.
    static func runningBinary() throws(CommandError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else {
            throw CommandError(.failure, "error: cannot tell where this binary is (/proc/self/exe): \(String(cString: strerror(errno)))")
        }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Who a system service runs as: the owner of the config file when root installs it and someone else owns it (the
    /// dedicated user the instance was given to, `chown -R orchestrator: /srv/orchestrator`), else the invoking user.
    static func serviceAccount(_ config: Config) throws(ServiceFileError) -> ServiceAccount {
        var info = stat()
        if getuid() == 0, stat(config.file, &info) == 0, info.st_uid != 0, let entry = getpwuid(info.st_uid) {
            let user = String(cString: entry.pointee.pw_name)
            let group = getgrgid(entry.pointee.pw_gid).map { String(cString: $0.pointee.gr_name) } ?? String(entry.pointee.pw_gid)
            return ServiceAccount(user: user, group: group)
        }
        return try invokingAccount()
    }

    /// The user who asked: under sudo, the one who ran sudo (a service for root is rarely what they mean).
    static func invokingAccount() throws(ServiceFileError) -> ServiceAccount {
        var entry: UnsafeMutablePointer<passwd>?
        if getuid() == 0, let name = ProcessInfo.processInfo.environment["SUDO_USER"], !name.isEmpty {
            entry = getpwnam(name)
        }
        if entry == nil { entry = getpwuid(getuid()) }
        guard let entry else { throw ServiceFileError(description: "the invoking user (uid \(getuid())) has no passwd entry") }
        let user = String(cString: entry.pointee.pw_name)
        let group = getgrgid(entry.pointee.pw_gid).map { String(cString: $0.pointee.gr_name) } ?? String(entry.pointee.pw_gid)
        return ServiceAccount(user: user, group: group)
    }

    static func environment() -> ServicePlan.Environment {
        let variables = ProcessInfo.processInfo.environment
        let home = variables["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? getpwuid(getuid()).map { String(cString: $0.pointee.pw_dir) } ?? "/"
        return ServicePlan.Environment(home: home, configHome: variables["XDG_CONFIG_HOME"])
    }

    /// systemd counts only when it runs this machine (sd_booted(): `/run/systemd/system` exists); a systemctl
    /// installed in a container without it can only fail.
    static func managerUsable(_ manager: ServiceManager) -> Bool {
        guard executable(manager.tool) != nil else { return false }
        return manager == .pm2 || FileSystem.status(PathBytes("/run/systemd/system"))?.isDirectory == true
    }

    static func unusableReason(_ manager: ServiceManager) -> String {
        if executable(manager.tool) == nil { return "\(manager.tool) is not on PATH" }
        return "systemd is not running on this machine (no /run/systemd/system)"
    }

    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// The daemon would create a missing folder at start, but under `ProtectSystem=strict` it could not, and
    /// systemd refuses to start a unit whose `ReadWritePaths=` is missing; so they are made now, for the
    /// service's user.
    private static func createFolders(_ folders: [String], for account: ServiceAccount?) throws(CommandError) {
        let owner = getuid() == 0 ? account.flatMap { getpwnam($0.user)?.pointee } : nil
        for folder in folders where FileSystem.status(PathBytes(folder)) == nil {
            do {
                try FileSystem.createDirectories(PathBytes(folder))
            } catch {
                throw CommandError(.failure, "error: cannot create \(folder): \(error)")
            }
            if let owner { _ = chown(folder, owner.pw_uid, owner.pw_gid) }
        }
    }

    /// Written under a temporary name and renamed, so a manager never reads half a unit.
    private static func write(_ text: String, to file: String, manager: ServiceManager) throws(CommandError) {
        let directory = String(file[..<(file.lastIndex(of: "/") ?? file.startIndex)])
        let hint = manager == .systemd ? " (a system unit needs root: run it with sudo, or use --user)" : ""
        let temporary = "\(directory)/.\(file.split(separator: "/").last ?? "service").tmp-\(getpid())"
        do {
            try FileSystem.createDirectories(PathBytes(directory.isEmpty ? "/" : directory))
            try FileSystem.writeFile(PathBytes(temporary), Array(text.utf8), mode: 0o644, exclusive: false)
        } catch {
            unlink(temporary)
            throw CommandError(.failure, "error: cannot write \(file): \(error)\(hint)")
        }
        if rename(temporary, file) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CommandError(.failure, "error: cannot write \(file): \(reason)\(hint)")
        }
    }

    /// Runs a manager command with this process's stdout and stderr; a failure ends the command with 1.
    private static func run(_ command: [String], keeping file: String?) throws(CommandError) {
        let status = runStatus(command)
        if status != 0 {
            let kept = file.map { "; \($0) is in place" } ?? ""
            throw CommandError(.failure, "error: `\(ServicePlan.shellLine(command))` failed (exit \(status))\(kept)")
        }
    }

    private static func runStatus(_ command: [String]) -> Int32 {
        guard let path = executable(command[0]) else { return 127 }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(command.dropFirst())
        do {
            try process.run()
        } catch {
            return 126
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
