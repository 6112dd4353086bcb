#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// `service install|uninstall` through the real binary, run from a folder whose path needs quoting in a unit
/// (a space, `%` and `$`). It never touches the machine's service managers: dry runs change nothing, real
/// installs go to a user unit folder under the test's own XDG_CONFIG_HOME, and PATH holds only fake
/// `systemctl` and `pm2` scripts that record how they were called.
@Suite(.timeLimit(.minutes(2)))
struct ServiceInstallTests {
    let root: String
    let instance: String
    let binary: String
    let fakeBin: String
    var configFile: String { instance + "/config/orchestrator.toml" }
    var calls: String { root + "/calls.log" }

    init() throws {
        root = NSTemporaryDirectory() + "orch-svc-\(UUID().uuidString.prefix(8))"
        instance = root + "/my inst%h $HOME"
        fakeBin = root + "/fakebin"
        let fm = FileManager.default
        for folder in ["config", "Inbox", "Done", "Failed", "bin dir%n"] {
            try fm.createDirectory(atPath: instance + "/" + folder, withIntermediateDirectories: true)
        }
        try fm.createDirectory(atPath: fakeBin, withIntermediateDirectories: true)
        try "[limits]\nshutdown_grace = \"45s\"\n\n[[handler]]\nname = \"t\"\ncommand = [\"/bin/true\", \"{file}\"]\n"
            .write(toFile: instance + "/config/orchestrator.toml", atomically: true, encoding: .utf8)
        // The unit names the binary that runs `install` (/proc/self/exe): this one, at a path that needs quoting.
        binary = instance + "/bin dir%n/orchestrator"
        let built = URL(fileURLWithPath: TestInstance.binary).resolvingSymlinksInPath().path
        for name in ["orchestrator", "orchestrator-spawn"] {
            let source = (built as NSString).deletingLastPathComponent + "/" + name
            let target = instance + "/bin dir%n/" + name
            if link(source, target) != 0 { try fm.copyItem(atPath: source, toPath: target) }
        }
        for tool in ["systemctl", "pm2"] {
            let script = fakeBin + "/" + tool
            try "#!/bin/sh\necho \"\(tool) $*\" >> '\(calls)'\n".write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
        }
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: root) }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `executable` with output in files (a hung command cannot block a read) and a timeout.
    func run(_ executable: String, _ arguments: [String], environment: [String: String], timeout: Double = 60) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        let out = root + "/.out-\(UUID().uuidString.prefix(8))"
        let err = out + ".err"
        defer {
            unlink(out)
            unlink(err)
        }
        for file in [out, err] { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        guard waitForExit(process, within: timeout, "\(executable) \(arguments)") else {
            throw TimedOut(description: "\(executable) did not exit within \(timeout) s")
        }
        return Output(status: process.terminationStatus, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    /// The environment of a user with their own XDG folder and only the fake managers on PATH.
    var userEnvironment: [String: String] {
        ["PATH": fakeBin, "HOME": root, "XDG_CONFIG_HOME": root + "/xdg"]
    }

    func orchestrator(_ arguments: [String], environment: [String: String]? = nil) throws -> Output {
        try run(binary, arguments + ["--config", configFile], environment: environment ?? userEnvironment)
    }

    func recordedCalls() -> [String] {
        ((try? String(contentsOfFile: calls, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// `would write PATH` from a dry run's trailing comments.
    func plannedFile(_ output: String) throws -> String {
        let line = try #require(output.split(separator: "\n").first { $0.contains("--dry-run: would write ") })
        return String(line[line.range(of: "would write ")!.upperBound...])
    }

    static var systemdAnalyze: String? {
        ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { access($0, X_OK) == 0 }
    }

    @Test(arguments: [false, true])
    func theDryRunUnitPassesSystemdAnalyzeVerifyAndChangesNothing(user: Bool) throws {
        defer { cleanUp() }
        let output = try orchestrator(["service", "install", "--systemd", "--dry-run"] + (user ? ["--user"] : []))
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stderr.isEmpty)
        let unitName = try #require(try plannedFile(output.stdout).split(separator: "/").last)
        #expect(unitName == #"orchestrator-tmp-orch\x2dsvc\x2d"# + root.suffix(8) + #"-my\x20inst\x25h\x20\x24HOME.service"#)
        #expect(output.stdout.contains(#"ExecStart="\#(instance.replacingOccurrences(of: "%", with: "%%"))/bin dir%%n/orchestrator" "watch" "--config" ""#))
        #expect(output.stdout.contains("TimeoutStopSec=105\n"))
        #expect(output.stdout.contains(user ? "WantedBy=default.target\n" : "User="))
        // Nothing written, nothing created, no manager called.
        #expect(!FileManager.default.fileExists(atPath: root + "/xdg"))
        #expect(!FileManager.default.fileExists(atPath: instance + "/.orchestrator"))
        #expect(recordedCalls().isEmpty)

        let analyze = try #require(Self.systemdAnalyze, "systemd-analyze is missing: scripts/setup installs the systemd package")
        let folder = root + "/verify"
        try FileManager.default.createDirectory(atPath: folder + "/runtime", withIntermediateDirectories: true)
        chmod(folder + "/runtime", 0o700)
        let unitFile = folder + "/" + unitName
        try output.stdout.write(toFile: unitFile, atomically: true, encoding: .utf8)
        // A user manager's verify needs a runtime dir of its own; the system one reads no environment.
        let verify = try run(
            analyze, (user ? ["--user"] : []) + ["verify", unitFile],
            environment: ["PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": folder + "/runtime", "HOME": root])
        // verify checks the syntax, that the (unquoted, unescaped) executable exists and is executable, and
        // warns about unknown keys; a clean unit prints nothing.
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.isEmpty && verify.stderr.isEmpty, "\(verify.stdout)\(verify.stderr)")
    }

    /// The instance given to a dedicated user (`chown -R orchestrator: /srv/orchestrator`, as the README says) is run
    /// as that user, not as root who installs it; and the whole instance folder is writable, as the sample worker
    /// writes beside the config (`../reports`). Before, the unit said `User=root` and listed only the five folders.
    @Test func aSystemUnitRunsAsTheInstancesOwnerAndMayWriteTheWholeInstance() throws {
        defer { cleanUp() }
        guard getuid() == 0, let nobody = getpwnam("nobody") else { return }
        #expect(chown(configFile, nobody.pointee.pw_uid, nobody.pointee.pw_gid) == 0)
        let output = try orchestrator(["service", "install", "--systemd", "--dry-run"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("\nUser=nobody\n"), "\(output.stdout)")
        let writable = output.stdout.split(separator: "\n").first { $0.hasPrefix("ReadWritePaths=") }.map(String.init) ?? ""
        let escaped = instance.replacingOccurrences(of: "%", with: "%%")
        #expect(writable == "ReadWritePaths=\"\(escaped)\"", "\(writable)")
    }

    @Test func aUserUnitIsWrittenEnabledWhereSystemdRunsAndUninstalledAgain() throws {
        defer { cleanUp() }
        let dryRun = try orchestrator(["service", "install", "--systemd", "--user", "--dry-run"])
        let file = try plannedFile(dryRun.stdout)
        #expect(file.hasPrefix(root + "/xdg/systemd/user/orchestrator-"))

        let install = try orchestrator(["service", "install", "--systemd", "--user"])
        #expect(install.status == 0, "\(install.stderr)")
        let written = try String(contentsOfFile: file, encoding: .utf8)
        #expect(dryRun.stdout.hasPrefix(written), "the dry run printed what install writes")
        #expect(FileManager.default.fileExists(atPath: instance + "/.orchestrator"), "ReadWritePaths= folders made")
        let name = String(file.split(separator: "/").last!)
        let quotedName = "'\(name)'"
        if FileManager.default.fileExists(atPath: "/run/systemd/system") {
            #expect(recordedCalls() == ["systemctl --user daemon-reload", "systemctl --user enable --now \(name)"])
        } else {
            #expect(recordedCalls().isEmpty)
            #expect(install.stdout.contains("systemd is not running on this machine"))
            #expect(install.stdout.contains("  systemctl --user enable --now \(quotedName)\n"))
        }

        let uninstall = try orchestrator(["service", "uninstall", "--systemd", "--user"])
        #expect(uninstall.status == 0, "\(uninstall.stderr)")
        #expect(!FileManager.default.fileExists(atPath: file))
        #expect(uninstall.stdout.contains("removed \(file)"))
        let again = try orchestrator(["service", "uninstall"])
        #expect(again.status == 65)
        #expect(again.stderr.hasPrefix("error: no service is installed for \(configFile)"), "\(again.stderr)")
    }

    @Test func pm2GetsAnEcosystemFileBesideTheConfigStartedSavedAndDeleted() throws {
        defer { cleanUp() }
        let install = try orchestrator(["service", "install", "--pm2"])
        #expect(install.status == 0, "\(install.stderr)")
        let file = instance + "/config/orchestrator.ecosystem.config.js"
        let name = "orchestrator-tmp-orch-svc-\(root.suffix(8))-my_inst_h__HOME"
        #expect(recordedCalls() == ["pm2 start \(file)", "pm2 save"])
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains("      kill_timeout: 50000,\n"))
        #expect(text.contains("      name: \"\(name)\",\n"))
        // Node, where installed, reads back exactly the paths (pm2 itself is not installed here).
        let nodes: [String] = ["/usr/bin/node", "/usr/local/bin/node"]
        if let node = nodes.first(where: { access($0, X_OK) == 0 }) {
            let read = try run(node, ["-e", "const a = require(process.argv[1]).apps[0]; console.log(JSON.stringify([a.script, ...a.args, a.cwd]))", file],
                               environment: ["PATH": "/usr/bin:/bin"])
            #expect(read.status == 0, "\(read.stderr)")
            let values = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String]
            let expected: [String] = [binary, "watch", "--config", configFile, instance + "/config"]
            #expect(values == expected)
        }

        let uninstall = try orchestrator(["service", "uninstall", "--pm2"])
        #expect(uninstall.status == 0, "\(uninstall.stderr)")
        #expect(recordedCalls().suffix(2) == ["pm2 delete \(name)", "pm2 save"])
        #expect(!FileManager.default.fileExists(atPath: file))
    }

    @Test func refusals() throws {
        defer { cleanUp() }
        let noManager = try orchestrator(["service", "install"])
        #expect(noManager.status == 64)
        let both = try orchestrator(["service", "install", "--systemd", "--pm2", "--dry-run"])
        #expect(both.status == 64)
        let userAlone = try orchestrator(["service", "install", "--user", "--dry-run"])
        #expect(userAlone.status == 64)

        // A user unit folder that cannot be made (its parent is a file): even root cannot write there.
        #expect(FileManager.default.createFile(atPath: root + "/xdg", contents: Data()))
        let unwritable = try orchestrator(["service", "install", "--systemd", "--user"])
        #expect(unwritable.status == 1)
        #expect(unwritable.stderr.hasPrefix("error: cannot write \(root)/xdg/systemd/user/orchestrator-"), "\(unwritable.stderr)")
        #expect(unwritable.stderr.split(separator: "\n").count == 1)
        #expect(recordedCalls().isEmpty)

        try "[[handler]]\nname = \"t\"\ncommand = \"not a list\"\n".write(toFile: configFile, atomically: true, encoding: .utf8)
        let invalid = try orchestrator(["service", "install", "--systemd", "--dry-run"])
        #expect(invalid.status == 78)
        #expect(invalid.stdout.isEmpty)
        #expect(invalid.stderr.hasPrefix("\(configFile):3: error:"), "\(invalid.stderr)")
    }
}
