#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// A throwaway orchestrator instance in a temp directory, driven through the real binary.
final class TestInstance: @unchecked Sendable {
    let root: URL
    var daemon: Process?
    var daemonLog: URL { root.appendingPathComponent("daemon.log") }

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["ORCHESTRATOR_BIN"] { return path }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.appendingPathComponent(".build/debug/orchestrator").path
    }

    /// `config` is the TOML text; `workers` are scripts written into workers/ (made executable).
    init(config: String, workers: [String: String] = [:]) throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("orch-it-\(UUID().uuidString.prefix(8))")
        let fm = FileManager.default
        for folder in ["Inbox", "Done", "Failed", "config", "workers"] {
            try fm.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        for (name, body) in workers {
            let url = root.appendingPathComponent("workers/\(name)")
            try body.write(to: url, atomically: true, encoding: .utf8)
            chmod(url.path, 0o755)
        }
    }

    deinit {
        if let daemon, daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) }
        endWorkers()
        try? FileManager.default.removeItem(at: root)
    }

    /// Ends the workers a killed daemon left behind (each in its own session, so killing the daemon misses them):
    /// every process whose `ORCH_STATE_DIR` lies in this instance. Otherwise a worker waiting for a file in the
    /// instance (a test's blocker) would outlive the test, and the suite, once the folder is gone.
    func endWorkers() {
        let marker = Array("ORCH_STATE_DIR=\(root.path)".utf8)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid(),
                let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { continue }
            guard environment.split(separator: 0).contains(where: { $0.starts(with: marker) }) else { continue }
            if getpgid(pid) == pid { kill(-pid, SIGKILL) }
            kill(pid, SIGKILL)
        }
    }

    var configURL: URL { root.appendingPathComponent("config/orchestrator.toml") }
    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    // MARK: Daemon

    /// Starts `watch` and waits until it says it is watching. `openFileLimit`: under `ulimit -n` of that many.
    func startDaemon(extraArguments: [String] = [], environment: [String: String] = [:], openFileLimit: Int? = nil) throws {
        // A restart appends to the log: only what this start wrote counts.
        let before = log.utf8.count
        let process = try launchDaemon(extraArguments: extraArguments, environment: environment, openFileLimit: openFileLimit)
        try waitUntil("daemon reports it is watching", timeout: 60) {
            if !process.isRunning { throw TimedOut(description: "the daemon exited with \(process.terminationStatus) before watching") }
            return String(decoding: Array(self.log.utf8).dropFirst(before), as: UTF8.self).contains("watching")
        }
    }

    /// Starts `watch` without waiting for it to say "watching" (a start that has to wait for space does not).
    /// `signalsUnblocked`: the daemon starts with no signal blocked, as under systemd or a shell (the test runner
    /// blocks some, and a blocked signal waits as pending instead of acting).
    @discardableResult
    func launchDaemon(
        extraArguments: [String] = [], environment: [String: String] = [:], openFileLimit: Int? = nil, signalsUnblocked: Bool = false
    ) throws -> Process {
        let process = Process()
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let arguments = ["watch", "--config", configURL.path] + extraArguments
        if let openFileLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -n \(openFileLimit) && exec \"$0\" \"$@\"", Self.binary] + arguments
        } else if signalsUnblocked {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            let unblock = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])"
            process.arguments = ["python3", "-c", unblock, Self.binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = arguments
        }
        process.currentDirectoryURL = root
        if !FileManager.default.fileExists(atPath: daemonLog.path) {
            _ = FileManager.default.createFile(atPath: daemonLog.path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: daemonLog)
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        try process.run()
        StartedDaemons.shared.add(process)
        daemon = process
        return process
    }

    var log: String { (try? String(contentsOf: daemonLog, encoding: .utf8)) ?? "" }

    func killDaemon() {
        guard let daemon else { return }
        kill(daemon.processIdentifier, SIGKILL)
        waitForExit(daemon, within: 10, "the SIGKILLed daemon")
    }

    /// SIGTERM and wait; returns the exit status. A daemon that has not stopped `within` seconds (the
    /// test configs' 5 s shutdown_grace and more) is killed and reported.
    @discardableResult
    func stopDaemon(within timeout: Double = 30) -> Int32 {
        signalStop()
        return waitForStop(within: timeout)
    }

    /// The first half of `stopDaemon`: SIGTERM, without waiting. Daemons that each drain a running worker are stopped
    /// together by signalling all of them first (see `stopTogether`): their drains then overlap instead of adding up.
    func signalStop() {
        guard let daemon else { return }
        kill(daemon.processIdentifier, SIGTERM)
    }

    /// The second half of `stopDaemon`: waits for the signalled daemon to exit; returns its exit status.
    func waitForStop(within timeout: Double = 30) -> Int32 {
        guard let daemon else { return -1 }
        guard waitForExit(daemon, within: timeout, "the daemon after SIGTERM") else {
            Issue.record("daemon log:\n\(log.suffix(4000))")
            return -1
        }
        return daemon.terminationStatus
    }

    /// Stops several daemons as `stopDaemon` does each, all signalled before any is waited for; their exit statuses.
    static func stopTogether(_ instances: [TestInstance], within timeout: Double = 30) -> [Int32] {
        for instance in instances { instance.signalStop() }
        return instances.map { $0.waitForStop(within: timeout) }
    }

    // MARK: CLI

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary and returns what it printed. It writes into files, not pipes, so that a command
    /// that hangs cannot block the test in a read; one still running after `timeout` seconds is killed
    /// and the test fails. `environment` replaces the inherited one when given.
    /// `executable`: run that instead of the binary (a shell that passes the binary bytes a String cannot hold).
    func run(
        _ arguments: [String], withConfig: Bool = true, environment: [String: String]? = nil, timeout: Double = 30,
        executable: String? = nil, workingDirectory: URL? = nil
    ) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable ?? Self.binary)
        var args = arguments
        if withConfig { args += ["--config", configURL.path] }
        process.arguments = args
        process.currentDirectoryURL = workingDirectory ?? root
        if let environment { process.environment = environment }
        // Hidden, so that the folders the tests count never see them.
        let outPath = path(".cli-\(UUID().uuidString.prefix(8)).out")
        let errPath = outPath + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        for file in [outPath, errPath] { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
        guard waitForExit(process, within: timeout, "orchestrator \(arguments.joined(separator: " "))") else {
            throw TimedOut(description: "orchestrator \(arguments) did not exit within \(timeout) s")
        }
        return Output(
            status: process.terminationStatus, stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    func json(_ arguments: [String]) throws -> Any {
        let output = try run(arguments + ["--json"])
        #expect(output.status == 0, "\(arguments) failed: \(output.stderr)")
        return try JSONSerialization.jsonObject(with: Data(output.stdout.utf8))
    }

    // MARK: Files

    /// Writes a file into a folder by writing a hidden temp name and renaming it into place.
    func drop(_ name: String, _ contents: String = "data\n", into folder: String = "Inbox") throws {
        let temp = root.appendingPathComponent("\(folder)/.tmp-\(UUID().uuidString)")
        try contents.write(to: temp, atomically: false, encoding: .utf8)
        let target = root.appendingPathComponent("\(folder)/\(name)")
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard rename(temp.path, target.path) == 0 else { throw POSIXError(.EIO) }
    }

    /// Creates a file whose name is raw bytes (may be invalid UTF-8).
    func dropBytes(_ name: [UInt8], contents: String = "data\n", into folder: String = "Inbox") throws {
        var path = Array(root.appendingPathComponent(folder).path.utf8) + [UInt8(ascii: "/")] + name
        path.append(0)
        let fd = path.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                open($0, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            }
        }
        guard fd >= 0 else { throw POSIXError(.EIO) }
        _ = Array(contents.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// File names (as bytes) directly inside a folder, hidden ones excluded.
    func names(in folder: String) -> Set<[UInt8]> {
        guard let directory = opendir(path(folder)) else { return [] }
        defer { closedir(directory) }
        var result: Set<[UInt8]> = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name.first == UInt8(ascii: ".") { continue }
            result.insert(name)
        }
        return result
    }

    func count(in folder: String) -> Int { names(in: folder).count }

    func lines(of relative: String) -> [String] {
        ((try? String(contentsOfFile: path(relative), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

/// Runs one SQL statement on a state database with the sqlite3 shell (installed by scripts/setup): tests
/// make the store states a crash leaves behind.
func runSQL(_ database: String, _ sql: String) throws {
    let sqlite = Process()
    sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    sqlite.arguments = [database, sql]
    try sqlite.run()
    guard waitForExit(sqlite, within: 30, "sqlite3") else { throw TimedOut(description: "sqlite3 did not exit") }
    guard sqlite.terminationStatus == 0 else { throw TimedOut(description: "sqlite3 \(sql) failed") }
}

/// True when no such process runs (gone, or a zombie nobody reaps: killed is killed).
func isGone(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return errno == ESRCH }
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    guard let close = stat.lastIndex(of: ")") else { return true }
    return stat[stat.index(close, offsetBy: 2)...].first == "Z"
}

struct TimedOut: Error, CustomStringConvertible {
    let description: String
}

/// Waits until `process` exits, at most `timeout` seconds. One still running then is SIGKILLed, reaped
/// and recorded as an issue, so that a hung process costs the suite `timeout` seconds, not the whole run.
/// Returns whether it exited by itself.
@discardableResult
func waitForExit(_ process: Process, within timeout: Double, _ what: String) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning, Date() < deadline { usleep(5_000) }
    if !process.isRunning {
        process.waitUntilExit()  // returns at once; makes terminationStatus final
        return true
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()  // SIGKILL cannot be caught: this returns promptly
    Issue.record("\(what) was still running after \(timeout) s and was killed")
    return false
}

/// Watches for `seconds` and fails if `happened` becomes true meanwhile. For tests that assert that
/// something does NOT happen (a second run, a spurious move): the window is a deliberate observation
/// period, sized by the caller from the config's own intervals, not a sleep that hides a race.
func expectQuiet(for seconds: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ happened: () throws -> Bool) rethrows {
    let end = Date().addingTimeInterval(seconds)
    repeat {
        if try happened() {
            Issue.record("\(what) happened during the \(seconds) s quiet window", sourceLocation: sourceLocation)
            return
        }
        usleep(20_000)
    } while Date() < end
}

/// Polls `condition` until it holds or `timeout` seconds pass. Waiting for a condition with a deadline,
/// never a fixed sleep, keeps the tests independent of machine speed.
func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(20_000)
    }
    if try condition() { return }
    throw TimedOut(description: "timed out after \(timeout)s waiting until \(what)")
}

extension TestInstance {
    func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
        do {
            try IntegrationTests.waitUntil(what, timeout: timeout, condition)
        } catch {
            Issue.record("daemon log:\n\(log.suffix(4000))")
            throw error
        }
    }
}

/// A config for tests: fast settle, short backoff, the given handler lines. `grace`: a test whose stop finds a
/// worker that would run on (a `sleep 30`), and whose subject is not the drain, gives it less, so that the stop does
/// not wait out 5 s for nothing.
func testConfig(
    handler: String, maxConcurrent: Int = 2, settle: String = "200ms", grace: String = "5s", extra: String = ""
) -> String {
    """
    [inbox]
    settle = "\(settle)"

    [limits]
    max_concurrent = \(maxConcurrent)
    shutdown_grace = "\(grace)"

    [[handler]]
    name = "test"
    \(handler)
    \(extra)
    """
}

/// Every daemon a test started, killed when the test process exits: a test that fails or is cut short may
/// never release its instance, and a daemon left running would outlive the suite.
final class StartedDaemons: @unchecked Sendable {
    static let shared = StartedDaemons()
    private let lock = NSLock()
    private var processes: [Process] = []

    private init() {
        atexit { StartedDaemons.shared.killAll() }
    }

    func add(_ process: Process) { lock.withLock { processes.append(process) } }

    /// Only those still running: the pid of one already reaped may belong to another process by now.
    func killAll() {
        for process in lock.withLock({ processes }) where process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
