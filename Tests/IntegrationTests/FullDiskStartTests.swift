#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

extension TestInstance {
    var pausedStatus: String? { (try? json(["status"]) as? [String: Any])?["paused"] as? String }
}

/// Guarantee 15 at start: a state dir whose disk is too full for SQLite to open the database pauses `watch`
/// instead of ending it (a crash loop under systemd's Restart=on-failure). Needs root to mount a small tmpfs.
@Suite(.serialized, .timeLimit(.minutes(3)), .enabled(if: getuid() == 0)) struct FullDiskStartTests {
    /// The mount and fill helpers of the running-daemon full-disk tests.
    let disk = FullDiskTests()

    /// A fresh volume for Inbox, Done, Failed and the state dir, filled before the daemon ever ran: the store
    /// cannot even be created, nor the status board's block allocated.
    func fullVolume(_ instance: TestInstance) throws -> String {
        let volume = instance.path("vol")
        try disk.mountTmpfs(at: volume, size: "1m")
        #expect(disk.fill("\(volume)/filler") > 0)
        return volume
    }

    static let recordingHandler = testConfig(handler: """
        command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> ../runs.log']
        max_attempts = 1
        """)

    /// The recording handler, and a task listening to `error.critical`.
    static let recordingHandlerWithAlert = testConfig(
        handler: """
            command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> ../runs.log']
            max_attempts = 1
            """,
        extra: """
            [[task]]
            name = "alert"
            on = "error.critical"
            command = ["/bin/sh", "-c", 'echo fired >> ../critical.log']
            """)

    @Test func aFirstStartOnAFullDiskWaitsForSpaceThenWorks() throws {
        let instance = try TestInstance(config: FullDiskTests.onVolume + Self.recordingHandlerWithAlert)
        let volume = try fullVolume(instance)
        defer { disk.unmount(volume) }
        let listener = try NotifyListener(path: instance.path("notify.sock"))
        // Pings every 0.5 s.
        let daemon = try instance.launchDaemon(environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000"])

        var received: [String] = []
        // The first attempt, then retries after 1 s and 2 s: each tells systemd to wait longer.
        try instance.waitUntil("two retries have failed", timeout: 30) {
            if !daemon.isRunning { throw TimedOut(description: "watch exited with \(daemon.terminationStatus)") }
            received += listener.receive()
            return received.count { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") } >= 3
        }
        #expect(daemon.isRunning)
        #expect(instance.pausedStatus == "paused: no space on \(volume)/state")
        let text = try instance.run(["status"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("PAUSED:   no space on \(volume)/state"), "\(text.stdout)")
        #expect(instance.log.components(separatedBy: "cannot open the state database in \(volume)/state: no space (").count - 1 == 1,
                "one error line, naming the path and the free space:\n\(instance.log)")
        #expect(instance.log.contains("bytes free on its filesystem"))
        #expect(!received.contains { $0.contains("READY=1") }, "not ready before the store is open: \(received)")
        #expect(received.contains("STATUS=paused: no space on \(volume)/state"))
        #expect(received.count { $0 == "WATCHDOG=1" } >= 4, "pings go on while waiting: \(received)")
        // A reload asked for while waiting neither ends it nor is lost: the dispatcher reloads once it runs.
        kill(daemon.processIdentifier, SIGHUP)

        try FileManager.default.removeItem(atPath: "\(volume)/filler")
        try instance.waitUntil("it resumed", timeout: 40) {
            received += listener.receive()
            return received.contains { $0.contains("READY=1") }
        }
        #expect(instance.log.contains("space is back; resuming"))
        try instance.waitUntil("the reload asked for while waiting is done", timeout: 10) { instance.log.contains("config reloaded") }
        #expect(instance.pausedStatus == nil)
        #expect(!FileManager.default.fileExists(atPath: "\(volume)/state/status.no-space"))
        // Renamed in from the same volume, as files arrive.
        try "data\n".write(toFile: "\(volume)/a.txt", atomically: false, encoding: .utf8)
        try #require(rename("\(volume)/a.txt", "\(volume)/Inbox/a.txt") == 0)
        try instance.waitUntil("a.txt is done", timeout: 30) { FileManager.default.fileExists(atPath: "\(volume)/Done/a.txt") }
        #expect(instance.lines(of: "runs.log") == ["a.txt"])
        // The pause at start fires error.critical, as a pause while running does. On this 1 MB volume the
        // health check at start fires it too (under 1 MiB free even after the filler is gone): two runs of the
        // listener, one without the start's own.
        try instance.waitUntil("the error.critical listener ran twice", timeout: 10) {
            instance.lines(of: "critical.log") == ["fired", "fired"]
        }
        #expect(instance.log.contains("unhealthy"))
        #expect(daemon.isRunning)
        #expect(instance.stopDaemon() == 0)
        #expect(instance.lines(of: "critical.log") == ["fired", "fired"])
    }

    @Test func aStopWhileWaitingForSpaceExitsZeroAtOnce() throws {
        let instance = try TestInstance(config: FullDiskTests.onVolume + Self.recordingHandler)
        let volume = try fullVolume(instance)
        defer { disk.unmount(volume) }
        let listener = try NotifyListener(path: instance.path("notify.sock"))
        let daemon = try instance.launchDaemon(environment: ["NOTIFY_SOCKET": listener.path])
        var received: [String] = []
        // After the retries at 1 s and 2 s it waits 4 s: a prompt exit is the signal's doing, not the timer's.
        try instance.waitUntil("two retries have failed", timeout: 30) {
            if !daemon.isRunning { throw TimedOut(description: "watch exited with \(daemon.terminationStatus)") }
            received += listener.receive()
            return received.count { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") } >= 3
        }
        let signalled = Date()
        kill(daemon.processIdentifier, SIGTERM)
        #expect(waitForExit(daemon, within: 10, "watch after SIGTERM while waiting for space"))
        let took = Date().timeIntervalSince(signalled)
        #expect(took < 2, "exited \(took) s after SIGTERM")
        #expect(daemon.terminationStatus == 0)
        #expect(instance.log.contains("stopped while waiting for space"), "\(instance.log)")
        #expect(!FileManager.default.fileExists(atPath: "\(volume)/state/status.no-space"), "nothing says paused once it is gone")
    }
}

/// What waiting for space must not swallow: a database that cannot be opened for another reason still ends
/// `watch` with exit 1 and the same message as before.
@Suite(.serialized, .timeLimit(.minutes(1))) struct StoreOpenFailureTests {
    @Test func aCorruptStateDatabaseStillExitsOne() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        try FileManager.default.createDirectory(atPath: instance.path(".orchestrator"), withIntermediateDirectories: true)
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: instance.path(".orchestrator/orchestrator.sqlite")))
        let daemon = try instance.launchDaemon()
        #expect(waitForExit(daemon, within: 30, "watch on a corrupt database"))
        #expect(daemon.terminationStatus == 1)
        let state = instance.path(".orchestrator")
        #expect(instance.log.hasPrefix("error: cannot open the state database in \(state): "), "\(instance.log)")
        #expect(!instance.log.contains("waiting for space"))
    }
}
