#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorCore
import Testing
@testable import OrchestratorConfig

/// The checks `config check` and `watch` make against this machine: config files that may be read at all,
/// folders that must not overlap after resolving symlinks, commands that must resolve to executable files.
@Suite struct HostChecksTests {
    /// A fresh folder with `config/` in it; removed at the end of each test.
    final class Sandbox {
        let root: String
        init() throws {
            root = NSTemporaryDirectory() + "orch-host-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root + "/config", withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: root) }

        func folder(_ relative: String) throws {
            try FileManager.default.createDirectory(atPath: root + "/" + relative, withIntermediateDirectories: true)
        }
        func symlink(_ relative: String, to target: String) throws {
            try FileManager.default.createSymbolicLink(atPath: root + "/" + relative, withDestinationPath: target)
        }
        func file(_ relative: String, _ text: String = "#!/bin/sh\n", mode: mode_t = 0o755) throws {
            try text.write(toFile: root + "/" + relative, atomically: false, encoding: .utf8)
            chmod(root + "/" + relative, mode)
        }
        func config(_ text: String) throws -> Config {
            try Config.parse(text: text, file: root + "/config/orchestrator.toml")
        }
    }

    // MARK: Config files (guarantee 19)

    @Test func aConfigFileMustBeARegularFileOfAtMostOneMebibyte() throws {
        let sandbox = try Sandbox()
        let fifo = sandbox.root + "/config/fifo.toml"
        #expect(mkfifo(fifo, 0o644) == 0)
        let big = sandbox.root + "/config/big.toml"
        try String(repeating: "#", count: (1 << 20) + 1).write(toFile: big, atomically: false, encoding: .utf8)
        for (path, expected) in [
            ("/dev/zero", "it is a character device, not a regular file"), (fifo, "it is a FIFO, not a regular file"),
            (sandbox.root, "it is a folder, not a regular file"), (big, "it is larger than 1 MiB"),
        ] {
            do {
                _ = try Config.load(file: path)
                Issue.record("\(path) loaded")
            } catch {
                #expect(error.problems.count == 1)
                #expect(error.problems.first?.message.contains("config file refused: \(expected)") == true, "\(error)")
            }
        }
        let limit = sandbox.root + "/config/limit.toml"
        try String(repeating: "#", count: 1 << 20).write(toFile: limit, atomically: false, encoding: .utf8)
        #expect(throws: Never.self) { try Config.load(file: limit) }
    }

    // MARK: Folders (guarantee 18)

    static let handler = "\n[[handler]]\nname = \"h\"\ncommand = [\"sh\"]\n"

    @Test func theBundledLayoutIsDistinct() throws {
        let sandbox = try Sandbox()
        for folder in ["Inbox/.processing", "Done", "Failed", ".orchestrator"] { try sandbox.folder(folder) }
        #expect(try sandbox.config(Self.handler).folderProblems().isEmpty)
        // Not created yet: placed under their nearest existing ancestor, still distinct.
        let fresh = try Sandbox()
        #expect(try fresh.config(Self.handler).folderProblems().isEmpty)
    }

    /// An Inbox under a symlink loop, and a file where Done should be: said at their keys by `config check`, where
    /// `watch` used to fail to create the folder, with no line, and `config check` said ok.
    @Test func aFolderThatCannotBeReachedOrIsAFileIsRefusedAtItsKey() throws {
        let sandbox = try Sandbox()
        try sandbox.symlink("loop", to: sandbox.root + "/loop")
        try sandbox.file("Done", "not a folder\n", mode: 0o644)
        let config = try sandbox.config("[paths]\ninbox = \"../loop/Inbox\"\ndone = \"../Done\"\n" + Self.handler)
        let problems = config.folderProblems()
        // The processing area, Inbox/.processing by default, is under the loop too.
        #expect(problems.count == 3 && problems.contains { $0.message.contains("paths: processing") }, "\(problems)")
        #expect(problems.contains { $0.line == 2 && $0.message.contains("paths: inbox") && $0.message.contains("cannot be reached: Too many levels of symbolic links") }, "\(problems)")
        #expect(problems.contains { $0.line == 3 && $0.message.contains("paths: done") && $0.message.contains("is not a folder") }, "\(problems)")
    }

    @Test func doneThatIsInboxThroughASymlinkIsRefusedAtTheLineOfDone() throws {
        let sandbox = try Sandbox()
        try sandbox.folder("Inbox")
        try sandbox.symlink("Done", to: sandbox.root + "/Inbox")
        let config = try sandbox.config("[paths]\ninbox = \"../Inbox\"\ndone = \"../Done\"\n" + Self.handler)
        let problems = config.folderProblems()
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.line == 3)
        #expect(problems.first?.message.contains("inbox") == true && problems.first?.message.contains("same directory") == true)
    }

    /// The claiming rename is atomic only within one filesystem: `config check` says so at the key, as `watch` did
    /// alone (procfs stands for any other filesystem: it is there on every Linux machine).
    @Test func aProcessingAreaOnAnotherFilesystemThanInboxIsRefusedAtItsKey() throws {
        let sandbox = try Sandbox()
        try sandbox.folder("Inbox")
        let config = try sandbox.config("[paths]\ninbox = \"../Inbox\"\nprocessing = \"/proc/orchestrator-test-processing\"\n" + Self.handler)
        let problems = config.folderProblems()
        #expect(problems.map(\.line) == [3], "\(problems)")
        #expect(problems.first?.message == "processing area /proc/orchestrator-test-processing is not on the same filesystem as Inbox \(sandbox.root)/Inbox")
        let beside = try sandbox.config("[paths]\ninbox = \"../Inbox\"\nprocessing = \"../claimed\"\n" + Self.handler)
        #expect(beside.folderProblems().isEmpty)
    }

    /// An unknown table that may be a misspelt `[paths]`, `[store]` or `[node]` (or a key of theirs out of place)
    /// leaves the folders unknown, so `config check` does not judge them; any other (`[wat]`) hides nothing.
    @Test func onlyAnUnknownEntryThatMayStandForTheFoldersHidesTheFolderChecks() throws {
        let sandbox = try Sandbox()
        try sandbox.folder("Inbox")
        let overlapping = "[paths]\ninbox = \"../Inbox\"\ndone = \"../Inbox/Done\"\n" + Self.handler
        for (extra, inDoubt) in [
            ("[wat]\nx = 1\n", false), ("[handlr]\nx = 1\n", false), ("[path]\nx = 1\n", true), ("[Store]\nx = 1\n", true),
            ("[nodes]\nx = 1\n", true), ("done = \"x\"\n", true),
        ] {
            let file = sandbox.root + "/config/orchestrator.toml"
            try (extra + overlapping).write(toFile: file, atomically: false, encoding: .utf8)
            let (_, problems, locationTrouble) = try Config.loadForChecking(file: file)
            #expect(locationTrouble == inDoubt, "\(extra)")
            #expect(problems.count == 1, "\(problems)")
        }
        #expect(!ConfigValidator.mayStandForLocation("verbose") && ConfigValidator.mayStandForLocation("PATHS"))
    }

    @Test func aFolderInsideAnotherThroughASymlinkIsRefused() throws {
        let sandbox = try Sandbox()
        try sandbox.folder("Inbox")
        try sandbox.folder("elsewhere")
        // Failed is elsewhere/Failed, and elsewhere is a link into Inbox: Failed lies inside Inbox.
        try FileManager.default.removeItem(atPath: sandbox.root + "/elsewhere")
        try sandbox.symlink("elsewhere", to: sandbox.root + "/Inbox")
        let config = try sandbox.config("[paths]\nfailed = \"../elsewhere/Failed\"\n" + Self.handler)
        let problems = config.folderProblems()
        #expect(problems.map(\.line) == [2], "\(problems)")
        #expect(problems.first?.message.contains("failed (\(sandbox.root)/elsewhere/Failed) lies inside inbox") == true)
    }

    @Test func nestingIsRefusedEitherWayRoundButProcessingMayBeWrittenUnderInbox() throws {
        let sandbox = try Sandbox()
        let nested = [
            "done = \"../Inbox/done\"", "inbox = \"../Done/in\"", "state = \"../Failed/state\"",
            "failed = \"../.orchestrator/failed\"", "processing = \"../Done/processing\"",
        ]
        for line in nested {
            let problems = try sandbox.config("[paths]\n\(line)\n" + Self.handler).folderProblems()
            #expect(problems.count == 1 && problems.first?.line == 2, "\(line): \(problems)")
        }
        for line in ["processing = \"../Inbox/work\"", "processing = \"../work\"", "state = \"../state\""] {
            #expect(try sandbox.config("[paths]\n\(line)\n" + Self.handler).folderProblems().isEmpty, "\(line)")
        }
    }

    @Test func processingInsideInboxOnlyThroughASymlinkIsRefused() throws {
        // Scans and the watch skip the processing area by its written path; reached through a link they would not.
        let sandbox = try Sandbox()
        try sandbox.folder("Inbox/work")
        try sandbox.symlink("work", to: sandbox.root + "/Inbox/work")
        let problems = try sandbox.config("[paths]\nprocessing = \"../work\"\n" + Self.handler).folderProblems()
        #expect(problems.count == 1 && problems.first?.message.contains("through a symlink") == true, "\(problems)")
    }

    @Test func relationComparesIdentitiesThenTheNamesThatDoNotExistYet() {
        let root = FolderLocation.Identity(device: 1, inode: 2)
        let data = FolderLocation.Identity(device: 1, inode: 10)
        // /mnt/bind is a bind mount of /data: same identity under another name.
        let viaBind = FolderLocation(components: ["mnt", "bind", "in"], identities: [root, .init(device: 1, inode: 3), data, nil])
        let direct = FolderLocation(components: ["data", "in"], identities: [root, data, nil])
        let below = FolderLocation(components: ["data", "in", "x"], identities: [root, data, nil, nil])
        let other = FolderLocation(components: ["data", "out"], identities: [root, data, nil])
        #expect(viaBind.relation(to: direct) == .same)
        #expect(below.relation(to: viaBind) == .inside)
        #expect(viaBind.relation(to: below) == .apart)
        #expect(other.relation(to: direct) == .apart)
    }

    // MARK: Commands (guarantee 14)

    @Test func everyCommandThatCannotStartIsReportedAtItsLine() throws {
        let sandbox = try Sandbox()
        try sandbox.folder("workers/folder")
        try sandbox.file("workers/ok.sh")
        try sandbox.file("workers/plain.sh", mode: 0o644)
        let config = try sandbox.config("""
            [[handler]]
            name = "missing"
            command = ["../workers/missing.sh", "{file}"]
            upload = ["no-such-uploader-xyz", "{file}"]

            [[handler]]
            name = "fine"
            command = ["../workers/ok.sh"]
            upload = ["sh", "-c", "true"]

            [[task]]
            name = "plain"
            every = "1m"
            command = ["../workers/plain.sh"]

            [[task]]
            name = "folder"
            every = "1m"
            command = ["../workers/folder"]

            [[task]]
            name = "dynamic"
            on = "x"
            command = ["{job}"]
            """)
        let problems = config.commandProblems(searchPath: "/usr/bin:/bin")
        #expect(problems.map(\.line) == [3, 4, 14, 19], "\(problems)")
        #expect(problems[0].message == "handler \"missing\": command: \(sandbox.root)/workers/missing.sh does not exist")
        #expect(problems[1].message.hasPrefix("handler \"missing\": upload: \"no-such-uploader-xyz\" is not found in PATH"))
        #expect(problems[2].message.hasSuffix("plain.sh is not executable (chmod +x it)"))
        #expect(problems[3].message.hasSuffix("folder is a folder, not a program"))
    }

    /// A task refused for another problem (a bad cron) is not loaded: the next task's command error was placed at
    /// the refused task's `command` line, not its own.
    @Test func aCommandProblemIsAtItsOwnTablesLineAfterARefusedTable() throws {
        let sandbox = try Sandbox()
        try sandbox.folder("config")
        try sandbox.file("config/orchestrator.toml", """
            [[task]]
            name = "bad_cron"
            cron = "61 * * * *"
            command = ["/bin/true"]

            [[task]]
            name = "missing_cmd"
            every = "1m"
            command = ["../workers/nope.sh"]
            """, mode: 0o644)
        let (config, problems, _) = try Config.loadForChecking(file: sandbox.root + "/config/orchestrator.toml")
        #expect(problems.map(\.line) == [3], "\(problems)")
        let commands = config.commandProblems(searchPath: "/usr/bin:/bin")
        #expect(commands.map(\.line) == [9], "\(commands)")
        #expect(commands.first?.message.hasPrefix("task \"missing_cmd\": command:") == true, "\(commands)")
    }

    @Test func aBareNameIsLookedUpInTheGivenPath() throws {
        let sandbox = try Sandbox()
        try sandbox.folder("bin")
        try sandbox.file("bin/mytool")
        let config = try sandbox.config("[[handler]]\nname = \"h\"\ncommand = [\"mytool\"]\n")
        #expect(config.commandProblems(searchPath: "/usr/bin:\(sandbox.root)/bin").isEmpty)
        #expect(config.commandProblems(searchPath: "/usr/bin").count == 1)
        // An empty entry is the worker's working directory: the config's folder.
        try sandbox.file("config/mytool")
        #expect(config.commandProblems(searchPath: "/usr/bin:").isEmpty)
    }
}
