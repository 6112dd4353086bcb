import Foundation
import OrchestratorCore
import Testing
@testable import OrchestratorConfig

/// The TOML block of SPEC §4, verbatim: the documented example must always load.
let specExample = """
    [paths]
    inbox  = "../Inbox"
    done   = "../Done"
    failed = "../Failed"
    state  = "../.orchestrator"
    processing = "../Inbox/.processing"   # claimed files; same filesystem as inbox

    [inbox]
    include   = ["*"]
    exclude   = [".*", "*.tmp", "*.part", "*.crdownload", "~*"]
    recursive = false            # watch subfolders too; keep relative paths in Done/Failed
    settle    = "500ms"          # wait for no further writes before a file counts as arrived

    [limits]
    max_concurrent      = 2
    max_cpu_percent     = 80     # admit new work only while the host is below this
    max_memory_percent  = 85
    starvation_after    = "30m"  # a waiting job gains +1 priority per this much waiting, up to 10
    shutdown_grace      = "30s"  # on SIGTERM/SIGINT, how long running workers may finish

    [[handler]]                  # first match wins; file jobs
    name         = "default"
    match        = ["*"]
    command      = ["../workers/process.sh", "{file}"]   # workers/ beside config/
    priority     = 5             # 1..10, higher first
    timeout      = "10m"         # then SIGTERM to the whole process group, SIGKILL after grace
    max_attempts = 3
    backoff      = "30s"         # exponential with jitter: 30s, 60s, 120s ...
    breaker      = { failures = 5, cooldown = "5m" }
    upload       = ["rclone", "copy", "{file}", "remote:done/"]   # optional, see upload sweep

    [[task]]                     # scheduled / interval / event tasks
    name    = "health_check"
    every   = "10m"              # or: cron = "0 9 * * 1", tz = "Europe/Berlin"; or: on = "webhook.received"
    command = ["../scripts/check_health.sh", "--fast"]
    after   = []                 # names of tasks that must have succeeded first
    priority = 9
    timeout = "5m"
    max_attempts = 1             # retries with `backoff`, as for handlers
    backoff = "30s"
    breaker = { failures = 5, cooldown = "5m" }
    enabled = true
    catch_up = "once"            # missed slots while down: "none" | "once"
    overlap  = "skip"            # a due run while the last still runs: "skip" | "queue"
    cpu_percent = 10             # admission estimate (also allowed on a handler)
    memory_percent = 5

    [sweeps]                     # interval of each built-in sweep under `watch`
    retry = "1m"
    ingest = "5m"
    upload = "5m"
    watchdog = "30s"
    prune = "1h"

    [retention]                  # what the prune sweep deletes; files in Done/ and Failed/ are never touched
    jobs = "90d"                 # finished jobs (with their attempts, transitions, events) older than this
    logs = "14d"                 # per-attempt log files older than this
    """

let configFile = "/srv/orch/config/orchestrator.toml"

func load(_ text: String, file: String = configFile) throws(ConfigErrors) -> Config {
    try Config.parse(text: text, file: file)
}

func args(_ template: CommandTemplate?) -> [String] {
    template?.arguments.map(\.source) ?? []
}

@Suite struct ConfigLoadTests {
    @Test func specExampleLoadsWithEveryValue() throws {
        let config = try load(specExample)
        #expect(config.file == configFile)
        #expect(config.baseDirectory == "/srv/orch/config")
        #expect(config.paths == Paths(inbox: "/srv/orch/Inbox", done: "/srv/orch/Done", failed: "/srv/orch/Failed",
                                      state: "/srv/orch/.orchestrator", processing: "/srv/orch/Inbox/.processing"))
        #expect(config.inbox.include.map(\.pattern) == ["*"])
        #expect(config.inbox.exclude.map(\.pattern) == [".*", "*.tmp", "*.part", "*.crdownload", "~*"])
        #expect(config.inbox.recursive == false)
        #expect(config.inbox.settle == .milliseconds(500))
        #expect(config.limits == Limits.defaults)
        #expect(config.sweeps == Sweeps.defaults)
        #expect(config.retention == Retention.defaults)

        try #require(config.handlers.count == 1)
        let handler = config.handlers[0]
        #expect(handler.name == "default")
        #expect(handler.match.map(\.pattern) == ["*"])
        #expect(args(handler.command) == ["/srv/orch/workers/process.sh", "{file}"])
        #expect(handler.priority == 5 && handler.maxAttempts == 3)
        #expect(handler.timeout == .seconds(600) && handler.backoff == .seconds(30))
        #expect(handler.breaker == Breaker(failures: 5, cooldown: .seconds(300)))
        #expect(args(handler.upload) == ["rclone", "copy", "{file}", "remote:done/"])
        #expect(handler.line == 21)

        try #require(config.tasks.count == 1)
        let task = config.tasks[0]
        #expect(task.name == "health_check")
        #expect(task.trigger == .every(.seconds(600)))
        #expect(args(task.command) == ["/srv/orch/scripts/check_health.sh", "--fast"])
        #expect(task.after.isEmpty)
        #expect(task.priority == 9 && task.maxAttempts == 1 && task.timeout == .seconds(300))
        #expect(task.enabled && task.catchUp == .once && task.overlap == .skip)
        #expect(task.cpuPercent == 10 && task.memoryPercent == 5)
        #expect(task.line == 32)
    }

    @Test func emptyFileGivesTheDocumentedDefaults() throws {
        let config = try load("")
        #expect(config.paths == Paths(inbox: "/srv/orch/Inbox", done: "/srv/orch/Done", failed: "/srv/orch/Failed",
                                      state: "/srv/orch/.orchestrator", processing: "/srv/orch/Inbox/.processing"))
        #expect(config.inbox.include.map(\.pattern) == ["**"])
        #expect(config.inbox.exclude.map(\.pattern) == [".*", "*.tmp", "*.part", "*.crdownload", "~*"])
        #expect(config.inbox.recursive == false && config.inbox.settle == .milliseconds(500))
        #expect(config.limits == Limits(maxConcurrent: 2, maxCPUPercent: 80, maxMemoryPercent: 85,
                                        starvationAfter: .seconds(1800), shutdownGrace: .seconds(30)))
        #expect(config.sweeps == Sweeps(retry: .seconds(60), ingest: .seconds(300), upload: .seconds(300),
                                        watchdog: .seconds(30), prune: .seconds(3600)))
        #expect(config.retention == Retention(jobs: .seconds(90 * 86_400), logs: .seconds(14 * 86_400)))
        #expect(config.handlers.isEmpty && config.tasks.isEmpty)
    }

    @Test func handlerAndTaskDefaults() throws {
        let config = try load("""
            [[handler]]
            name = "h"
            command = ["convert", "{file}"]
            [[task]]
            name = "t"
            cron = "0 9 * * 1"
            command = ["./backup.sh"]
            """)
        let handler = config.handlers[0]
        #expect(handler.match.map(\.pattern) == ["**"])
        #expect(args(handler.command) == ["convert", "{file}"])
        #expect(handler.priority == 5 && handler.timeout == .seconds(600) && handler.maxAttempts == 3)
        #expect(handler.backoff == .seconds(30) && handler.breaker == nil && handler.upload == nil)
        #expect(handler.cpuPercent == nil && handler.memoryPercent == nil)
        let task = config.tasks[0]
        #expect(task.trigger == .cron(expression: "0 9 * * 1", timeZone: nil))
        #expect(args(task.command) == ["/srv/orch/config/backup.sh"])
        #expect(task.priority == 5 && task.timeout == .seconds(600) && task.maxAttempts == 1)
        #expect(task.backoff == .seconds(30) && task.breaker == nil && task.enabled)
        #expect(task.catchUp == .once && task.overlap == .skip)
    }

    @Test func pathsResolveAgainstTheConfigDirectoryNeverTheCwd() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("orch-config-\(UInt64.random(in: 0...UInt64.max))")
        let configDirectory = directory.appendingPathComponent("config")
        try FileManager.default.createDirectory(at: configDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = configDirectory.appendingPathComponent("orchestrator.toml").path
        try """
            [paths]
            inbox = "../in/./box/"
            done = "/var/done//x/.."
            state = "state"
            [[handler]]
            name = "h"
            command = ["../bin/run", "../not/resolved", "{file}"]
            upload = ["./up.sh"]
            [[task]]
            name = "t"
            on = "x"
            command = ["sub/{job}/../t.sh"]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(FileManager.default.currentDirectoryPath != configDirectory.path)

        let config = try Config.load(file: file)
        let root = directory.path
        #expect(config.file == file)
        #expect(config.baseDirectory == configDirectory.path)
        #expect(config.paths.inbox == root + "/in/box")
        #expect(config.paths.processing == root + "/in/box/.processing")
        #expect(config.paths.done == "/var/done")
        #expect(config.paths.failed == root + "/Failed")
        #expect(config.paths.state == configDirectory.path + "/state")
        #expect(args(config.handlers[0].command) == [root + "/bin/run", "../not/resolved", "{file}"])
        #expect(args(config.handlers[0].upload) == [configDirectory.path + "/up.sh"])
        // Beside a placeholder `..` stays, since `{job}` is only known at run time.
        #expect(args(config.tasks[0].command) == [configDirectory.path + "/sub/{job}/../t.sh"])
    }

    /// `..` after a symlink goes up from the link's target, as the kernel does when the daemon opens the path: before,
    /// the loader dropped the link textually and the daemon's folders were not the ones the path names.
    @Test func dotDotAfterASymlinkGoesUpFromItsTarget() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("orch-config-\(UInt64.random(in: 0...UInt64.max))")
        let target = directory.appendingPathComponent("elsewhere/deep/target")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("config"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/link", withDestinationPath: target.path)
        let file = directory.path + "/config/orchestrator.toml"
        try """
            [paths]
            inbox = "../link/../Inbox"
            done = "../missing/../Done"
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let config = try Config.load(file: file)
        let real = try #require(FileSystem.realPath(of: directory.path))
        #expect(config.paths.inbox == real + "/elsewhere/deep/Inbox")
        // A path that does not exist yet has no link to follow: textual, as `mkdir -p` then makes it.
        #expect(config.paths.done == directory.path + "/Done")
    }

    @Test func normalizeFollowsOnlyTheLinksBeforeADotDot() {
        let links = ["/a/link": "/b/c/target"]
        func real(_ path: String) -> String? { links[path] ?? (path.hasPrefix("/a") ? path : nil) }
        #expect(FileSystem.normalize("/a/link/../x", realPath: real) == "/b/c/x")
        #expect(FileSystem.normalize("/a/link/x", realPath: real) == "/a/link/x")
        #expect(FileSystem.normalize("/a/./y/../x", realPath: real) == "/a/x")
        #expect(FileSystem.normalize("/gone/y/../x", realPath: real) == "/gone/x")
        #expect(FileSystem.normalize("/../x", realPath: real) == "/x")
    }

    /// The commands that only show the state read past errors that do not say where the state is.
    @Test func loadingForReadingKeepsTheStatesPlaceAndReturnsTheOtherProblems() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("orch-read-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.path + "/o.toml"
        func read(_ text: String) throws(ConfigErrors) -> (Config, [ConfigProblem]) {
            try? text.write(toFile: file, atomically: true, encoding: .utf8)
            return try Config.loadForReading(file: file)
        }
        let (config, problems) = try read("[paths]\nstate = \"/srv/s\"\n[limits]\nmax_concurent = 4\n")
        #expect(config.paths.state == "/srv/s")
        #expect(problems.map(\.line) == [4] && problems.first?.message.contains("max_concurent") == true, "\(problems)")
        #expect(try read("[paths]\nstate = \"/srv/s\"\n").1.isEmpty)
        for wrongPlace in ["[paths]\nstat = \"/srv/s\"\n", "[path]\nstate = \"/srv/s\"\n", "[store]\nurl = \"mysql://x\"\n", "[limits\n"] {
            #expect(throws: ConfigErrors.self, "\(wrongPlace)") { try read(wrongPlace) }
        }
    }

    @Test func relativeConfigFileIsTakenFromTheCwd() throws {
        let config = try load("", file: "conf/o.toml")
        let cwd = FileManager.default.currentDirectoryPath
        #expect(config.file == cwd + "/conf/o.toml")
        #expect(config.baseDirectory == cwd + "/conf")
    }

    @Test func unreadableFileIsOneProblemWithoutALine() {
        let error = #expect(throws: ConfigErrors.self) {
            _ = try Config.load(file: "/nonexistent/orchestrator.toml")
        }
        #expect(error?.problems.map(\.description)
            == ["/nonexistent/orchestrator.toml: error: cannot read config file: No such file or directory"])
        #expect(error?.problems.first?.line == 0)
    }

    @Test func triggersAndEnums() throws {
        let config = try load("""
            [[task]]
            name = "a"
            cron = "0 9 * * 1"
            tz = "Europe/Berlin"
            command = ["true"]
            catch_up = "none"
            overlap = "queue"
            enabled = false
            [[task]]
            name = "b"
            on = "webhook.received"
            command = ["true", "{job}", "{attempt}"]
            after = ["a"]
            [[task]]
            name = "c"
            cron = "@daily"
            tz = "UTC"
            command = ["true"]
            """)
        #expect(config.tasks.map(\.trigger) == [
            .cron(expression: "0 9 * * 1", timeZone: "Europe/Berlin"), .event("webhook.received"),
            .cron(expression: "@daily", timeZone: "UTC"),
        ])
        #expect(config.tasks[0].catchUp == CatchUp.none && config.tasks[0].overlap == .queue && !config.tasks[0].enabled)
        #expect(config.tasks[1].after == ["a"])
    }

    @Test func percentagesAcceptIntegersAndFloats() throws {
        let config = try load("""
            [limits]
            max_cpu_percent = 12.5
            max_memory_percent = 100
            [[handler]]
            name = "h"
            command = ["x"]
            cpu_percent = 0.5
            """)
        #expect(config.limits.maxCPUPercent == 12.5 && config.limits.maxMemoryPercent == 100)
        #expect(config.handlers[0].cpuPercent == 0.5)
    }

    @Test func firstMatchingHandlerWins() throws {
        let config = try load("""
            [[handler]]
            name = "pdf"
            match = ["*.pdf", "scans/**"]
            command = ["ocr", "{file}"]
            [[handler]]
            name = "rest"
            match = ["*"]
            command = ["other", "{file}"]
            """)
        #expect(config.handler(for: RelativePath("a.pdf"))?.name == "pdf")
        #expect(config.handler(for: RelativePath("scans/x/y.png"))?.name == "pdf")
        #expect(config.handler(for: RelativePath("a.txt"))?.name == "rest")
        #expect(config.handler(for: RelativePath("dir/a.txt")) == nil)
    }

    @Test func acceptsAppliesIncludeExcludeAndSkipsManagedDirectories() throws {
        let config = try load("""
            [paths]
            inbox = "/in"
            done = "/in/Done"
            [inbox]
            recursive = true
            """)
        #expect(config.accepts(RelativePath("a.pdf")))
        #expect(config.accepts(RelativePath("sub/dir/a.pdf")))
        #expect(!config.accepts(RelativePath(".hidden")))
        #expect(!config.accepts(RelativePath("x.tmp")))
        #expect(!config.accepts(RelativePath("~lock")))
        #expect(!config.accepts(RelativePath("sub/file.part")))
        #expect(!config.accepts(RelativePath(".git/config")))
        #expect(!config.accepts(RelativePath("sub/.cache/x")))
        #expect(!config.accepts(RelativePath(".processing/a.pdf")))
        #expect(!config.accepts(RelativePath("Done/a.pdf")))
        #expect(config.accepts(RelativePath("Doneish/a.pdf")))
        #expect(config.accepts(RelativePath([0x66, 0xFF, 0x2E, 0x70])))  // invalid UTF-8 is still a name

        let explicit = try load("""
            [inbox]
            include = ["*.pdf"]
            exclude = []
            """)
        #expect(explicit.accepts(RelativePath("a.pdf")))
        #expect(explicit.accepts(RelativePath(".a.pdf")))
        #expect(!explicit.accepts(RelativePath("a.txt")))
        #expect(!explicit.accepts(RelativePath("sub/a.pdf")))
    }

    @Test func lineOfKeyForChecksMadeAtDaemonStart() throws {
        let config = try load(specExample)
        #expect(config.line(ofKey: "paths.processing") == 6)
        #expect(config.line(ofKey: "handler[0].command") == 24)
        #expect(config.line(ofKey: "task[0]") == 32)
        #expect(config.line(ofKey: "task[0].tz") == 32)
        let defaults = try load("")
        #expect(defaults.line(ofKey: "paths.processing") == 0)
    }

    @Test func problemDescriptionFormat() {
        let problem = ConfigProblem(file: "c.toml", line: 3, message: "bad")
        #expect(problem.description == "c.toml:3: error: bad")
        let errors = ConfigErrors(problems: [problem, ConfigProblem(file: "c.toml", line: 9, message: "worse")])
        #expect(errors.description == "c.toml:3: error: bad\nc.toml:9: error: worse")
    }
}
