import Dispatch
import Foundation
import OrchestratorPlatform
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct ProcessSupervisorTests {
    private let harness = Harness()

    // MARK: Termination and accounting

    @Test func exitZero() async throws {
        let worker = try harness.start(["/bin/true"])
        let exit = try await worker.exit()
        #expect(exit.termination == .exited(0))
        #expect(exit.outputBytes == 0)
        #expect(exit.droppedBytes == 0)
        #expect(worker.runningCountInOnExit == 0)
    }

    @Test func exitThree() async throws {
        let exit = try await harness.start(["/bin/sh", "-c", "exit 3"]).exit()
        #expect(exit.termination == .exited(3))
    }

    @Test func killedBySignal() async throws {
        let exit = try await harness.start(["/bin/sh", "-c", "kill -KILL $$"]).exit()
        #expect(exit.termination == .signaled(SIGKILL))
    }

    @Test func rusageOfCPUBurningChildIsItsOwn() async throws {
        // The shell's `times` prints its own user and system time: what the record must show.
        let burn = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; times"
        let worker = try harness.start(["/bin/sh", "-c", burn])
        let exit = try await worker.exit()
        #expect(exit.termination == .exited(0))
        let own = String(decoding: try worker.log(), as: UTF8.self).split(separator: "\n").first.map { line in
            line.split(separator: " ").compactMap { field -> Double? in
                guard let m = field.firstIndex(of: "m"), field.hasSuffix("s"), let minutes = Double(field[..<m]),
                      let seconds = Double(field[field.index(after: m)..<field.index(before: field.endIndex)])
                else { return nil }
                return minutes * 60 + seconds
            }
        }
        let shellUser = try #require(own?.first)
        #expect(shellUser > 0.02)
        let recordedUser = Double(exit.userCPU.components.seconds) + Double(exit.userCPU.components.attoseconds) / 1e18
        #expect(abs(recordedUser - shellUser) < 0.02 + shellUser * 0.1)
        #expect(exit.maxRSSKiB > 256 && exit.maxRSSKiB < 8 * 1024)  // dash: about 1.5 MiB
    }

    @Test func maxRSSIsTheWorkersOwn() async throws {
        let small = try await harness.start(["/bin/sh", "-c", "true"]).exit()
        #expect(small.termination == .exited(0))
        #expect(small.maxRSSKiB > 256 && small.maxRSSKiB < 8 * 1024)
        // dd reads 200 MiB of zeros into one buffer: every page of it resident at once.
        let big = try await harness.start(["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"]).exit()
        #expect(big.termination == .exited(0))
        #expect(big.maxRSSKiB >= 190 * 1024 && big.maxRSSKiB < 215 * 1024)
    }

    @Test func helperRunPerWorkerAlsoMeasuresTheWorkersOwn() async throws {
        let perWorker = Harness(helperUse: .perWorker)
        let exit = try await perWorker.start(["/bin/sh", "-c", "true"]).exit()
        #expect(exit.termination == .exited(0))
        #expect(exit.maxRSSKiB > 256 && exit.maxRSSKiB < 8 * 1024)
        #expect(perWorker.onQueue { $0.spawnerPID } == nil)
    }

    @Test func oneSpawnerServesEveryWorkerAndAKilledOneIsReplaced() async throws {
        #expect(try await harness.start(["/bin/true"]).exit().termination == .exited(0))
        let first = try #require(harness.onQueue { $0.spawnerPID })
        // Workers are our children (CLONE_PARENT), not the spawner's, and later ones reuse it.
        let worker = try harness.start(["/bin/sh", "-c", "while [ ! -e \"$0\" ]; do sleep 0.01; done; exit 3", harness.dir + "/go"])
        // The spawner answers before its child's setsid; the worker leads its own group from then on.
        #expect(await eventually { getpgid(worker.handle.pid) == worker.handle.pid })
        try harness.write("go", "", mode: 0o644)
        #expect(try await worker.exit().termination == .exited(3))
        #expect(harness.onQueue { $0.spawnerPID } == first)

        kill(first, SIGKILL)
        // Noticed at the first start after it is gone (a zygote it forked ahead serves that one, and its order for
        // a replacement fails): ended then, and the next start has a new one.
        var replacement: pid_t? = first
        for _ in 0...ProcessSupervisor.zygotePool + 1 where replacement == first || replacement == nil {
            let after = try await harness.start(["/bin/sh", "-c", "true"]).exit()
            #expect(after.termination == .exited(0))
            #expect(after.maxRSSKiB > 256 && after.maxRSSKiB < 8 * 1024)
            replacement = harness.onQueue { $0.spawnerPID }
        }
        let second = try #require(replacement)
        #expect(second != first)
        // The killed one was reaped, not left a zombie.
        #expect(kill(first, 0) != 0)

        // Released (the daemon's queue ran dry): ended and reaped; the next worker starts a new one.
        harness.onQueue { $0.releaseSpawner() }
        #expect(harness.onQueue { $0.spawnerPID } == nil)
        #expect(kill(second, 0) != 0)
        #expect(try await harness.start(["/bin/true"]).exit().termination == .exited(0))
        #expect(harness.onQueue { $0.spawnerPID } != nil)
    }

    /// Zygotes, forked ahead of need, are children of ours in sessions of their own: an orphan sweep spares them
    /// (and takes in those announced meanwhile), and releasing the spawner ends and reaps them.
    @Test func zygotesAreSparedBySweepsAndEndedWithTheSpawner() async throws {
        let harness = Harness()
        #expect(try await harness.startWithFullZygotePool())
        let zygotes = harness.onQueue { $0.readyZygotePIDs }
        // (Another suite's orphans may be ended by this sweep too: it ends every child it does not know.)
        _ = harness.onQueue { $0.endEscapedDescendants() }
        #expect(harness.onQueue { $0.readyZygotePIDs } == zygotes)
        for zygote in zygotes {
            #expect(parent(of: zygote) == getpid())
            #expect(getsid(zygote) == zygote && !isDead(zygote))
        }
        // The next start uses the oldest.
        let worker = try harness.start(["/bin/true"])
        #expect(worker.handle.pid == zygotes.first)
        #expect(try await worker.exit().termination == .exited(0))
        harness.onQueue { $0.releaseSpawner() }
        #expect(harness.onQueue { $0.readyZygotePIDs }.isEmpty)
        for zygote in zygotes.dropFirst() { #expect(kill(zygote, 0) != 0, "zygote \(zygote) reaped") }
    }

    /// A zygote killed while it waited runs nothing: the start takes the next one, and the killed ones are reaped.
    @Test func aKilledZygoteIsSkippedAndReaped() async throws {
        let harness = Harness()
        #expect(try await harness.startWithFullZygotePool())
        let killed = harness.onQueue { $0.readyZygotePIDs }
        for zygote in killed { kill(zygote, SIGKILL) }
        #expect(await eventually { killed.allSatisfy(isDead) })
        let worker = try harness.start(["/bin/sh", "-c", "exit 4"])
        #expect(!killed.contains(worker.handle.pid))
        let exit = try await worker.exit()
        #expect(exit.termination == .exited(4))
        #expect(exit.maxRSSKiB > 256 && exit.maxRSSKiB < 8 * 1024)
        for zygote in killed { #expect(kill(zygote, 0) != 0, "zygote \(zygote) reaped") }
    }

    /// A request too large to send fails the start at once and leaves the zygote it would have used unused, for
    /// the next worker.
    @Test func aRequestTooLargeToSendLeavesItsZygoteForTheNext() async throws {
        let harness = Harness()
        #expect(try await harness.startWithFullZygotePool())
        let oldest = try #require(harness.onQueue { $0.readyZygotePIDs.first })
        let tooLarge = #expect(throws: SpawnError.self) {
            try harness.start(["/bin/true", String(repeating: "x", count: 1 << 20)])
        }
        #expect(tooLarge?.errno == E2BIG)
        #expect(harness.onQueue { $0.readyZygotePIDs.first } == oldest)
        let next = try harness.start(["/bin/true"])
        #expect(next.handle.pid == oldest)
        #expect(try await next.exit().termination == .exited(0))
    }

    @Test func directSpawnStartsAtThisProcesssPeakRSS() async throws {
        // Why the helper exists: at exec the kernel folds the old mm's peak into the worker's
        // maxrss, and a posix_spawn child execs from this process's mm.
        let direct = Harness(helper: false)
        let exit = try await direct.start(["/bin/sh", "-c", "true"]).exit()
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #expect(exit.maxRSSKiB > 8 * 1024)
        #expect(exit.maxRSSKiB <= usage.ru_maxrss)
    }

    // MARK: Output

    @Test func outputGoesToTheLog() async throws {
        let worker = try harness.start(["/bin/sh", "-c", "echo hello; echo oops >&2"])
        let exit = try await worker.exit()
        let log = try worker.log()
        #expect(log.contains(Array("hello\n".utf8)))
        #expect(log.contains(Array("oops\n".utf8)))
        #expect(log.count == 11)
        #expect(exit.outputBytes == 11)
        #expect(exit.stderrTail == Array("oops\n".utf8))
    }

    @Test func logCapDropsTheRestAndSaysHowMuch() async throws {
        let worker = try harness.start(["/bin/sh", "-c", "head -c 1048576 /dev/zero"], logCap: 65536)
        let exit = try await worker.exit()
        #expect(exit.termination == .exited(0))
        #expect(exit.outputBytes == 1_048_576)
        #expect(exit.droppedBytes == 1_048_576 - 65536)
        let log = try worker.log()
        #expect(log.prefix(65536).allSatisfy { $0 == 0 })
        let note = "\n[orchestrator: dropped 983040 bytes of output beyond the log cap of 65536 bytes]\n"
        #expect(Array(log.dropFirst(65536)) == Array(note.utf8))
    }

    @Test func stderrTailKeepsTheLast4KiB() async throws {
        let script = "i=0; while [ $i -lt 1000 ]; do echo \"err line $i\" >&2; i=$((i+1)); done; echo stdout-done"
        let exit = try await harness.start(["/bin/sh", "-c", script]).exit()
        let all = (0..<1000).flatMap { Array("err line \($0)\n".utf8) }
        #expect(exit.stderrTail.count == 4096)
        #expect(exit.stderrTail == Array(all.suffix(4096)))
        #expect(exit.outputBytes == all.count + "stdout-done\n".utf8.count)
    }

    // MARK: What the child gets

    @Test func argumentAndEnvironmentBytesRoundTrip() async throws {
        // Spaces, newline, tab, quotes, glob and $ characters, and invalid UTF-8.
        let weird: [UInt8] = Array("a b\n\tc '\"*${x}".utf8) + [0xFF, 0xC3, 0x28, 0x80]
        let script = "printf '%s' \"$1\" > arg.out; printf '%s' \"$WEIRD\" > env.out"
        let worker = try harness.start(
            [Array("/bin/sh".utf8), Array("-c".utf8), Array(script.utf8), Array("sh".utf8), weird],
            environment: [Array("PATH=/usr/bin:/bin".utf8), Array("WEIRD=".utf8) + weird],
            cwd: harness.dir)
        #expect(try await worker.exit().termination == .exited(0))
        #expect(try harness.read("arg.out") == weird)
        #expect(try harness.read("env.out") == weird)
    }

    @Test func environmentIsExactlyTheGivenOne() async throws {
        let worker = try harness.start(
            ["/usr/bin/env"], environment: [Array("ONLY=this".utf8), Array("ALSO=that one".utf8)])
        #expect(try await worker.exit().termination == .exited(0))
        #expect(try worker.log() == Array("ONLY=this\nALSO=that one\n".utf8))
    }

    @Test func workingDirectoryAndRelativeProgramPath() async throws {
        try harness.write("workers/x.sh", "#!/bin/sh\npwd -P > where.txt\n", mode: 0o755)
        let worker = try harness.start(["./workers/x.sh"], cwd: harness.dir)
        #expect(try await worker.exit().termination == .exited(0))
        let real = URL(fileURLWithPath: harness.dir).resolvingSymlinksInPath().path
        #expect(try harness.read("where.txt") == Array((real + "\n").utf8))
    }

    @Test func inheritedDescriptorsAreClosedAndStdinIsDevNull() async throws {
        let opened = open("/etc/hostname", O_RDONLY)  // deliberately without O_CLOEXEC
        let leaked = fcntl(opened, F_DUPFD, 100)  // above ls's own fd 3; F_DUPFD leaves CLOEXEC off
        close(opened)
        #expect(leaked >= 100 && fcntl(leaked, F_GETFD) == 0)
        defer { close(leaked) }
        let worker = try harness.start(["ls", "/proc/self/fd"])  // bare name: found through PATH
        #expect(try await worker.exit().termination == .exited(0))
        let fds = Set(String(decoding: try worker.log(), as: UTF8.self).split(separator: "\n").map(String.init))
        #expect(fds.isSubset(of: ["0", "1", "2", "3"]))  // 3 is ls's own directory fd
        #expect(fds.isSuperset(of: ["0", "1", "2"]))

        let stdin = try harness.start(["/bin/readlink", "/proc/self/fd/0"])
        #expect(try await stdin.exit().termination == .exited(0))
        #expect(try stdin.log() == Array("/dev/null\n".utf8))
    }

    @Test func signalMaskIsEmptyAndDispositionsAreDefault() async throws {
        // libdispatch worker threads block several signals; the child must not inherit that.
        let worker = try harness.start(["/bin/grep", "-E", "^(SigBlk|SigIgn):", "/proc/self/status"])
        #expect(try await worker.exit().termination == .exited(0))
        let text = String(decoding: try worker.log(), as: UTF8.self)
        #expect(text == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n")
    }

    @Test func ownSession() async throws {
        let worker = try harness.start(["/bin/sh", "-c", "ps -o pid=,pgid=,sid= -p $$ > ids.txt"], cwd: harness.dir)
        #expect(try await worker.exit().termination == .exited(0))
        let ids = String(decoding: try harness.read("ids.txt"), as: UTF8.self).split(separator: " ")
            .compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let pid = worker.handle.pid
        #expect(ids == [pid, pid, pid])
    }

    // MARK: Process groups

    @Test func backgroundGrandchildDoesNotDelayTheExitAndIsKilled() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let worker = try harness.start(["/bin/sh", "-c", "sleep 300 & echo $! > sleep.pid; exit 0"], cwd: harness.dir)
        let exit = try await worker.exit()
        #expect(clock.now - started < .seconds(2))
        #expect(exit.termination == .exited(0))
        let sleeper = try #require(Int32(String(decoding: try harness.read("sleep.pid"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(await eventually { isDead(sleeper) })
    }

    @Test func escapedWriterDoesNotDelayTheExit() async throws {
        // `setsid` takes `yes` out of the group, so the group kill misses it and the pipe never
        // reaches EOF while it lives: onExit must not wait for EOF, and the bounded drain must
        // not chase a writer that never stops. Closing the pipe then ends `yes` with SIGPIPE.
        let clock = ContinuousClock()
        let started = clock.now
        let worker = try harness.start(
            ["/bin/sh", "-c", "setsid yes & echo $! > yes.pid; sleep 0.1; exit 0"], cwd: harness.dir, logCap: 4096)
        let exit = try await worker.exit()
        #expect(clock.now - started < .seconds(2))
        #expect(exit.termination == .exited(0))
        #expect(exit.outputBytes > 4096)
        #expect(exit.droppedBytes == exit.outputBytes - 4096)
        let escaped = try #require(Int32(String(decoding: try harness.read("yes.pid"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        let ended = await eventually { isDead(escaped) }
        #expect(ended)
        if !ended { kill(escaped, SIGKILL) }
    }

    /// A worker between the spawner's answer and its setsid has no group of its own yet: the signal meant for its
    /// group reaches it alone. Here a process in our own group stands for it, deterministically.
    @Test func aSignalForAGroupThatDoesNotExistYetReachesItsLeaderAlone() async throws {
        // posix_spawn without flags: the child stays in this process's group, so no group bears its pid.
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("300"), nil]
        defer { for arg in argv { free(arg) } }
        #expect(posix_spawn(&pid, "/bin/sleep", nil, nil, argv, environ) == 0)
        defer { kill(pid, SIGKILL) }
        #expect(getpgid(pid) == getpgrp() && getpgid(pid) != pid)
        // SIGKILL: the test runner's blocked signals are inherited by a child started this way.
        ProcessSupervisor.signalGroup(pid, SIGKILL)
        var status: Int32 = 0
        var reaped: pid_t = 0
        #expect(await eventually(.seconds(5)) {
            reaped = waitpid(pid, &status, WNOHANG)
            return reaped == pid
        })
        #expect(reaped == pid && status & 0x7f == SIGKILL, "status \(status)")
    }

    /// The same end to end: signals sent right after the start (a cancel, a stop) end each worker, whether they
    /// land before its setsid or after (on an idle machine they landed after, in 20 tries).
    @Test func aSignalSentRightAfterTheStartEndsTheWorker() async throws {
        for _ in 0..<20 {
            let worker = try harness.start(["/bin/sleep", "300"])
            harness.onQueue { $0.signal(worker.handle, SIGTERM) }
            #expect(try await worker.exit(within: .seconds(5)).termination == .signaled(SIGTERM))
        }
    }

    @Test func sigtermEndsAHungWorkersGroup() async throws {
        let worker = try harness.start(["/bin/sh", "-c", "sleep 300 & echo $! > sleep.pid; wait"], cwd: harness.dir)
        let pidFile = harness.dir + "/sleep.pid"
        #expect(await eventually { ((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").hasSuffix("\n") })
        let sleeper = try #require(Int32(String(decoding: try harness.read("sleep.pid"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(harness.onQueue { $0.runningCount } == 1)
        harness.onQueue { $0.signal(worker.handle, SIGTERM) }
        let exit = try await worker.exit()
        #expect(exit.termination == .signaled(SIGTERM))
        #expect(await eventually { isDead(sleeper) })
        #expect(harness.onQueue { $0.runningCount } == 0)
        harness.onQueue { $0.signal(worker.handle, SIGTERM) }  // after the exit: a no-op
    }

    // MARK: Escaped descendants (subreaper)

    @Test func doubleForkedGrandchildIsEndedAfterItsWorkerExits() async throws {
        let worker = try harness.start(
            ["/bin/sh", "-c", Self.leaveOrphan("gc.pid") + "; exit 0"], environment: Self.attempt(1), cwd: harness.dir)
        #expect(try await worker.exit().termination == .exited(0))
        let orphan = try await harness.pid(in: "gc.pid")
        let started = try #require(ProcessSupervisor.startTime(of: orphan.pid) ?? (isGone(orphan) ? 0 : nil))
        defer { if !isGone(orphan) { kill(orphan.pid, SIGKILL) } }
        #expect(started == 0 || started == orphan.startTime)
        #expect(await eventually(.seconds(5)) { isGone(orphan) })  // not even a zombie
    }

    @Test func daemonisedChildIsLeftAloneWhileItsWorkerRuns() async throws {
        let running = try harness.start(
            ["/bin/sh", "-c", Self.leaveOrphan("a.pid") + "; while [ ! -e go ]; do sleep 0.01; done"],
            environment: Self.attempt(10), cwd: harness.dir)
        let kept = try await harness.pid(in: "a.pid")
        defer { if !isGone(kept) { kill(kept.pid, SIGKILL) } }
        #expect(await eventually { parent(of: kept.pid) == getpid() })  // an orphan, ours now
        // Another worker's exit starts a sweep; its own orphan going shows that the sweep ran.
        let other = try harness.start(
            ["/bin/sh", "-c", Self.leaveOrphan("b.pid") + "; exit 0"], environment: Self.attempt(11), cwd: harness.dir)
        #expect(try await other.exit().termination == .exited(0))
        let ended = try await harness.pid(in: "b.pid")
        defer { if !isGone(ended) { kill(ended.pid, SIGKILL) } }
        #expect(await eventually(.seconds(5)) { isGone(ended) })
        #expect(!isGone(kept))

        try harness.write("go", "", mode: 0o644)
        #expect(try await running.exit().termination == .exited(0))
        #expect(await eventually(.seconds(5)) { isGone(kept) })
    }

    @Test func orphanThatExitsByItselfIsReaped() async throws {
        let running = try harness.start(
            ["/bin/sh", "-c", Self.leaveOrphan("z.pid", sleeping: "0.2") + "; while [ ! -e go ]; do sleep 0.01; done"],
            environment: Self.attempt(20), cwd: harness.dir)
        let orphan = try await harness.pid(in: "z.pid")
        defer { if !isGone(orphan) { kill(orphan.pid, SIGKILL) } }
        #expect(await eventually { isDead(orphan.pid) })  // a zombie of ours now
        #expect(try await harness.start(["/bin/true"]).exit().termination == .exited(0))  // any exit sweeps
        #expect(await eventually(.seconds(5)) { isGone(orphan) })
        try harness.write("go", "", mode: 0o644)
        #expect(try await running.exit().termination == .exited(0))
    }

    @Test func endEscapedDescendantsEndsEveryOrphanButNoWorker() async throws {
        let running = try harness.start(
            ["/bin/sh", "-c", Self.leaveOrphan("s.pid") + "; while [ ! -e go ]; do sleep 0.01; done"],
            environment: Self.attempt(30), cwd: harness.dir)
        let orphan = try await harness.pid(in: "s.pid")
        defer { if !isGone(orphan) { kill(orphan.pid, SIGKILL) } }
        #expect(await eventually { parent(of: orphan.pid) == getpid() })
        #expect(harness.onQueue { $0.endEscapedDescendants() } >= 1)
        #expect(isGone(orphan))  // killed and reaped before it returned
        #expect(harness.onQueue { $0.runningCount } == 1)
        try harness.write("go", "", mode: 0o644)
        #expect(try await running.exit().termination == .exited(0))
    }

    /// The tests run several supervisors in one process: one's stop (a dispatcher test's) must leave alone what
    /// another's running worker left, as the sweep after a worker's exit does. It ended it before, now and then
    /// failing `daemonisedChildIsLeftAloneWhileItsWorkerRuns` when a dispatcher test stopped meanwhile.
    @Test func oneSupervisorsStopSparesTheOrphansOfAnothersRunningWorker() async throws {
        let other = Harness()
        let running = try harness.start(
            ["/bin/sh", "-c", Self.leaveOrphan("k.pid") + "; while [ ! -e go ]; do sleep 0.01; done"],
            environment: Self.attempt(40), cwd: harness.dir)
        let kept = try await harness.pid(in: "k.pid")
        defer { if !isGone(kept) { kill(kept.pid, SIGKILL) } }
        #expect(await eventually { parent(of: kept.pid) == getpid() })
        _ = other.onQueue { $0.endEscapedDescendants() }
        #expect(!isGone(kept))
        try harness.write("go", "", mode: 0o644)
        #expect(try await running.exit().termination == .exited(0))
        #expect(await eventually(.seconds(5)) { isGone(kept) })
    }

    /// util-linux `setsid` forks (the worker leads its group), the copy starts a new session, and
    /// its shell leaves `sleep` behind: an orphan outside the worker's session. Waits for the pid file.
    private static func leaveOrphan(_ pidFile: String, sleeping: String = "1000") -> String {
        "setsid sh -c 'sleep \(sleeping) & echo $! > \(pidFile).tmp; mv \(pidFile).tmp \(pidFile)'; "
            + "while [ ! -e \(pidFile) ]; do sleep 0.01; done"
    }

    private static func attempt(_ job: Int) -> [[UInt8]] {
        ["PATH=/usr/bin:/bin", "ORCH_JOB_ID=\(job)", "ORCH_ATTEMPT=1"].map { Array($0.utf8) }
    }

    // MARK: Spawn failures

    /// Started directly or through one helper run, a worker that cannot start throws from `spawn`; through the
    /// long-lived spawner, which answers before the exec, it ends at once (exit 127) with the same error as its
    /// `startFailure`, its failure report kept out of its log. Either way nothing leaks.
    @Test(arguments: ["spawner", "helper", "direct"])
    func aWorkerThatCannotStartSaysWhyAndLeaksNothing(way: String) async throws {
        let harness = Harness(subreaper: true, helper: way != "direct", helperUse: way == "helper" ? .perWorker : .spawner)
        try harness.write("workers/not-executable.sh", "#!/bin/sh\n", mode: 0o644)
        // The spawner's socket and the epoll fd live as long as the supervisor: open them before counting.
        #expect(try await harness.start(["/bin/true"]).exit().termination == .exited(0))
        let before = openFDs()
        let zygotesBefore = harness.onQueue { $0.readyZygotePIDs.count }
        func failure(_ program: [UInt8], cwd: String?) async throws -> SpawnError? {
            let started: Started
            do {
                started = try harness.start([program], cwd: cwd)
            } catch {
                #expect(way != "spawner", "the spawner answers before the exec")
                return error
            }
            #expect(way == "spawner", "\(way) reports a failed exec at once")
            let exit = try await started.exit()
            #expect(exit.termination == .exited(127))
            #expect(exit.stderrTail.isEmpty && exit.outputBytes == 0)
            #expect(!FileManager.default.fileExists(atPath: started.logPath))
            return exit.startFailure
        }
        let cases: [(String, Int32, String)] = [
            ("./workers/x.sh", ENOENT, "cannot run ./workers/x.sh: No such file or directory"),
            ("no-such-command-orchestrator", ENOENT,
             "cannot run no-such-command-orchestrator: No such file or directory"),
            ("./workers/not-executable.sh", EACCES, "cannot run ./workers/not-executable.sh: Permission denied"),
        ]
        for (program, code, text) in cases {
            let error = try await failure(Array(program.utf8), cwd: harness.dir)
            #expect(error?.errno == code)
            #expect(error?.description == text)
        }
        let noDir = try await failure(Array("/bin/true".utf8), cwd: harness.dir + "/missing")
        #expect(noDir?.errno == ENOENT)
        #expect(noDir?.description == "cannot enter working directory \(harness.dir)/missing: No such file or directory")
        let empty = #expect(throws: SpawnError.self) { try harness.start([[UInt8]]()) }
        #expect(empty?.errno == EINVAL)
        let nul = #expect(throws: SpawnError.self) { try harness.start([Array("/bin/echo".utf8), [0x61, 0, 0x62]]) }
        #expect(nul?.errno == EINVAL)
        // A worker that starts and prints the marker itself is not a failed start.
        let mimic = try harness.start(["/bin/sh", "-c", "printf '\\000orch-spawn\\000x\\002\\000\\000\\000' >&2; exit 3"])
        let mimicExit = try await mimic.exit()
        #expect(mimicExit.termination == .exited(3) && mimicExit.startFailure == nil)
        #expect(openFDs().filter { $0.contains(harness.dir) }.isEmpty)
        // Other suites may hold fds briefly; their supervisors' event loops (three fds each, for as long as a
        // supervisor lives) are theirs, not a failed start's.
        let perWorker = { (fds: [String]) in fds.filter { !$0.hasPrefix("anon_inode:[event") && $0 != "anon_inode:[timerfd]" } }
        // Each zygote taken in and not yet used holds four fds (its socket, pidfd and pipes); how many there are
        // depends on the spawner's pace.
        #expect(await eventually {
            perWorker(openFDs()).count - 4 * harness.onQueue { $0.readyZygotePIDs.count }
                <= perWorker(before).count - 4 * zygotesBefore
        })
        #expect(harness.onQueue { $0.runningCount } == 0)
    }
}

// MARK: - Harness

/// A supervisor on its own queue, a scratch directory, and started workers to wait on.
private final class Harness: Sendable {
    let queue = DispatchQueue(label: "ProcessSupervisorTests")
    let supervisor: ProcessSupervisor
    let dir: String
    private let counter = Locked(0)

    /// The daemon's setup by default: orphans ended, workers started through orchestrator-spawn.
    /// `helper` false: `posix_spawn` straight from the test process.
    init(subreaper: Bool = true, helper: Bool = true, helperUse: ProcessSupervisor.HelperUse = .spawner) {
        supervisor = ProcessSupervisor(
            queue: queue, subreaper: subreaper, spawnHelper: helper ? ProcessSupervisor.bundledSpawnHelper : nil,
            helperUse: helperUse)
        var template = Array("/tmp/orch-spawn-test-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func onQueue<T>(_ body: (ProcessSupervisor) -> T) -> T { queue.sync { body(supervisor) } }

    func start(
        _ arguments: [String], environment: [[UInt8]] = [Array("PATH=/usr/bin:/bin".utf8)],
        cwd: String? = nil, logCap: Int = 1 << 20
    ) throws(SpawnError) -> Started {
        try start(arguments.map { Array($0.utf8) }, environment: environment, cwd: cwd, logCap: logCap)
    }

    func start(
        _ arguments: [[UInt8]], environment: [[UInt8]] = [Array("PATH=/usr/bin:/bin".utf8)],
        cwd: String? = nil, logCap: Int = 1 << 20
    ) throws(SpawnError) -> Started {
        let n = counter.update { $0 += 1; return $0 }
        let logPath = "\(dir)/attempt-\(n).log"
        let request = SpawnRequest(
            arguments: arguments, environment: environment, workingDirectory: Array((cwd ?? "").utf8),
            logPath: Array(logPath.utf8), logCap: logCap)
        let exit = Locked<(WorkerExit, Int)?>(nil)
        let supervisor = self.supervisor
        let result: Result<WorkerHandle, SpawnError> = queue.sync {
            // As the dispatcher's cycle does: the start, then the order for the zygote it used.
            defer { supervisor.sendZygoteOrders() }
            return Result { () throws(SpawnError) in
                try supervisor.spawn(request) { value in
                    exit.update { $0 = (value, supervisor.runningCount) }
                }
            }
        }
        return Started(handle: try result.get(), logPath: logPath, exitBox: exit)
    }

    /// A pid the worker wrote to `name` (waiting for the file), with its start time (0 if it is already gone).
    func pid(in name: String) async throws -> Recorded {
        let path = dir + "/" + name
        #expect(await eventually { FileManager.default.fileExists(atPath: path) })
        let pid = try #require(Int32(String(decoding: try read(name), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        return Recorded(pid: pid, startTime: ProcessSupervisor.startTime(of: pid) ?? 0)
    }

    func read(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
    }

    func write(_ name: String, _ text: String, mode: Int) throws {
        let path = dir + "/" + name
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }
}

private struct Started: Sendable {
    let handle: WorkerHandle
    let logPath: String
    let exitBox: Locked<(WorkerExit, Int)?>

    struct Timeout: Error {}

    /// Waits (with a deadline) for `onExit`.
    func exit(within limit: Duration = .seconds(20)) async throws -> WorkerExit {
        guard await eventually(limit, { exitBox.value != nil }), let (exit, _) = exitBox.value else {
            Issue.record("no onExit within \(limit) for pid \(handle.pid)")
            throw Timeout()
        }
        return exit
    }

    /// `runningCount` as seen from inside `onExit`.
    var runningCountInOnExit: Int? { exitBox.value?.1 }

    func log() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: logPath))) }
}

private final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&stored) } }
}

/// Polls `condition` until it holds or `limit` passes.
extension Harness {
    /// Runs one worker, which starts the spawner, then waits until the spawner's first zygotes are ready and taken
    /// in; false if that did not happen in time.
    func startWithFullZygotePool() async throws -> Bool {
        guard try await start(["/bin/true"]).exit().termination == .exited(0) else { return false }
        return await eventually {
            onQueue { supervisor in
                supervisor.takeInAnnouncedZygotes()
                return supervisor.readyZygotePIDs.count == Int(ProcessSupervisor.zygotePool)
            }
        }
    }
}

private func eventually(_ limit: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

struct Recorded {
    let pid: Int32
    let startTime: UInt64
}

/// Reaped: no process with this pid and start time, not even a zombie.
private func isGone(_ process: Recorded) -> Bool {
    process.startTime == 0 || ProcessSupervisor.startTime(of: process.pid) != process.startTime
}

/// Field 4 of /proc/PID/stat.
private func parent(of pid: Int32) -> Int32? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let paren = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: paren)...].split(separator: " ")
    return fields.count > 1 ? Int32(fields[1]) : nil
}

/// Gone, or a zombie (this machine's pid 1 does not reap orphans).
private func isDead(_ pid: Int32) -> Bool {
    if kill(pid, 0) != 0 && errno == ESRCH { return true }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let paren = stat.lastIndex(of: ")")
    else { return true }
    let state = stat[stat.index(after: paren)...].trimmingCharacters(in: .whitespaces).first
    return state == "Z" || state == "X"
}

/// What each open fd of this process points to ("pipe:[123]", "anon_inode:[pidfd]", a path).
private func openFDs() -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return [] }
    return names.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
        .sorted()
}
