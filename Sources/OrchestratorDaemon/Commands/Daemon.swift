#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import OrchestratorConfig
import OrchestratorCore
import OrchestratorMetrics
import OrchestratorPlatform
import OrchestratorStore

/// `orchestrator watch`: checks the folders and commands, prepares the folders, takes the state dir's lock
/// and the Inbox's (`InboxOwner`), opens the store and runs the dispatcher until SIGTERM/SIGINT.
public enum Daemon {
    /// `services` run beside the dispatcher (the HTTP API): started once it runs, stopped after it has stopped.
    /// `metrics`: what the dispatcher records into; `metrics.prometheusText()` is what `GET /metrics` serves.
    public static func run(
        config: Config, logFormat: LogFormat, dryRun: Bool, services: [DaemonService] = [],
        metrics: DaemonMetrics = DaemonMetrics()
    ) throws(CommandError) -> ExitStatus {
        blockChildExitSignals()
        let logger = makeLogger(format: logFormat)
        try refuseHostProblems(config, commands: true)
        if !dryRun { try NodeLiveness.refuseOtherFoldersEarly(config) }
        // Taken for good below, once the state lock is held; looked at first so that a refusal makes nothing.
        if !dryRun, let holder = InboxOwner.holderBeforeStart(config, shared: config.store.url != nil) {
            throw CommandError(.unavailable, "error: \(holder.describe(config))")
        }
        try prepareFolders(config)
        if dryRun { return DryRun.watch(config: config, logger: logger) }

        let lock: InstanceLock
        do {
            switch try InstanceLock.acquire(StateOwner.lockPath(config), role: StateOwner.daemonRole) {
            case .acquired(let acquired): lock = acquired
            case .heldBy(let pid):
                let who: String
                if case .oneShot(_, let role) = StateOwner.current(config) {
                    who = "a one-shot orchestrator \(role) (pid \(pid.map(String.init) ?? "?")) is working on"
                } else {
                    who = "another orchestrator\(pid.map { " (pid \($0))" } ?? "") is already watching with"
                }
                throw CommandError(.unavailable, "error: \(who) state \(config.paths.state)")
            }
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.unavailable, "error: \(error)")
        }

        StateOwner.thisProcessIsTheDaemon.value = true
        StoreFactory.recordDaemonStore(config)
        let inboxLocks: [InstanceLock]
        let sharedInbox = config.store.url != nil
        let othersHoldInbox = sharedInbox && InboxOwner.lockPaths(config).contains { InstanceLock.holder($0) != nil }
        switch try InboxOwner.acquire(config, role: StateOwner.daemonRole, shared: sharedInbox) {
        case .success(let locks): inboxLocks = locks
        case .failure(let holder): throw CommandError(.unavailable, "error: \(holder.describe(config))")
        }
        if sharedInbox { try InboxOwner.claimShared(config, othersHoldIt: othersHoldInbox) }
        for service in services { if let problem = service.precheck() { throw problem } }

        let notifier = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
        // A disk too full to open the store on is waited out (guarantee 15), and a stop meanwhile is no failure.
        guard let opened = try StoreOpening.open(config: config, logger: logger, notifier: notifier) else {
            withExtendedLifetime((lock, inboxLocks)) {}
            return .ok
        }
        try StoreFactory.hold(opened.store, config, shared: true)
        try NodeLiveness.checkName(opened.store, config)
        if config.store.url != nil { try NodeLiveness.checkFolders(opened.store, config) }
        // A start that waited for space may have left the marker that stands in for the status board (or a
        // killed one did): the store is open, so it is stale.
        _ = Dispatcher.noSpaceMarkerPath(PathBytes(config.paths.state)).withCString(unlink)

        var signalsBeforeStart: (@Sendable () -> [Int32])?
        if let signals = opened.signals { signalsBeforeStart = { signals.handOver() } }
        if !services.isEmpty { Reports.inProcessStore.value = try? StoreFactory.open(config) }
        let serviceFailure = LockedBox<CommandError?>(nil)
        let (exitCode, _) = try runDispatcher(
            config: config, store: opened.store, logger: logger, notifier: notifier, batch: nil,
            signalsBeforeStart: signalsBeforeStart, waitedForSpace: opened.signals != nil,
            services: services, serviceFailure: serviceFailure, metrics: metrics, locks: [lock] + inboxLocks)
        withExtendedLifetime((lock, inboxLocks)) {}
        if let failure = serviceFailure.value { throw failure }
        return exitCode == 0 ? .ok : .failure
    }

    /// Workers are reaped through their pidfds, so SIGCHLD carries nothing the daemon needs; delivered, it
    /// interrupts whichever thread does not block it (the main thread, waiting for the dispatcher to stop) once
    /// per worker: two context switches per file in a burst. Blocked in this thread before any other thread of
    /// the dispatcher exists, so they all inherit the mask; workers do not (each is spawned with an empty mask
    /// and default dispositions).
    static func blockChildExitSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGCHLD)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Starts a dispatcher on its queue and blocks until it stops: its exit code and, for a one-shot run,
    /// what it did. A failure to start is the command's error.
    /// `signalsBeforeStart`: signals that came before the dispatcher listens (while `watch` waited for space),
    /// handed to it once it has started.
    /// `waitedForSpace`: the open waited for space; the dispatcher fires `error.critical` for it once it runs.
    /// `metrics`: what the dispatcher records into (nil: nothing, as for one-shot runs).
    /// `locks`: the daemon's lock files, kept in place by its watchdog sweep.
    static func runDispatcher(
        config: Config, store: any Store, logger: Logger, notifier: SystemdNotifier, batch: BatchWork?,
        signalsBeforeStart: (@Sendable () -> [Int32])? = nil, waitedForSpace: Bool = false,
        services: [DaemonService] = [], serviceFailure: LockedBox<CommandError?> = LockedBox(nil),
        metrics: DaemonMetrics? = nil, locks: [InstanceLock] = []
    ) throws(CommandError) -> (Int32, BatchReport) {
        blockChildExitSignals()
        let finished = DispatchSemaphore(value: 0)
        let exitCode = LockedBox<Int32>(0)
        let dispatcher = Dispatcher(
            config: config, store: store, logger: logger, notifier: notifier, batch: batch, metrics: metrics
        ) { code in
            exitCode.value = code
            finished.signal()
        }
        let startError = LockedBox<String?>(nil)
        let handle = DaemonHandle(dispatcher: dispatcher, config: config, logger: logger, failure: serviceFailure)
        dispatcher.onConfigApplied = { [handle] fresh in handle.configInForce.value = fresh }
        dispatcher.heldLocks = locks
        dispatcher.queue.async {
            // Taken just before `start` installs the dispatcher's own sources, so no signal is seen twice.
            let early = signalsBeforeStart?() ?? []
            do {
                try dispatcher.start()
                if waitedForSpace { dispatcher.startedAfterWaitingForSpace() }
                for number in early { dispatcher.post(.signal(number)) }
                for service in services { service.start(handle) }
            } catch {
                startError.value = "\(error)"
                dispatcher.stop(exitCode: 1)
            }
        }
        finished.wait()
        for service in services { service.stop() }
        let report = dispatcher.queue.sync { dispatcher.batchReport }
        if let message = startError.value { throw CommandError(.failure, "error: \(message)") }
        return (exitCode.value, report)
    }

    static func makeLogger(format: LogFormat) -> Logger {
        var logger = Logger(label: "orchestrator") { label in LineLogHandler(label: label, format: format) }
        if let level = ProcessInfo.processInfo.environment["ORCH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) {
            logger.logLevel = level
        }
        return logger
    }

    /// Creates missing folders and refuses a processing area on another filesystem than Inbox, where
    /// the claiming rename would not be atomic.
    static func prepareFolders(_ config: Config) throws(CommandError) {
        for path in [config.paths.inbox, config.paths.done, config.paths.failed, config.paths.state,
                     config.paths.processing, config.paths.state + "/logs"]
        {
            do {
                try FileSystem.createDirectories(PathBytes(path))
            } catch {
                throw CommandError(.config, "\(config.file): error: cannot create \(path): \(error)")
            }
        }
        let inbox = FileSystem.status(PathBytes(config.paths.inbox))
        let processing = FileSystem.status(PathBytes(config.paths.processing))
        if let inbox, let processing, inbox.device != processing.device {
            throw CommandError(
                .config,
                "\(config.file):\(config.line(ofKey: "paths.processing")): error: processing area \(config.paths.processing) is not on the same filesystem as Inbox \(config.paths.inbox)")
        }
    }
}

/// A value shared between the dispatcher queue and the main thread.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
