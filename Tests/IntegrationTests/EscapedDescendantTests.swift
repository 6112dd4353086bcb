#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Guarantees 17 and 21 on the real binary: descendants that leave a worker's session are ended,
/// and an attempt's max RSS is its worker's own.
@Suite(.serialized)
struct EscapedDescendantTests {
    /// The dropped file holds the path to write the orphan's pid to. util-linux `setsid` forks (the
    /// worker leads its group) into a new session, whose shell leaves `sleep` behind: a double-forked
    /// grandchild outside the worker's group and session. Then the worker waits for `$1`, if given.
    static let leaveOrphan = """
        #!/bin/sh
        out=$(cat "$ORCH_FILE")
        setsid sh -c "sleep 1000 & echo \\$! > '$out.tmp'; mv '$out.tmp' '$out'"
        while [ ! -e "$out" ]; do sleep 0.01; done
        if [ -n "$1" ]; then while [ ! -e "$1" ]; do sleep 0.01; done; fi
        exit 0
        """

    @Test func doubleForkedGrandchildIsEndedSoonAfterItsWorkerExits() throws {
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["../workers/leave.sh"]"#), workers: ["leave.sh": Self.leaveOrphan])
        try instance.startDaemon()
        let pidFile = instance.path("orphan.pid")
        try instance.drop("a.txt", pidFile + "\n")
        try instance.waitUntil("a.txt is done", timeout: 20) { instance.count(in: "Done") == 1 }
        let orphan = try #require(instance.lines(of: "orphan.pid").first.flatMap { Int32($0) })
        let started = startTime(of: orphan)
        defer { if started != nil, startTime(of: orphan) == started { kill(orphan, SIGKILL) } }
        try instance.waitUntil("the orphan is gone, not even a zombie", timeout: 5) { startTime(of: orphan) != started }

        // Guarantee 21: the attempt's max RSS is the shell's, not the daemon's (about 27 MiB).
        let show = try #require(try instance.json(["show", "a.txt"]) as? [String: Any])
        let attempt = try #require((show["attempts"] as? [[String: Any]])?.first)
        let maxRSS = try #require(attempt["max_rss_kib"] as? Int)
        #expect(maxRSS > 0 && maxRSS < 8 * 1024)
        #expect(instance.stopDaemon() == 0)
    }

    @Test func orphanOfARunningWorkerIsEndedByACleanStop() throws {
        let config = """
            [inbox]
            settle = "200ms"

            [limits]
            shutdown_grace = "200ms"

            [[handler]]
            name = "test"
            command = ["../workers/leave.sh", "never"]
            """
        let instance = try TestInstance(config: config, workers: ["leave.sh": Self.leaveOrphan])
        try instance.startDaemon()
        let pidFile = instance.path("orphan.pid")
        try instance.drop("b.txt", pidFile + "\n")
        try instance.waitUntil("the orphan has started", timeout: 20) { !instance.lines(of: "orphan.pid").isEmpty }
        let orphan = try #require(instance.lines(of: "orphan.pid").first.flatMap { Int32($0) })
        let started = startTime(of: orphan)
        defer { if started != nil, startTime(of: orphan) == started { kill(orphan, SIGKILL) } }
        try instance.waitUntil("the orphan is the daemon's child", timeout: 5) {
            parentPid(of: orphan) == instance.daemon?.processIdentifier
        }
        #expect(instance.stopDaemon() == 0)
        #expect(startTime(of: orphan) != started, "the orphan outlived the daemon")
    }
}

/// Field 22 of /proc/PID/stat; nil once no such process exists (a zombie still has one).
private func startTime(of pid: Int32) -> String? {
    statFields(of: pid).flatMap { $0.count > 19 ? $0[19] : nil }
}

private func parentPid(of pid: Int32) -> Int32? {
    statFields(of: pid).flatMap { $0.count > 1 ? Int32($0[1]) : nil }
}

/// The fields after the command name, from field 3 (state) on.
private func statFields(of pid: Int32) -> [String]? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ").map(String.init)
}
