#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// A SIGKILLed daemon takes its workers with it: nobody is left to supervise them, and with a shared store
/// another daemon runs their files again once their lease runs out, so a worker left running would run its file
/// twice at once.
@Suite(.serialized)
struct DaemonDeathTests {
    /// Writes its pid to the path the dropped file holds, then becomes a long sleep (same pid: `exec`).
    static let sleeper = """
        #!/bin/sh
        out=$(cat "$ORCH_FILE")
        echo $$ > "$out.tmp"; mv "$out.tmp" "$out"
        exec sleep 1000
        """

    @Test(arguments: ["spawner", "helper", "direct"])
    func workersAndSpawnerDieWithASIGKILLedDaemon(spawnMode: String) throws {
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["../workers/sleeper.sh"]"#),
            workers: ["sleeper.sh": Self.sleeper])
        try instance.startDaemon(environment: ["ORCH_SPAWN": spawnMode])
        let daemonPID = try #require(instance.daemon?.processIdentifier)
        let pidFile = instance.path("worker.pid")
        try instance.drop("a.txt", pidFile + "\n")
        try instance.waitUntil("the worker has started", timeout: 20) { !instance.lines(of: "worker.pid").isEmpty }
        let worker = try #require(instance.lines(of: "worker.pid").first.flatMap { Int32($0) })
        try instance.waitUntil("the worker has become the sleep", timeout: 10) { command(of: worker) == "sleep" }

        // The worker, and with the spawner its zygotes waiting for the next file: every child of the daemon.
        let children = childrenOf(daemonPID)
        #expect(children.contains(worker))
        if spawnMode == "spawner" { #expect(children.count > 1, "the spawner and its zygotes are children too") }
        let started = Dictionary(uniqueKeysWithValues: children.map { ($0, startTime(of: $0)) })
        defer {
            for (pid, time) in started where time != nil && startTime(of: pid) == time { kill(pid, SIGKILL) }
        }

        instance.killDaemon()
        // Init (or whatever reaps orphans here) may take a moment to reap one: a zombie is dead, only a process
        // that still runs counts. The deadline is the guarantee: the kernel sends the signal as the daemon exits.
        var survivors: [Int32] = []
        try? waitUntil("every child of the daemon is gone", timeout: 2) {
            survivors = started.keys.filter { isRunning($0, startedAt: started[$0] ?? nil) }
            return survivors.isEmpty
        }
        #expect(survivors.isEmpty, "still running after the daemon was SIGKILLed: \(survivors.map { "\($0) \(command(of: $0) ?? "?")" })")
    }

    /// A worker that starts a child in its group, writes the child's pid to the path the dropped file holds and waits.
    static let parent = """
        #!/bin/sh
        sleep 1000 &
        out=$(cat "$ORCH_FILE")
        echo $! > "$out.tmp"; mv "$out.tmp" "$out"
        wait
        """

    /// Drops a file whose worker (`parent`) starts a child in its group: the child's pid and start time, once it is the
    /// sleep.
    private func childOfARunningWorker(_ instance: TestInstance) throws -> (pid: Int32, start: String?) {
        let pidFile = instance.path("child.pid")
        try instance.drop("a.txt", pidFile + "\n")
        try instance.waitUntil("the worker's child has started", timeout: 20) { !instance.lines(of: "child.pid").isEmpty }
        let child = try #require(instance.lines(of: "child.pid").first.flatMap { Int32($0) })
        try instance.waitUntil("the child is the sleep", timeout: 10) { command(of: child) == "sleep" }
        return (child, startTime(of: child))
    }

    /// The worker dies with its SIGKILLed daemon, and so does the child it started in its group: the spawner outlives
    /// the daemon to end its workers' groups. Before, the child ran on until the next start of this daemon, and on a
    /// shared store beside the run another daemon took over.
    @Test func aChildOfAWorkerEndsWithItsSIGKILLedDaemon() throws {
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["../workers/parent.sh"]"#), workers: ["parent.sh": Self.parent])
        try instance.startDaemon()
        let (child, childStart) = try childOfARunningWorker(instance)
        defer { if childStart != nil, startTime(of: child) == childStart { kill(child, SIGKILL) } }
        instance.killDaemon()
        try waitUntil("the child is gone with its daemon", timeout: 2) { !isRunning(child, startedAt: childStart) }
    }

    /// The worker dies with the daemon, but a child it started (same group, the marker in its environment) does
    /// not where workers start without the spawner (`ORCH_SPAWN=direct`, or a spawner that died with the daemon):
    /// the next start ends it before the job runs again. It stayed when the worker had already exited by then
    /// (a restart a few seconds later): the store named that worker, so its group was taken for ended.
    @Test func aChildOfAWorkerThatDiedWithItsDaemonIsEndedAtTheNextStart() throws {
        // The second start runs a.txt again, and its worker waits on a sleep of its own: the final stop ends it after a
        // short grace rather than 5 s.
        let instance = try TestInstance(
            config: testConfig(handler: #"command = ["../workers/parent.sh"]"#, grace: "500ms"), workers: ["parent.sh": Self.parent])
        try instance.startDaemon(environment: ["ORCH_SPAWN": "direct"])
        let (child, childStart) = try childOfARunningWorker(instance)
        defer { if childStart != nil, startTime(of: child) == childStart { kill(child, SIGKILL) } }
        let leader = getpgid(child)
        instance.killDaemon()
        // The worker dies with its daemon; once its new parent (init here) has reaped it, only the child is left. (A
        // worker not reaped yet still leads its group, and ending that group ends the child as well.)
        try? waitUntil("the worker that died with its daemon is reaped", timeout: 15) { kill(leader, 0) != 0 }
        #expect(isRunning(child, startedAt: childStart), "the child should outlive the worker for this test")
        try instance.startDaemon(environment: ["ORCH_SPAWN": "direct"])
        try waitUntil("the next start ends the child", timeout: 10) { !isRunning(child, startedAt: childStart) }
        let said = kill(leader, 0) != 0 ? "ending a leftover process of a previous daemon's worker" : "ending a worker group left by a previous daemon"
        #expect(instance.log.contains(said), "\(instance.log)")
        #expect(instance.stopDaemon() == 0)
    }
}

/// Whether the process with this pid and start time runs (a zombie does not).
private func isRunning(_ pid: Int32, startedAt: String?) -> Bool {
    guard let fields = statFields(of: pid), fields.count > 19, fields[19] == startedAt else { return false }
    return fields[0] != "Z" && fields[0] != "X"
}

private func childrenOf(_ parent: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        statFields(of: pid).flatMap { $0.count > 1 ? Int32($0[1]) : nil } == parent
    }
}

private func command(of pid: Int32) -> String? {
    (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Field 22 of /proc/PID/stat; nil once no such process exists (a zombie still has one).
private func startTime(of pid: Int32) -> String? {
    statFields(of: pid).flatMap { $0.count > 19 ? $0[19] : nil }
}

/// The fields after the command name, from field 3 (state) on.
private func statFields(of pid: Int32) -> [String]? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ").map(String.init)
}
