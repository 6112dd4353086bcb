import OrchestratorConfig
import OrchestratorCore
import Testing

@testable import OrchestratorDaemon

@Suite struct ServiceFilesTests {
    let definition = ServiceDefinition(
        binary: "/usr/local/bin/orchestrator", configFile: "/srv/orchestrator/config/orchestrator.toml",
        workingDirectory: "/srv/orchestrator/config",
        writablePaths: ["/srv/orchestrator/Inbox", "/srv/orchestrator/Inbox/.processing", "/srv/orchestrator/Done",
                        "/srv/orchestrator/Failed", "/srv/orchestrator/.orchestrator"],
        shutdownGrace: .seconds(30))
    let account = ServiceAccount(user: "alice", group: "staff")

    func setting(_ key: String, in text: String) -> [String] {
        text.split(separator: "\n").filter { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    @Test func theDefinitionTakesEveryFolderFromTheConfigOnce() {
        let paths = Paths(inbox: "/x/In", done: "/y/Done", failed: "/y/Failed", state: "/z/state", processing: "/x/In/.p")
        var config = Config(file: "/x/config/orchestrator.toml", baseDirectory: "/x/config", paths: paths)
        config.limits.shutdownGrace = .milliseconds(2500)
        let made = ServiceDefinition(config: config, binary: "/b/orchestrator")
        // init's layout: the whole instance folder (workers write beside the config), then the folders outside it.
        #expect(made.writablePaths == ["/x", "/y/Done", "/y/Failed", "/z/state"])
        #expect(made.workingDirectory == "/x/config")
        #expect(made.stopTimeoutSeconds == 63)
        #expect(made.pm2KillTimeoutMilliseconds == 7500)
        // A config elsewhere: each folder, once.
        let elsewhere = ServiceDefinition(
            config: Config(file: "/etc/orch.toml", baseDirectory: "/etc", paths: paths), binary: "/b/orchestrator")
        #expect(elsewhere.writablePaths == ["/x/In", "/x/In/.p", "/y/Done", "/y/Failed", "/z/state"])
    }

    @Test func aSystemUnitCarriesWhatTheDeployUnitCarriesForThisConfig() throws {
        let unit = try ServiceFiles.systemdUnit(definition, account: account)
        #expect(setting("Type", in: unit) == ["notify"])
        #expect(setting("User", in: unit) == ["alice"])
        #expect(setting("Group", in: unit) == ["staff"])
        #expect(setting("ExecStart", in: unit)
            == [#""/usr/local/bin/orchestrator" "watch" "--config" "/srv/orchestrator/config/orchestrator.toml""#])
        #expect(setting("ExecReload", in: unit) == ["/bin/kill -HUP $MAINPID"])
        #expect(setting("WorkingDirectory", in: unit) == ["/srv/orchestrator/config"])
        #expect(setting("WatchdogSec", in: unit) == ["60"])
        #expect(setting("KillMode", in: unit) == ["mixed"])
        #expect(setting("TimeoutStopSec", in: unit) == ["90"])
        #expect(setting("Restart", in: unit) == ["on-failure"])
        #expect(setting("RestartPreventExitStatus", in: unit) == ["64 69 78"])
        #expect(setting("NoNewPrivileges", in: unit) == ["yes"])
        #expect(setting("ProtectSystem", in: unit) == ["strict"])
        #expect(setting("ReadWritePaths", in: unit) == [
            #""/srv/orchestrator/Inbox" "/srv/orchestrator/Inbox/.processing" "/srv/orchestrator/Done" "/srv/orchestrator/Failed" "/srv/orchestrator/.orchestrator""#,
        ])
        #expect(setting("PrivateTmp", in: unit) == ["yes"])
        #expect(setting("WantedBy", in: unit) == ["multi-user.target"])
    }

    @Test func anInstanceUnderATemporaryFolderGoesWithoutPrivateTmp() throws {
        var trial = definition
        trial.configFile = "/tmp/trial/config/orchestrator.toml"
        trial.workingDirectory = "/tmp/trial/config"
        trial.writablePaths = ["/tmp/trial"]
        let unit = try ServiceFiles.systemdUnit(trial, account: account)
        #expect(setting("PrivateTmp", in: unit).isEmpty)
        #expect(unit.contains("# No PrivateTmp=: /tmp/trial/config/orchestrator.toml is under a temporary folder"))
        #expect(setting("PrivateTmp", in: try ServiceFiles.systemdUnit(definition, account: account)) == ["yes"])
    }

    @Test func aUserUnitHasNoAccountAndIsWantedByTheDefaultTarget() throws {
        let unit = try ServiceFiles.systemdUnit(definition, account: nil)
        #expect(setting("User", in: unit).isEmpty)
        #expect(setting("Group", in: unit).isEmpty)
        #expect(setting("WantedBy", in: unit) == ["default.target"])
        #expect(setting("ProtectSystem", in: unit) == ["strict"])
    }

    @Test func theStopTimeoutFollowsTheShutdownGrace() throws {
        var slow = definition
        slow.shutdownGrace = .seconds(300)
        #expect(setting("TimeoutStopSec", in: try ServiceFiles.systemdUnit(slow, account: account)) == ["360"])
        #expect(try ServiceFiles.pm2Ecosystem(slow).contains("kill_timeout: 305000,"))
    }

    @Test func spacesPercentSignsAndDollarsAreQuotedAndEscapedForSystemd() throws {
        let root = "/home/a b/100% $HOME"
        let odd = ServiceDefinition(
            binary: "\(root)/bin/orchestrator", configFile: "\(root)/config/orchestrator.toml", workingDirectory: "\(root)/config",
            writablePaths: ["\(root)/Inbox", "/q\"uote\\d"], shutdownGrace: .seconds(30))
        let unit = try ServiceFiles.systemdUnit(odd, account: ServiceAccount(user: "a%b", group: "g"))
        // `$` is substituted in the arguments only, never in the executable's path or in ReadWritePaths=.
        #expect(setting("ExecStart", in: unit)
            == [#""/home/a b/100%% $HOME/bin/orchestrator" "watch" "--config" "/home/a b/100%% $$HOME/config/orchestrator.toml""#])
        #expect(setting("ReadWritePaths", in: unit) == [#""/home/a b/100%% $HOME/Inbox" "/q\"uote\\d""#])
        #expect(setting("WorkingDirectory", in: unit) == ["/home/a b/100%% $HOME/config"])
        #expect(setting("User", in: unit) == ["a%%b"])
        #expect(try ServiceFiles.unitName(for: odd) == #"orchestrator-home-a\x20b-100\x25\x20\x24HOME.service"#)
    }

    @Test func pathsAUnitCannotCarryAreRefused() {
        var quoted = definition
        quoted.binary = "/opt/it's/orchestrator"
        #expect(throws: ServiceFileError.self) { try ServiceFiles.systemdUnit(quoted, account: nil) }
        var newline = definition
        newline.writablePaths.append("/srv/a\nb")
        #expect(throws: ServiceFileError.self) { try ServiceFiles.systemdUnit(newline, account: nil) }
        #expect(throws: ServiceFileError.self) { try ServiceFiles.pm2Ecosystem(newline) }
    }

    /// systemd-escape --path, checked against systemd-escape 252 for each case.
    @Test(arguments: [
        ("/srv/orchestrator", "srv-orchestrator"),
        ("/work/wt-service", #"work-wt\x2dservice"#),
        ("/.hidden/x.y", #"\x2ehidden-x.y"#),
        ("/a/.b//c/", "a-.b-c"),
        ("/", "-"),
        ("/tmp/ü", #"tmp-\xc3\xbc"#),
        ("/a b%c:d_e", #"a\x20b\x25c:d_e"#),
    ])
    func unitNamesFollowSystemdEscape(path: String, escaped: String) {
        #expect(SystemdSyntax.escapePath(path) == escaped)
    }

    @Test func theUnitIsNamedAfterTheInstanceFolderOrElseTheConfigFile() throws {
        #expect(try ServiceFiles.unitName(for: definition) == "orchestrator-srv-orchestrator.service")
        var elsewhere = definition
        elsewhere.configFile = "/etc/orch/nightly.toml"
        #expect(try ServiceFiles.unitName(for: elsewhere) == "orchestrator-etc-orch-nightly.toml.service")
        #expect(ServiceFiles.pm2Name(for: definition) == "orchestrator-srv-orchestrator")
        elsewhere.configFile = "/home/a b/cfg/x.toml"
        #expect(ServiceFiles.pm2Name(for: elsewhere) == "orchestrator-home-a_b-cfg-x.toml")
    }

    @Test func theEcosystemFileCarriesWhatTheDeployFileCarries() throws {
        let text = try ServiceFiles.pm2Ecosystem(definition)
        for line in [
            #"      name: "orchestrator-srv-orchestrator","#,
            #"      script: "/usr/local/bin/orchestrator","#,
            #"      args: ["watch", "--config", "/srv/orchestrator/config/orchestrator.toml"],"#,
            #"      cwd: "/srv/orchestrator/config","#,
            #"      interpreter: "none","#,
            "      treekill: false,",
            "      kill_timeout: 35000,",
            "      autorestart: true,",
            "      stop_exit_codes: [64, 69, 78],",
        ] {
            #expect(text.split(separator: "\n").contains(Substring(line)), "missing: \(line)")
        }
    }

    @Test func javaScriptStringsAreEscaped() {
        #expect(JavaScriptSyntax.stringLiteral(#"/a "b" \c"#) == #""/a \"b\" \\c""#)
        #expect(JavaScriptSyntax.stringLiteral("x\u{2028}y\u{1}") == #""x\u2028y\u0001""#)
        #expect(JavaScriptSyntax.stringLiteral("/home/ü %$") == #""/home/ü %$""#)
    }

    @Test func plansPutFilesWhereEachManagerLooks() throws {
        let environment = ServicePlan.Environment(home: "/home/alice", configHome: nil)
        let system = try ServicePlan.install(.systemd, definition: definition, account: account, environment: environment)
        #expect(system.file == "/etc/systemd/system/orchestrator-srv-orchestrator.service")
        #expect(system.commandsAfter == [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "orchestrator-srv-orchestrator.service"]])
        let user = try ServicePlan.install(.systemdUser, definition: definition, account: account, environment: environment)
        #expect(user.file == "/home/alice/.config/systemd/user/orchestrator-srv-orchestrator.service")
        #expect(user.commandsAfter.allSatisfy { $0.starts(with: ["systemctl", "--user"]) })
        let xdg = try ServicePlan.uninstall(
            .systemdUser, definition: definition, environment: .init(home: "/home/alice", configHome: "/cfg"))
        #expect(xdg.file == "/cfg/systemd/user/orchestrator-srv-orchestrator.service")
        #expect(xdg.commandsBefore == [["systemctl", "--user", "disable", "--now", "orchestrator-srv-orchestrator.service"]])
        let relativeXDG = try ServicePlan.uninstall(
            .systemdUser, definition: definition, environment: .init(home: "/home/alice", configHome: "cfg"))
        #expect(relativeXDG.file.hasPrefix("/home/alice/.config/"))
        let pm2 = try ServicePlan.install(.pm2, definition: definition, account: account, environment: environment)
        #expect(pm2.file == "/srv/orchestrator/config/orchestrator.ecosystem.config.js")
        #expect(pm2.commandsAfter == [["pm2", "start", pm2.file], ["pm2", "save"]])
    }

    @Test func shellLinesQuoteWhatTheShellWouldChange() {
        #expect(ServicePlan.shellLine(["systemctl", "enable", "--now", #"orchestrator-a\x2db.service"#])
            == #"systemctl enable --now 'orchestrator-a\x2db.service'"#)
        #expect(ServicePlan.shellLine(["pm2", "start", "/it's here"]) == #"pm2 start '/it'\''s here'"#)
    }
}
