#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// End-to-end behaviour of `watch` on real folders, real workers and real signals.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct InboxTests {
    /// A worker that records each run in ran.log as "NAME CONTENT" (files hold one line), using only shell
    /// builtins so that hundreds of runs stay cheap.
    static let recordingWorker = """
        #!/bin/sh
        IFS= read -r content < "$1"
        printf '%s %s\\n' "$ORCH_NAME" "$content" >> ../ran.log
        """

    static func recordingInstance(maxConcurrent: Int = 2) throws -> TestInstance {
        try TestInstance(
            config: testConfig(handler: #"command = ["../workers/record.sh", "{file}"]"#, maxConcurrent: maxConcurrent),
            workers: ["record.sh": recordingWorker])
    }

    /// Drops `count` files named `prefix-N.txt`, each holding a line of its own; returns the ran.log line
    /// each should produce.
    static func dropDistinctFiles(_ instance: TestInstance, _ prefix: String, count: Int) throws -> [String] {
        try (0..<count).map { index in
            let name = "\(prefix)-\(index).txt"
            let content = "\(name) \(UUID().uuidString)"
            try instance.drop(name, content + "\n")
            return "\(name) \(content)"
        }
    }

    /// Each file ran exactly once, with its own content, and is in Done with that content.
    static func expectEachRanOnceWithItsContent(_ instance: TestInstance, _ expected: [String]) {
        let ran = instance.lines(of: "ran.log")
        let runs = Dictionary(ran.map { ($0, 1) }, uniquingKeysWith: +)
        #expect(runs.filter { $0.value > 1 }.isEmpty, "ran more than once: \(runs.filter { $0.value > 1 }.keys.sorted())")
        #expect(Set(ran) == Set(expected), "missing: \(Set(expected).subtracting(ran).sorted().prefix(5)), unexpected: \(Set(ran).subtracting(expected).sorted().prefix(5))")
        for line in expected {
            let name = String(line.prefix { $0 != " " })
            let kept = try? String(contentsOfFile: instance.path("Done/\(name)"), encoding: .utf8)
            #expect(kept == String(line.dropFirst(name.count + 1)) + "\n", "Done/\(name) holds \(kept ?? "nothing")")
        }
    }

    @Test func fiveHundredFilesDroppedAtOnceAllEndInDone() throws {
        let instance = try Self.recordingInstance(maxConcurrent: 4)
        try instance.startDaemon()
        let expected = try Self.dropDistinctFiles(instance, "file", count: 500)
        try instance.waitUntil("500 files are in Done", timeout: 120) { instance.count(in: "Done") == 500 }
        #expect(instance.count(in: "Failed") == 0)
        #expect(instance.count(in: "Inbox") == 0)
        #expect(instance.stopDaemon() == 0)
        Self.expectEachRanOnceWithItsContent(instance, expected)
    }

    @Test func filesPresentBeforeStartAreProcessed() throws {
        let instance = try Self.recordingInstance()
        let expected = try Self.dropDistinctFiles(instance, "early", count: 20)
        try instance.startDaemon()
        try instance.waitUntil("20 files are in Done", timeout: 60) { instance.count(in: "Done") == 20 }
        #expect(instance.stopDaemon() == 0)
        Self.expectEachRanOnceWithItsContent(instance, expected)
    }

    @Test func failingWorkerEndsInFailedAfterExactlyMaxAttempts() throws {
        let worker = """
            #!/bin/sh
            echo "$ORCH_ATTEMPT" >> ../runs.log
            echo "cannot parse $ORCH_NAME" >&2
            exit 3
            """
        let instance = try TestInstance(
            config: testConfig(handler: """
                command = ["../workers/fail.sh", "{file}"]
                max_attempts = 3
                backoff = "50ms"
                """),
            workers: ["fail.sh": worker])
        try instance.startDaemon()
        try instance.drop("bad.csv")
        try instance.waitUntil("bad.csv is in Failed", timeout: 60) { instance.names(in: "Failed").contains(Array("bad.csv".utf8)) }
        #expect(instance.lines(of: "runs.log") == ["1", "2", "3"])

        let show = try #require(try instance.json(["show", "Failed/bad.csv"]) as? [String: Any])
        #expect(show["state"] as? String == "failed")
        let attempts = try #require(show["attempts"] as? [[String: Any]])
        #expect(attempts.count == 3)
        #expect(attempts.allSatisfy { $0["exit_code"] as? Int == 3 })
        #expect((show["reason"] as? String)?.contains("exit status 3") == true)
        #expect((attempts.last?["stderr_tail"] as? String)?.contains("cannot parse bad.csv") == true)

        let history = try #require(try instance.json(["history", "--failed"]) as? [[String: Any]])
        #expect(history.count == 3)
        #expect(history.allSatisfy { ($0["reason"] as? String) == "exit status 3" })
        #expect(instance.stopDaemon() == 0)
    }

    /// `history --failed` is where the README sends a user to see why files failed: it listed attempts only, so a
    /// file that failed without one (no handler, cancelled while waiting) was in Failed/ with no line saying why.
    @Test func historyOfFailuresListsFilesThatNeverRan() throws {
        let instance = try TestInstance(config: testConfig(handler: """
            match = ["*.txt"]
            command = ["/bin/sh", "-c", 'exit 1']
            max_attempts = 1
            """))
        try instance.startDaemon()
        try instance.drop("bad.txt")
        try instance.drop("data.csv")
        try instance.waitUntil("both failed", timeout: 20) { instance.count(in: "Failed") == 2 }
        #expect(instance.stopDaemon() == 0)
        let history = try #require(try instance.json(["history", "--failed"]) as? [[String: Any]])
        #expect(history.count == 2, "\(history)")
        let csv = try #require(history.first { $0["name"] as? String == "data.csv" })
        #expect(csv["attempt"] is NSNull && csv["outcome"] as? String == "failed")
        #expect((csv["reason"] as? String)?.contains("no handler") == true, "\(csv)")
        #expect(history.contains { $0["name"] as? String == "bad.txt" && $0["attempt"] as? Int == 1 })
        let text = try instance.run(["history", "--failed"]).stdout
        #expect(text.split(separator: "\n").contains { $0.contains("data.csv") && $0.contains("no handler") }, "\(text)")
    }

    /// A daemon whose worker appends the size of the file it was given to sizes.log.
    func sizeRecordingInstance() throws -> TestInstance {
        let worker = """
            #!/bin/sh
            wc -c < "$1" | tr -d ' ' >> ../sizes.log
            """
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["../workers/size.sh", "{file}"]"#, settle: "500ms"),
            workers: ["size.sh": worker])
        try instance.startDaemon()
        return instance
    }

    @Test func fileWrittenSlowlyIsDispatchedOnceWhenComplete() throws {
        let instance = try sizeRecordingInstance()
        // Written in place over two seconds, reopened for each chunk: every close is an event.
        let chunk = String(repeating: "x", count: 1000) + "\n"
        let path = instance.path("Inbox/slow.txt")
        for _ in 0..<10 {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            #expect(fd >= 0)
            _ = Array(chunk.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            usleep(200_000)  // the writer's pace, not a wait for the daemon
        }
        try instance.waitUntil("slow.txt is in Done", timeout: 30) { instance.names(in: "Done").contains(Array("slow.txt".utf8)) }
        #expect(instance.lines(of: "sizes.log") == ["\(chunk.utf8.count * 10)"])
        #expect(instance.stopDaemon() == 0)
    }

    @Test func fileHeldOpenWhileWrittenIsDispatchedOnceWhenClosed() throws {
        let instance = try sizeRecordingInstance()
        let chunk = Array(repeating: UInt8(ascii: "y"), count: 4096)
        let fd = open(instance.path("Inbox/held.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        for _ in 0..<10 {
            _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            usleep(200_000)  // the writer's pace
        }
        close(fd)
        try instance.waitUntil("held.bin is in Done", timeout: 30) { instance.names(in: "Done").contains(Array("held.bin".utf8)) }
        #expect(instance.lines(of: "sizes.log") == ["\(chunk.count * 10)"])
        #expect(instance.stopDaemon() == 0)
    }

    /// Guarantee 3: a writer that pauses longer than `settle` with the file open (a download that stalls) does not have
    /// half its file run. Before, the file was claimed 500 ms into the pause: the worker saw 1,000 bytes, and Done/ got
    /// all 2,000 once the writer finished into the claimed file.
    @Test func aWriterPausingLongerThanSettleWithTheFileOpenHasTheWholeFileRun() throws {
        let instance = try sizeRecordingInstance()
        let chunk = Array(repeating: UInt8(ascii: "z"), count: 1000)
        let fd = open(instance.path("Inbox/download.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        // Four times `settle` with the file open and unchanged: it stays in Inbox.
        expectQuiet(for: 2.0, "download.bin leaving Inbox while its writer has it open") {
            !FileManager.default.fileExists(atPath: instance.path("Inbox/download.bin"))
        }
        _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        try instance.waitUntil("download.bin is in Done", timeout: 30) { instance.names(in: "Done").contains(Array("download.bin".utf8)) }
        #expect(instance.lines(of: "sizes.log") == ["2000"])
        #expect(instance.stopDaemon() == 0)
    }

    @Test func hostileNamesArriveIntact() throws {
        let worker = """
            #!/bin/sh
            [ -f "$1" ] || { echo "no such file: $1" >&2; exit 1; }
            [ "$(basename -- "$1")" = "$(basename -- "$ORCH_FILE")" ] || exit 2
            """
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["../workers/check.sh", "{file}"]"#),
            workers: ["check.sh": worker])
        let names: [[UInt8]] = [
            Array("with space.txt".utf8), Array("quote\"s'.txt".utf8), Array("new\nline.txt".utf8),
            Array("-leading-dash.txt".utf8), Array("ünïcødé-文件.txt".utf8), [0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74],
            Array("$(touch pwned)".utf8), Array("*glob?[x]".utf8),
        ]
        for name in names { try instance.dropBytes(name) }
        try instance.startDaemon()
        try instance.waitUntil("every name is in Done", timeout: 60) { instance.names(in: "Done") == Set(names) }
        #expect(instance.count(in: "Failed") == 0)
        #expect(!FileManager.default.fileExists(atPath: instance.path("config/pwned")))

        let history = try #require(try instance.json(["history"]) as? [[String: Any]])
        let invalid = history.first { $0["name_b64"] != nil }
        #expect(invalid?["name_b64"] as? String == Data([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74]).base64EncodedString())
        // show's location, the same way: its exact bytes beside the text with U+FFFD.
        let invalidJob = try #require(invalid?["job"] as? Int)
        let shown = try #require(try instance.json(["show", "id:\(invalidJob)"]) as? [String: Any])
        let exact = try #require((shown["location_b64"] as? String).flatMap { Data(base64Encoded: $0) })
        #expect(Array(exact).suffix(8) == [0x2f, 0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74], "\(shown)")
        #expect(instance.stopDaemon() == 0)
    }

    @Test func hungWorkerIsKilledAtTimeoutWithItsGrandchild() throws {
        let worker = """
            #!/bin/sh
            sleep 300 &
            echo $! > ../grandchild.pid
            wait
            """
        let instance = try TestInstance(
            config: testConfig(handler: """
                command = ["../workers/hang.sh"]
                timeout = "1s"
                max_attempts = 1
                """),
            workers: ["hang.sh": worker])
        try instance.startDaemon()
        try instance.drop("stuck.txt")
        try instance.waitUntil("stuck.txt is in Failed", timeout: 30) { instance.names(in: "Failed").contains(Array("stuck.txt".utf8)) }
        let pid = try #require(instance.lines(of: "grandchild.pid").first.flatMap { Int32($0) })
        try waitUntil("the grandchild sleep is gone", timeout: 10) { isGone(pid) }
        let show = try #require(try instance.json(["show", "stuck.txt"]) as? [String: Any])
        let attempts = try #require(show["attempts"] as? [[String: Any]])
        #expect(attempts.first?["timed_out"] as? Bool == true)
        #expect((show["reason"] as? String)?.contains("timed out") == true)
        #expect(instance.stopDaemon() == 0)
    }

    /// Quick workers end before their start is committed, and are then recorded with one attempt row and one update
    /// of the job: what `show` reads must be all there (end, exit, pid, every transition in order).
    @Test func quickWorkersAreRecordedInFull() throws {
        let instance = try TestInstance(config: testConfig(handler: "command = [\"/bin/true\"]"))
        try instance.startDaemon()
        let names = (1...30).map { "quick\($0).txt" }
        for name in names { try instance.drop(name) }
        try instance.waitUntil("every file is done", timeout: 30) { instance.count(in: "Done") == names.count }
        for name in names {
            let show = try #require(try instance.json(["show", name]) as? [String: Any])
            #expect(show["state"] as? String == "done", "\(name): \(show)")
            let attempts = try #require(show["attempts"] as? [[String: Any]])
            #expect(attempts.count == 1, "\(name): \(attempts)")
            let attempt = attempts.first ?? [:]
            #expect(attempt["outcome"] as? String == "succeeded" && attempt["exit_code"] as? Int == 0, "\(name): \(attempt)")
            #expect(attempt["ended_at"] is String && attempt["pid"] is Int && attempt["max_rss_kib"] is Int, "\(name): \(attempt)")
            let steps = (show["transitions"] as? [[String: Any]] ?? []).map { "\($0["from"] as? String ?? "-")>\($0["to"] as? String ?? "?")" }
            #expect(steps == ["->queued", "queued>running", "running>done"], "\(name): \(steps)")
        }
        #expect(instance.stopDaemon() == 0)
    }

    /// SPEC: "then SIGTERM to the whole process group, SIGKILL after grace": the grace is `shutdown_grace` (it was
    /// a fixed 5 s).
    @Test func aWorkerThatIgnoresSIGTERMAtItsTimeoutIsKilledAfterTheShutdownGrace() throws {
        let worker = """
            #!/bin/sh
            trap '' TERM
            echo started >> ../runs.log
            while :; do sleep 0.1; done
            """
        let instance = try TestInstance(
            config: """
                [inbox]
                settle = "200ms"
                [limits]
                shutdown_grace = "1s"
                [[handler]]
                name = "test"
                command = ["../workers/deaf.sh"]
                timeout = "1s"
                max_attempts = 1
                """,
            workers: ["deaf.sh": worker])
        try instance.startDaemon()
        try instance.drop("deaf.txt")
        try instance.waitUntil("deaf.txt is in Failed", timeout: 20) { instance.names(in: "Failed").contains(Array("deaf.txt".utf8)) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func time(of message: String) throws -> Date {
            let line = try #require(instance.log.split(separator: "\n").first { $0.contains(message) }, "no \(message) in the log")
            return try #require(formatter.date(from: String(line.prefix { $0 != " " })))
        }
        let term = try time(of: "timed out; sending SIGTERM")
        let kill = try time(of: "still running after SIGTERM; sending SIGKILL")
        #expect((0.9...2.5).contains(kill.timeIntervalSince(term)), "SIGKILL \(kill.timeIntervalSince(term)) s after SIGTERM")
        let show = try #require(try instance.json(["show", "deaf.txt"]) as? [String: Any])
        let attempts = try #require(show["attempts"] as? [[String: Any]])
        #expect(attempts.count == 1 && attempts.first?["timed_out"] as? Bool == true && attempts.first?["signal"] as? Int == Int(SIGKILL))
        #expect(instance.stopDaemon() == 0)
    }

    @Test func sigkillWhileWorkersRunLosesNothingAndRedoesNothingCompleted() throws {
        let worker = """
            #!/bin/sh
            echo "$ORCH_NAME" >> ../runs.log
            sleep 0.3
            """
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["../workers/slow.sh"]"#, maxConcurrent: 4),
            workers: ["slow.sh": worker])
        try instance.startDaemon()
        let total = 40
        for index in 0..<total { try instance.drop("job-\(index).txt") }
        try instance.waitUntil("some files are done", timeout: 60) { instance.count(in: "Done") >= 8 }
        instance.killDaemon()
        let doneBeforeKill = instance.names(in: "Done")

        try instance.startDaemon()
        try instance.waitUntil("every file is in Done", timeout: 120) { instance.count(in: "Done") == total }
        #expect(instance.count(in: "Failed") == 0)
        #expect(instance.count(in: "Inbox") == 0)
        #expect(instance.names(in: "Inbox/.processing").isEmpty)
        let runs = instance.lines(of: "runs.log")
        for name in doneBeforeKill {
            let text = String(decoding: name, as: UTF8.self)
            #expect(runs.filter { $0 == text }.count == 1, "\(text) was completed before the kill and must not run again")
        }
        // A worker running at the kill (its start may even land after the test's snapshot) runs again
        // once; nothing runs more often than that, and every file ran.
        for index in 0..<total {
            let count = runs.filter { $0 == "job-\(index).txt" }.count
            #expect(count == 1 || count == 2, "job-\(index).txt ran \(count) times")
        }
        #expect(instance.stopDaemon() == 0)
    }

    @Test func restartEndsGrandchildrenLeftByAWorkerOfAKilledDaemon() throws {
        let worker = """
            #!/bin/sh
            sleep 300 &
            echo $! > ../grandchild.pid
            echo $$ > ../leader.pid
            [ -e ../second-run ] && exit 0
            touch ../second-run
            sleep 1
            """
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["../workers/leaky.sh"]"#), workers: ["leaky.sh": worker])
        // Without the spawner, which would end the grandchild as the daemon dies (DaemonDeathTests): the next start's
        // cleanup is what remains then.
        try instance.startDaemon(environment: ["ORCH_SPAWN": "direct"])
        try instance.drop("leak.txt")
        try instance.waitUntil("the worker started its grandchild", timeout: 30) { instance.lines(of: "leader.pid").count == 1 }
        let grandchild = try #require(instance.lines(of: "grandchild.pid").first.flatMap { Int32($0) })
        let leader = try #require(instance.lines(of: "leader.pid").first.flatMap { Int32($0) })
        instance.killDaemon()
        // The worker's leader ends on its own; its grandchild keeps running with nobody to end it.
        try waitUntil("the orphaned leader exits", timeout: 10) { isGone(leader) }
        #expect(!isGone(grandchild))
        try instance.startDaemon()
        try waitUntil("the restarted daemon ended the grandchild", timeout: 10) { isGone(grandchild) }
        try instance.waitUntil("leak.txt is done", timeout: 30) { instance.names(in: "Done").contains(Array("leak.txt".utf8)) }
        #expect(instance.stopDaemon() == 0)
    }

    @Test func secondWatchOnTheSameStateExits69() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        try instance.startDaemon()
        let second = try instance.run(["watch"])
        #expect(second.status == 69)
        #expect(second.stderr.contains("already watching"))
        #expect(instance.stopDaemon() == 0)
    }

    @Test func replayRerunsAFailedFile() throws {
        let worker = """
            #!/bin/sh
            [ -s "$1" ]
            """
        let instance = try TestInstance(
            config: testConfig(handler: """
                command = ["../workers/nonempty.sh", "{file}"]
                max_attempts = 1
                """),
            workers: ["nonempty.sh": worker])
        try instance.startDaemon()
        try instance.drop("x.txt", "")
        try instance.waitUntil("x.txt is in Failed", timeout: 30) { instance.names(in: "Failed").contains(Array("x.txt".utf8)) }
        try "fixed\n".write(toFile: instance.path("Failed/x.txt"), atomically: false, encoding: .utf8)
        let replay = try instance.run(["replay", "Failed/x.txt"])
        #expect(replay.status == 0, "\(replay.stderr)")
        try instance.waitUntil("x.txt is in Done", timeout: 30) { instance.names(in: "Done").contains(Array("x.txt".utf8)) }
        #expect(instance.count(in: "Failed") == 0)
        #expect(instance.stopDaemon() == 0)
    }

    @Test func replayRefusesPathsOutsideFailed() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        try "secret".write(toFile: instance.path("outside.txt"), atomically: false, encoding: .utf8)
        try #require(symlink(instance.path("outside.txt"), instance.path("Failed/link.txt")) == 0, "symlink: errno \(errno)")
        for target in ["../etc/passwd", "/etc/passwd", "Failed/../outside.txt", "Failed/link.txt"] {
            let result = try instance.run(["replay", target])
            #expect(result.status == 65, "replay \(target) exited \(result.status)")
            #expect(!result.stderr.isEmpty)
        }
        // A link in Failed/ (one the daemon failed) is named as such, whichever way it is given.
        for given in ["Failed/link.txt", "link.txt"] {
            let link = try instance.run(["replay", given])
            #expect(link.status == 65 && link.stderr.contains("\(given) is a symbolic link"), "\(link.stderr)")
        }
        // A name given back in the message cannot drive the terminal (an escape, a newline that forges a line).
        for given in ["Done/esc\u{1b}[31mred", "Failed/new\nline"] {
            let odd = try instance.run(["replay", given])
            #expect(odd.status == 65 && !odd.stderr.unicodeScalars.contains { $0.value == 0x1b }, "\(odd.stderr)")
            #expect(odd.stderr.contains(#"esc\x1b[31mred"#) || odd.stderr.contains(#"new\x0aline"#), "\(odd.stderr)")
        }
        #expect(FileManager.default.fileExists(atPath: instance.path("outside.txt")))
        #expect(instance.count(in: "Inbox") == 0)
    }

    @Test(arguments: [
        ("[[handler]]\nname = \"a\"\ncommand = [\"true\"]\nmax_atempts = 3\n", 4, "max_atempts"),
        ("[inbox]\nsettle = \"5 minutes\"\n\n[[handler]]\nname = \"a\"\ncommand = [\"true\"]\n", 2, "duration"),
    ])
    func badConfigExits78NamingTheLine(config: String, line: Int, word: String) throws {
        let instance = try TestInstance(config: config)
        let result = try instance.run(["watch"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("orchestrator.toml:\(line): error:"), "\(result.stderr)")
        #expect(result.stderr.contains(word))
        let check = try instance.run(["config", "check"])
        #expect(check.status == 78)
        #expect(check.stderr.contains("orchestrator.toml:\(line): error:"))
    }
}
