#if canImport(Glibc)
import Glibc
#endif
@preconcurrency import Dispatch
import Foundation
import Logging
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// Opens the store for `watch`, waiting while the state dir's disk is too full for SQLite to open it
/// (guarantee 15 at start; the schedule is `StoreOpenWait`). While it waits, `status` says paused, systemd is
/// told so without READY=1, and SIGTERM/SIGINT end the wait with exit 0.
enum StoreOpening {
    struct Opened {
        let store: any Store
        /// Set when the open had to wait: its signal sources, to hand over once the dispatcher listens.
        let signals: StartSignals?
    }

    /// The open store, or nil when a stop signal came while waiting for space. Any other failure to open is
    /// the command's error (exit 1).
    static func open(config: Config, logger: Logger, notifier: SystemdNotifier) throws(CommandError) -> Opened? {
        let state = config.paths.state
        let boardPath = Dispatcher.statusBoardPath(PathBytes(state))
        let markerPath = Dispatcher.noSpaceMarkerPath(PathBytes(state))
        var wait = StoreOpenWait(pingInterval: notifier.watchdogInterval, now: monotonicNow())
        var signals: StartSignals?
        var board: StatusBoard?
        var waitedFor: StoreFailure?
        while true {
            let failure: any Error
            do {
                let store = try StoreFactory.open(config)
                // A server that takes no writes (a standby, a database set read-only) is waited for like one away,
                // here rather than at the node name's claim, which exits: on PostgreSQL the first write registers
                // this writer's row (`commit_mark`), and that is refused there.
                if config.store.url != nil { try store.write { _ in } }
                if signals != nil {
                    board?.post("")
                    _ = markerPath.withCString(unlink)
                    // A last ping: the dispatcher's start (recovery) runs before its own pings begin.
                    if wait.pingInterval != nil { notifier.notify("WATCHDOG=1") }
                    let back = waitedFor == .unreachable ? "the store's server is back" : "space is back"
                    notifier.notify("STATUS=\(back); starting")
                    logger.info("\(back); resuming", metadata: ["path": "\(state)"])
                }
                return Opened(store: store, signals: signals)
            } catch {
                failure = error
            }
            let kind = StoreFailure.classify(failure)
            waitedFor = kind
            guard StoreOpenWait.waits(for: kind) else {
                throw CommandError(.failure, "error: cannot open \(StoreFactory.describe(config)): \(failure)")
            }
            let delay = wait.failed(at: monotonicNow())
            let retryIn = "\(delay.components.seconds)s"
            let listening: StartSignals
            if let signals {
                listening = signals
                logger.debug(kind == .unreachable ? "still unreachable" : "still no space", metadata: ["path": "\(state)", "retry_in": "\(retryIn)"])
            } else {
                listening = StartSignals()
                signals = listening
                let text: String
                if kind == .unreachable {
                    logger.error(
                        "cannot reach \(StoreFactory.describe(config)); waiting for it, not exiting",
                        metadata: ["error": "\(failure)", "retry_in": "\(retryIn)"])
                    text = "paused: the store's server cannot be reached"
                } else {
                    let freeBytes = FileSystem.space(PathBytes(state))?.free
                    let pausing = PauseReason.writeFailed(on: state, freeBytes: freeBytes)
                    let free = StoreOpenWait.describe(freeBytes: freeBytes)
                    logger.error(
                        pausing.forSpace
                            ? "cannot open the state database in \(state): no space (\(free) on its filesystem); waiting for space, not exiting"
                            : "cannot open the state database in \(state) (\(free) on its filesystem); waiting for it to be writable, not exiting",
                        metadata: ["error": "\(failure)", "retry_in": "\(retryIn)"])
                    text = "paused: \(pausing.text)"
                }
                // The board's block was allocated by an earlier start, or cannot be had now (a first start on a
                // full disk): then an empty marker file, which needs no data block, says it instead.
                board = StatusBoard(path: boardPath)
                if board?.post(text) != true {
                    let fd = markerPath.withCString { Glibc.open($0, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644) }
                    if fd >= 0 { close(fd) }
                }
                notifier.notify("STATUS=\(text)")
            }
            // Not READY=1 before the store is open; without it systemd counts TimeoutStartSec, so each retry
            // pushes that back.
            notifier.notify("EXTEND_TIMEOUT_USEC=\(microseconds(wait.extendTimeout(at: monotonicNow())))")
            while true {
                if let number = listening.stopSignal(waitingUntil: wait.nextWake) {
                    logger.info(
                        kind == .unreachable ? "stopped while waiting for the store's server" : "stopped while waiting for space",
                        metadata: ["signal": "\(Dispatcher.signalName(number))"])
                    notifier.notify("STOPPING=1")
                    board?.post("")
                    _ = markerPath.withCString(unlink)
                    return nil
                }
                let due = wait.woke(at: monotonicNow())
                // systemd arms the watchdog when READY=1 arrives (at once for a unit that is not Type=notify), and
                // any ping arms it early: either way the pings go on while waiting.
                if due.ping { notifier.notify("WATCHDOG=1") }
                if due.attempt { break }
            }
        }
    }

    static func monotonicNow() -> Duration { .nanoseconds(Int64(DispatchTime.now().uptimeNanoseconds)) }

    static func microseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    }
}

/// SIGTERM, SIGINT and SIGHUP while `watch` waits for space to open its store: a stop ends the wait; whatever
/// was not acted on (a reload, a stop just after the store opened) is handed to the dispatcher once it listens.
final class StartSignals: @unchecked Sendable {  // `received` under `lock`; the rest immutable
    private let queue = DispatchQueue(label: "orchestrator.start-signals")
    private let wake = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var received: [Int32] = []
    private var sources: [any DispatchSourceSignal] = []

    init() {
        // One already pending (blocked by whoever started the daemon) would be discarded by ignoring it below.
        var pending = sigset_t()
        sigemptyset(&pending)
        sigpending(&pending)
        received = [SIGTERM, SIGINT, SIGHUP].filter { sigismember(&pending, $0) == 1 }
        for number in [SIGTERM, SIGINT, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            // Held until `handOver` cancels the source (a stop that ends the wait ends the process).
            source.setEventHandler { self.record(number) }
            source.resume()
            sources.append(source)
        }
    }

    /// Sleeps until `deadline` (on `StoreOpening.monotonicNow`'s clock) or a signal; the stop signal if one came.
    func stopSignal(waitingUntil deadline: Duration) -> Int32? {
        if let stop = firstStop { return stop }
        let nanoseconds = max(0, deadline.components.seconds * 1_000_000_000 + deadline.components.attoseconds / 1_000_000_000)
        _ = wake.wait(timeout: DispatchTime(uptimeNanoseconds: UInt64(nanoseconds)))
        return firstStop
    }

    private func record(_ number: Int32) {
        lock.withLock { received.append(number) }
        wake.signal()
    }

    private var firstStop: Int32? { lock.withLock { received.first { $0 != SIGHUP } } }

    /// Stops listening; the signals to hand to the dispatcher (one reload however many came). Called on the
    /// dispatcher's queue just before it installs its own sources.
    func handOver() -> [Int32] {
        for source in sources { source.cancel() }
        let all = lock.withLock { received }
        var handed: [Int32] = []
        for number in all where !handed.contains(number) { handed.append(number) }
        return handed
    }
}
