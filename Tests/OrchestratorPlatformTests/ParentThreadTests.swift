import Dispatch
import Foundation
import OrchestratorPlatform
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every child of the supervisor dies with the daemon (PR_SET_PDEATHSIG), but the kernel sends that signal when
/// the *thread* that is the child's parent exits. These start workers from threads that then exit, as Dispatch
/// threads do when they idle out, and check that the workers run on: they are the children of the one thread that
/// lives as long as the process.
@Suite(.serialized)
struct ParentThreadTests {
    @Test(arguments: ["spawner", "helper", "direct"])
    func workersOutliveTheThreadsThatAskedForThem(way: String) async throws {
        let queue = DispatchQueue(label: "ParentThreadTests")
        let supervisor = ProcessSupervisor(
            queue: queue, subreaper: false,
            spawnHelper: way == "direct" ? nil : ProcessSupervisor.bundledSpawnHelper,
            helperUse: way == "helper" ? .perWorker : .spawner)
        var template = Array("/tmp/orch-parent-test-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let go = dir + "/go"
        let exits = Exits()
        var pids: [pid_t] = []
        var askers: Set<pid_t> = []

        // Each start runs on a thread of its own, which ends after it: `queue.sync` runs the block on the calling
        // thread, so without the parent thread, the spawn (and for the first, the spawner's start) would be made
        // from that thread and the worker killed as it ends.
        for n in 0..<4 {
            let request = SpawnRequest(
                arguments: ["/bin/sh", "-c", "while [ ! -e \"$0\" ]; do sleep 0.01; done; exit 3", go].map { Array($0.utf8) },
                environment: [Array("PATH=/usr/bin:/bin".utf8)], workingDirectory: [],
                logPath: Array("\(dir)/attempt-\(n).log".utf8), logCap: 1 << 20)
            let (pid, asker) = try onShortLivedThread { () throws(SpawnError) -> pid_t in
                try queue.sync {
                    Result { () throws(SpawnError) in try supervisor.spawn(request) { exit in exits.add(exit) }.pid }
                }.get()
            }
            pids.append(pid)
            askers.insert(asker)
        }
        #expect(askers.count == 4 && !askers.contains(ProcessSupervisor.parentThreadID))
        let spawner = queue.sync { supervisor.spawnerPID }
        #expect((spawner != nil) == (way == "spawner"))

        // The mechanism itself, where this kernel lists a thread's children: each worker (and the spawner) is the
        // parent thread's.
        let childrenFile = "/proc/self/task/\(ProcessSupervisor.parentThreadID)/children"
        if let listed = try? String(contentsOfFile: childrenFile, encoding: .utf8) {
            let children = Set(listed.split(separator: " ").compactMap { pid_t($0) })
            #expect(Set(pids + [spawner].compactMap { $0 }).isSubset(of: children))
        }

        // Every asking thread is gone (its /proc entry goes after the kernel has reparented its children and sent
        // their death signals): a worker that was signalled then has SIGKILL pending and cannot exit 3 after `go`.
        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        #expect(await eventually { exits.count == pids.count })
        #expect(exits.all.map(\.termination) == Array(repeating: .exited(3), count: pids.count))
        if let spawner {
            #expect(kill(spawner, 0) == 0, "the spawner outlives the thread that first asked for a worker")
            queue.sync { supervisor.releaseSpawner() }
        }
    }
}

extension ParentThreadTests {
    /// Without orchestrator-spawn the worker is cloned straight from the parent thread (shims.c, start_child, in
    /// place of posix_spawn, which cannot set PR_SET_PDEATHSIG in the child): the same clean slate as a spawned one.
    @Test func aDirectlyStartedWorkerHasACleanSlate() async throws {
        let queue = DispatchQueue(label: "ParentThreadTests.direct")
        let supervisor = ProcessSupervisor(queue: queue, subreaper: false, spawnHelper: nil)
        var template = Array("/tmp/orch-parent-test-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let leaked = fcntl(2, F_DUPFD, 100)  // F_DUPFD leaves close-on-exec off
        defer { close(leaked) }
        let ignored = signal(SIGUSR1, SIG_IGN)
        defer { signal(SIGUSR1, ignored) }
        // A bare name, found through PATH; $$ is the worker itself. Its signal state is read with builtins only: while
        // the shell forks a command (dash uses vfork) it blocks every signal for a moment, which the command could see.
        let script = "while read -r key value; do case $key in SigBlk:|SigIgn:) printf '%s\\t%s\\n' $key $value;; esac; done < /proc/$$/status; "
            + "readlink /proc/$$/fd/0; ls /proc/$$/fd; "
            + "ps -o pid=,pgid=,sid= -p $$; pwd"
        let request = SpawnRequest(
            arguments: ["sh", "-c", script].map { Array($0.utf8) }, environment: [Array("PATH=/usr/bin:/bin".utf8)],
            workingDirectory: Array(dir.utf8), logPath: Array("\(dir)/attempt.log".utf8), logCap: 1 << 20)
        let exits = Exits()
        let pid = try queue.sync {
            Result { () throws(SpawnError) in try supervisor.spawn(request) { exit in exits.add(exit) }.pid }
        }.get()
        #expect(await eventually { exits.count == 1 })
        #expect(exits.all.first?.termination == .exited(0))
        let lines = String(decoding: try Data(contentsOf: URL(fileURLWithPath: "\(dir)/attempt.log")), as: UTF8.self)
            .split(separator: "\n").map { String($0) }
        #expect(lines.prefix(3) == ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000", "/dev/null"])
        let fds = Set(lines.dropFirst(3).prefix { Int($0) != nil })
        #expect(fds == ["0", "1", "2"] || fds == ["0", "1", "2", "10"], "dash may keep fd 10 for itself")
        let ids = lines.dropFirst(3 + fds.count).first?.split(separator: " ").map(String.init)
        #expect(ids == ["\(pid)", "\(pid)", "\(pid)"])
        #expect(lines.last == dir)
    }
}

/// Runs `body` on a new thread and returns once that thread has ended, with the result and the thread's id.
private func onShortLivedThread<T: Sendable>(
    _ body: @escaping @Sendable () throws(SpawnError) -> T
) throws(SpawnError) -> (T, pid_t) {
    let box = ResultBox<T>()
    let thread = Thread {
        box.set(Result { () throws(SpawnError) in try body() }, thread: currentThreadID())
    }
    thread.start()
    let (result, tid) = box.wait()
    // The kernel removes a thread's /proc entry after it has exited and its children have been handed on.
    let deadline = ContinuousClock.now + .seconds(10)
    while FileManager.default.fileExists(atPath: "/proc/self/task/\(tid)"), ContinuousClock.now < deadline {
        usleep(1_000)
    }
    #expect(!FileManager.default.fileExists(atPath: "/proc/self/task/\(tid)"), "thread \(tid) did not end")
    return (try result.get(), tid)
}

/// This thread's kernel id: /proc/thread-self is a link to PID/task/TID.
private func currentThreadID() -> pid_t {
    let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
    return link.split(separator: "/").last.flatMap { pid_t($0) } ?? 0
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, SpawnError>?
    private var thread: pid_t = 0
    func set(_ value: Result<T, SpawnError>, thread: pid_t) {
        result = value
        self.thread = thread
        done.signal()
    }
    func wait() -> (Result<T, SpawnError>, pid_t) {
        done.wait()
        return (result!, thread)
    }
}

private final class Exits: @unchecked Sendable {
    private let lock = NSLock()
    private var exits: [WorkerExit] = []
    func add(_ exit: WorkerExit) { lock.withLock { exits.append(exit) } }
    var count: Int { lock.withLock { exits.count } }
    var all: [WorkerExit] { lock.withLock { exits } }
}

private func eventually(_ limit: Duration = .seconds(20), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}
