#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Trustworthy under faults, the config and command-line part: config files that are not files, folders
/// that overlap, commands that cannot start, a second owner of one Inbox, a log that is not the journal,
/// hidden files in Failed/, and a state dir in any condition.
@Suite(.serialized)
struct FaultsConfigTests {
    /// Runs the binary with a deadline; a process still running then is killed and reported.
    func run(_ arguments: [String], in instance: TestInstance, timeout: Double = 10) throws -> (TestInstance.Output, Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestInstance.binary)
        process.arguments = arguments
        process.currentDirectoryURL = instance.root
        let outPath = instance.path("run-\(UUID().uuidString.prefix(6)).out")
        let errPath = outPath + ".err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let started = Date()
        try process.run()
        do {
            try waitUntil("\(arguments) exits", timeout: timeout) { !process.isRunning }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw error
        }
        let elapsed = Date().timeIntervalSince(started)
        let output = TestInstance.Output(
            status: process.terminationStatus, stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
        return (output, elapsed)
    }

    // MARK: Guarantee 19

    @Test func aConfigThatIsNotASmallRegularFileIsRefusedAtOnceByEveryCommand() throws {
        let instance = try TestInstance(config: "")
        let fifo = instance.path("config/fifo.toml")
        #expect(mkfifo(fifo, 0o644) == 0)
        let big = instance.path("config/big.toml")
        try String(repeating: "# padding\n", count: 2 * 1024 * 1024 / 10).write(toFile: big, atomically: false, encoding: .utf8)
        for (config, kind) in [
            ("/dev/zero", "character device"), (fifo, "FIFO"), (instance.path("config"), "folder"), (big, "larger than 1 MiB"),
        ] {
            for command in [["config", "check"], ["watch"], ["status"]] {
                let (output, seconds) = try run(command + ["--config", config], in: instance, timeout: 5)
                #expect(output.status == 78, "\(command) --config \(config): \(output.stderr)")
                #expect(seconds < 1, "\(command) --config \(config) took \(seconds) s")
                #expect(output.stderr.contains("config file refused") && output.stderr.contains(kind), "\(output.stderr)")
            }
        }
    }

    /// SPEC section 3: "`config check` (and a refused `watch`) prints every problem it finds": a refused `watch` listed
    /// only the problems in the text, not a command that cannot start.
    @Test func aRefusedWatchListsEveryProblemConfigCheckDoes() throws {
        let instance = try TestInstance(config: testConfig(handler: """
            command = ["../workers/missing.sh"]
            priority = 11
            """))
        let check = try instance.run(["config", "check"])
        let (watch, _) = try run(["watch", "--config", instance.configURL.path], in: instance, timeout: 10)
        #expect(check.status == 78 && watch.status == 78)
        let lines = check.stderr.split(separator: "\n").filter { $0.contains("error:") }
        #expect(lines.count == 2 && lines.contains { $0.contains("missing.sh does not exist") } && lines.contains { $0.contains("priority") }, "\(check.stderr)")
        #expect(watch.stderr.split(separator: "\n") == lines, "\(watch.stderr)")
    }

    /// SPEC section 3: "Every command takes `--config FILE`", also written before the command, and `init`.
    @Test func configBeforeTheCommandAndInitWithConfigAreTaken() throws {
        let instance = try TestInstance(config: testConfig(handler: "command = [\"true\"]"))
        let (status, _) = try run(["--config", instance.configURL.path, "status", "--json"], in: instance)
        #expect(status.status == 0 && status.stdout.contains("\"daemon\""), "\(status.stderr)")
        let (check, _) = try run(["--config=\(instance.configURL.path)", "config", "check"], in: instance)
        #expect(check.status == 0 && check.stdout.contains(": ok ("), "\(check.stderr)")
        let made = instance.path("made")
        let (initialized, _) = try run(["init", "--config", made + "/etc/site.toml"], in: instance)
        #expect(initialized.status == 0, "\(initialized.stderr)")
        for folder in ["Inbox", "Done", "Failed", "workers", ".orchestrator"] {
            #expect(FileManager.default.fileExists(atPath: made + "/" + folder), "\(folder) under \(made)")
        }
        let (madeCheck, _) = try run(["config", "check", "--config", made + "/etc/site.toml"], in: instance)
        #expect(madeCheck.status == 0, "\(madeCheck.stdout)\(madeCheck.stderr)")
        let (disagreeing, _) = try run(["init", instance.path("other"), "--config", made + "/etc/site.toml"], in: instance)
        #expect(disagreeing.status == 64 && disagreeing.stderr.contains("the instance folder"), "\(disagreeing.stderr)")
    }

    // MARK: Guarantee 18, folders

    @Test func doneThatIsInboxThroughASymlinkIsRefusedByCheckAndWatch() throws {
        let instance = try TestInstance(config: """
            [paths]
            inbox = "../Inbox"
            done = "../Done-link"

            [[handler]]
            name = "h"
            command = ["true"]
            """)
        #expect(symlink(instance.path("Inbox"), instance.path("Done-link")) == 0)
        try instance.drop("one.txt")
        let check = try run(["config", "check", "--config", instance.configURL.path], in: instance).0
        #expect(check.status == 78)
        #expect(check.stderr.contains("orchestrator.toml:3: error: paths: inbox"), "\(check.stderr)")
        #expect(check.stderr.contains("same directory"))
        let watch = try run(["watch", "--config", instance.configURL.path], in: instance).0
        #expect(watch.status == 78)
        #expect(watch.stderr.contains("orchestrator.toml:3: error:"), "\(watch.stderr)")
        #expect(instance.names(in: "Inbox") == [Array("one.txt".utf8)], "nothing ran")
        for command in [["sweep", "--mode", "ingest"], ["replay", "--all"]] {
            #expect(try run(command + ["--config", instance.configURL.path], in: instance).0.status == 78, "\(command)")
        }
    }

    /// `config check` prints every problem: one in `[paths]` hid the commands that cannot start until it was fixed.
    @Test func aProblemInPathsDoesNotHideACommandThatCannotStart() throws {
        let instance = try TestInstance(config: """
            [paths]
            inbox = "../Inbox"
            bogus = 1

            [[handler]]
            name = "a"
            command = ["../workers/nope.sh"]
            """)
        let check = try run(["config", "check", "--config", instance.configURL.path], in: instance).0
        #expect(check.status == 78)
        let path = instance.configURL.path
        #expect(check.stderr == """
            \(path):3: error: unknown key "bogus" in [paths]
            \(path):7: error: handler "a": command: \(instance.path("workers/nope.sh")) does not exist

            """, "\(check.stderr)")
    }

    @Test func foldersThatAreSymlinksToDistinctFoldersAreFine() throws {
        let instance = try TestInstance(config: """
            [paths]
            done = "../Done-link"

            [inbox]
            settle = "200ms"

            [[handler]]
            name = "h"
            command = ["true"]
            """)
        try FileManager.default.createDirectory(atPath: instance.path("elsewhere/Done"), withIntermediateDirectories: true)
        #expect(symlink(instance.path("elsewhere/Done"), instance.path("Done-link")) == 0)
        #expect(try run(["config", "check", "--config", instance.configURL.path], in: instance).0.status == 0)
        try instance.startDaemon()
        try instance.drop("one.txt")
        try instance.waitUntil("one.txt is in the linked Done", timeout: 20) {
            FileManager.default.fileExists(atPath: instance.path("elsewhere/Done/one.txt"))
        }
        #expect(instance.stopDaemon() == 0)
    }

    @Test func aCommandThatDoesNotResolveIsAConfigErrorAtItsLine() throws {
        let instance = try TestInstance(config: """
            [[handler]]
            name = "h"
            command = ["../workers/absent.sh", "{file}"]
            upload = ["no-such-uploader-for-tests"]

            [[task]]
            name = "t"
            every = "1h"
            command = ["../workers/present.sh"]
            """, workers: ["present.sh": "#!/bin/sh\n"])
        let check = try run(["config", "check", "--config", instance.configURL.path], in: instance).0
        #expect(check.status == 78)
        let lines = check.stderr.split(separator: "\n")
        #expect(lines.count == 2, "\(check.stderr)")
        #expect(lines.first?.hasSuffix("orchestrator.toml:3: error: handler \"h\": command: \(instance.path("workers/absent.sh")) does not exist") == true)
        #expect(lines.last?.contains("orchestrator.toml:4: error: handler \"h\": upload: \"no-such-uploader-for-tests\" is not found in PATH") == true)
        let watch = try run(["watch", "--config", instance.configURL.path], in: instance).0
        #expect(watch.status == 78 && watch.stderr == check.stderr, "\(watch.stderr)")
        // An error in the text does not hide them: `config check` lists both kinds at once, in line order.
        var text = try String(contentsOf: instance.configURL, encoding: .utf8)
        text = text.replacingOccurrences(of: "every = \"1h\"", with: "every = \"1h\"\nevry = \"2h\"")
        try text.write(to: instance.configURL, atomically: true, encoding: .utf8)
        let both = try run(["config", "check", "--config", instance.configURL.path], in: instance).0
        let bothLines = both.stderr.split(separator: "\n")
        #expect(both.status == 78 && bothLines.count == 3, "\(both.stderr)")
        #expect(bothLines.first?.contains("orchestrator.toml:3: error: handler \"h\": command:") == true, "\(both.stderr)")
        #expect(bothLines.last?.contains("orchestrator.toml:9: error:") == true && bothLines.last?.contains("evry") == true, "\(both.stderr)")
    }

    // MARK: Guarantee 18, one owner

    /// A second config beside the instance's: same Inbox, Done and Failed, its own state dir.
    func secondConfig(_ instance: TestInstance) throws -> String {
        let path = instance.path("config/second.toml")
        try """
            [paths]
            state = "../state-two"

            [inbox]
            settle = "200ms"

            [[handler]]
            name = "two"
            command = ["true"]
            """.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    @Test func aSecondDaemonOnTheSameInboxExits69NamingTheHolder() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        let second = try secondConfig(instance)
        try instance.startDaemon()
        let holder = try #require(instance.daemon?.processIdentifier)

        let watch = try run(["watch", "--config", second], in: instance).0
        #expect(watch.status == 69)
        #expect(watch.stderr.contains("pid \(holder)"), "\(watch.stderr)")
        #expect(watch.stderr.contains("already owns Inbox \(instance.path("Inbox"))"))
        #expect(watch.stderr.split(separator: "\n").count == 1)
        // Refused before anything was made for it: it left its new state folder behind.
        #expect(!FileManager.default.fileExists(atPath: instance.path("state-two")))

        // A one-shot run of the other state dir cannot hand its work to this daemon: refused too.
        let sweep = try run(["sweep", "--mode", "ingest", "--config", second], in: instance).0
        #expect(sweep.status == 69 && sweep.stderr.contains("pid \(holder)"), "\(sweep.stderr)")

        try instance.drop("after.txt")
        try instance.waitUntil("the first daemon still processes", timeout: 20) { instance.count(in: "Done") == 1 }
        #expect(!FileManager.default.fileExists(atPath: instance.path("state-two/orchestrator.sqlite")))
        #expect(instance.stopDaemon() == 0)

        // The owner gone, the other config may take the Inbox.
        let after = try run(["sweep", "--mode", "ingest", "--config", second], in: instance).0
        #expect(after.status == 0, "\(after.stderr)")
    }

    @Test func theLocksAreHiddenAndNeverTakenForClaimedFiles() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        try instance.startDaemon()
        #expect(FileManager.default.fileExists(atPath: instance.path("Inbox/.processing/.orchestrator.lock")))
        #expect(FileManager.default.fileExists(atPath: instance.path("Inbox/.orchestrator.lock")))
        instance.killDaemon()
        // A restart recovers the processing area: its lock is not an unrecorded claim.
        try instance.startDaemon()
        try instance.drop("a.txt")
        try instance.waitUntil("a.txt is done", timeout: 20) { instance.count(in: "Done") == 1 }
        #expect(instance.count(in: "Failed") == 0)
        #expect(instance.names(in: "Done") == [Array("a.txt".utf8)])
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: journald

    @Test func aJournalStreamThatIsNotStderrGetsNoPriorityPrefixes() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        try instance.startDaemon(environment: ["JOURNAL_STREAM": "1:1"])
        #expect(instance.stopDaemon() == 0)
        let lines = instance.log.split(separator: "\n")
        #expect(lines.contains { $0.contains("INFO watching") }, "\(instance.log)")
        #expect(!lines.contains { $0.hasPrefix("<") }, "\(instance.log)")
    }

    // MARK: replay

    @Test func replayAllLeavesHiddenEntriesInFailed() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        _ = FileManager.default.createFile(atPath: instance.path("Failed/.gitkeep"), contents: nil)
        try instance.drop("bad.txt", into: "Failed")
        try FileManager.default.createDirectory(atPath: instance.path("Failed/.hidden-dir"), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: instance.path("Failed/.hidden-dir/inner.txt"), contents: nil)
        let output = try run(["replay", "--all", "--config", instance.configURL.path], in: instance).0
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout == "replayed bad.txt -> Inbox/bad.txt\n")
        #expect(FileManager.default.fileExists(atPath: instance.path("Failed/.gitkeep")))
        #expect(FileManager.default.fileExists(atPath: instance.path("Failed/.hidden-dir/inner.txt")))
        #expect(!FileManager.default.fileExists(atPath: instance.path("Inbox/.gitkeep")))
        // Again, with only hidden entries left: it says there was nothing to replay (before, it printed nothing).
        let again = try run(["replay", "--all", "--config", instance.configURL.path], in: instance).0
        #expect(again.status == 0 && again.stdout == "nothing to replay: \(instance.path("Failed")) holds no files\n", "\(again.stdout)")
    }

    /// Links the daemon put in Failed/ (never handed to a worker) stay there under `--all`, which says so: before,
    /// they went back into Inbox only to fail again.
    @Test func replayAllLeavesLinksInFailedAndSaysSo() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        try instance.drop("bad.txt", into: "Failed")
        try #require(symlink("/etc/hostname", instance.path("Failed/link.txt")) == 0, "symlink: errno \(errno)")
        let output = try run(["replay", "--all", "--config", instance.configURL.path], in: instance).0
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("left link.txt: a symlink, which would fail again"), "\(output.stdout)")
        #expect(output.stdout.contains("replayed bad.txt -> Inbox/bad.txt"), "\(output.stdout)")
        let link = try FileManager.default.attributesOfItem(atPath: instance.path("Failed/link.txt"))
        #expect(link[.type] as? FileAttributeType == .typeSymbolicLink)
        #expect(FileManager.default.fileExists(atPath: instance.path("Inbox/bad.txt")))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: instance.path("Inbox/link.txt"))) == nil)
    }

    /// `replay` put a file where this config's daemon never looks (a folder with `recursive = false`, a name `exclude`
    /// matches) and said "replayed": it waited in Inbox for good, uncounted. Such files stay in Failed/, with the reason.
    @Test func replayLeavesInFailedWhatInboxWouldNeverTake() throws {
        let instance = try TestInstance(config: """
            [inbox]
            settle = "200ms"
            recursive = false
            exclude = ["*.tmp"]

            [[handler]]
            name = "test"
            command = ["true"]
            """)
        try FileManager.default.createDirectory(atPath: instance.path("Failed/sub"), withIntermediateDirectories: true)
        try instance.drop("sub/x.txt", into: "Failed")
        try instance.drop("a.tmp", into: "Failed")
        try instance.drop("ok.txt", into: "Failed")
        for name in ["sub/x.txt", "a.tmp"] {
            let refused = try instance.run(["replay", name])
            #expect(refused.status == 65, "\(name): \(refused.stdout) \(refused.stderr)")
            #expect(refused.stderr.contains("error: \(name) stays in Failed/"), "\(refused.stderr)")
        }
        let all = try instance.run(["replay", "--all"])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.stdout.contains("left sub/x.txt: it is in a folder, and [inbox] recursive = false"), "\(all.stdout)")
        #expect(all.stdout.contains("left a.tmp: [inbox] include/exclude would not take it"), "\(all.stdout)")
        #expect(all.stdout.contains("replayed ok.txt -> Inbox/ok.txt"), "\(all.stdout)")
        #expect(FileManager.default.fileExists(atPath: instance.path("Failed/sub/x.txt")))
        #expect(FileManager.default.fileExists(atPath: instance.path("Failed/a.tmp")))
        #expect(instance.names(in: "Inbox") == [Array("ok.txt".utf8)])
    }

    /// A name that is not UTF-8 (Latin-1 from an old share) can be named on the command line: Swift had decoded it with
    /// a replacement character, and `show`, `cancel` and `replay` looked for another name ("does not exist").
    @Test func aNameThatIsNotUTF8CanBeNamedOnTheCommandLine() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        let latin1: [UInt8] = Array("caf".utf8) + [0xE9] + Array(".txt".utf8)
        try instance.dropBytes(latin1, into: "Failed")
        // Through the shell: a Swift String cannot carry the byte 0xE9 alone as an argument.
        func shell(_ command: String) throws -> TestInstance.Output {
            try instance.run(["-c", "exec \"$0\" \(command) --config \"$1\"", TestInstance.binary, instance.configURL.path],
                             withConfig: false, executable: "/bin/sh")
        }
        let replayed = try shell(#"replay "$(printf 'Failed/caf\351.txt')""#)
        #expect(replayed.status == 0, "\(replayed.stderr)")
        #expect(instance.names(in: "Inbox").contains(latin1))
        try instance.startDaemon()
        try instance.waitUntil("it is done", timeout: 20) { instance.names(in: "Done").contains(latin1) }
        let shown = try shell(#"show "$(printf 'Done/caf\351.txt')""#)
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("state:     done"), "\(shown.stdout)")
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: status

    @Test func statusExitsZeroWhateverTheStateDirsConditionAndSaysWhatItCouldNotRead() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        let state = instance.path(".orchestrator")
        let conditions: [(String, () throws -> Void, String)] = [
            ("missing", { try? FileManager.default.removeItem(atPath: state) }, "does not exist"),
            ("a file", { try "not a folder\n".write(toFile: state, atomically: false, encoding: .utf8) }, "is not a folder"),
            ("garbage database", {
                try? FileManager.default.removeItem(atPath: state)
                try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
                try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
                    .write(to: URL(fileURLWithPath: state + "/orchestrator.sqlite"))
            }, "cannot open the state database"),
        ]
        for (condition, make, says) in conditions {
            try make()
            let text = try run(["status", "--config", instance.configURL.path], in: instance).0
            #expect(text.status == 0, "\(condition): \(text.stderr)")
            #expect(text.stdout.contains("daemon:   not running"), "\(condition)")
            #expect(text.stdout.contains("warning:  ") && text.stdout.contains(says), "\(condition): \(text.stdout)")
            let json = try run(["status", "--json", "--config", instance.configURL.path], in: instance).0
            #expect(json.status == 0, "\(condition): \(json.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let unread = object?["cannot_read"] as? [String] ?? []
            #expect(unread.count == 1 && unread.first?.contains(says) == true, "\(condition): \(json.stdout)")
        }
        // status only reads: it created nothing in place of the missing state dir.
        try FileManager.default.removeItem(atPath: state)
        _ = try run(["status", "--config", instance.configURL.path], in: instance)
        #expect(!FileManager.default.fileExists(atPath: state))
    }

    /// The commands that read the store say what is wrong with the state dir (exit 1), as they do for a damaged
    /// database; only a database that is not there yet is "nothing recorded" (before, a state dir that is a file gave
    /// "no runs recorded yet", exit 0).
    @Test func readersSayTheStateDirIsNoFolder() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        let state = instance.path(".orchestrator")
        try? FileManager.default.removeItem(atPath: state)
        let history = try instance.run(["history"])
        #expect(history.status == 0 && history.stdout == "no runs recorded yet\n", "\(history.stderr)")
        #expect(try instance.run(["show", "1"]).stderr.contains("nothing has been recorded yet"))
        try "not a folder\n".write(toFile: state, atomically: false, encoding: .utf8)
        for arguments in [["history"], ["history", "--json"], ["show", "1"], ["cancel", "1"], ["tasks"]] {
            let result = try instance.run(arguments)
            #expect(result.status == 1, "\(arguments): \(result.stdout)")
            #expect(result.stderr == "error: the state dir \(state) is not a folder\n", "\(arguments)")
        }
    }
}
