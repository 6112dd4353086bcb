#if canImport(Glibc)
import Glibc
#endif
import Logging
import OrchestratorConfig

/// Something `watch` runs beside the dispatcher in the same process (the HTTP API). The daemon does not
/// know what it is: `start` is called on the dispatcher's queue once the dispatcher runs and must return at
/// once; `stop` is called after the dispatcher has stopped and returns once the service has ended.
public struct DaemonService: Sendable {
    public let start: @Sendable (DaemonHandle) -> Void
    public let stop: @Sendable () -> Void
    /// Run once the daemon holds its locks, before it opens the store or claims anything: why the service cannot
    /// run (then `watch` exits with it), or nil. A service that fails only once started (`DaemonHandle.fail`) ends
    /// a daemon that may already have started work.
    public let precheck: @Sendable () -> CommandError?

    public init(
        start: @escaping @Sendable (DaemonHandle) -> Void, stop: @escaping @Sendable () -> Void,
        precheck: @escaping @Sendable () -> CommandError? = { nil }
    ) {
        self.start = start
        self.stop = stop
        self.precheck = precheck
    }
}

/// What a service beside the dispatcher may ask of the daemon.
public final class DaemonHandle: Sendable {
    public let logger: Logger
    let configInForce: LockedBox<Config>
    private let dispatcher: Dispatcher
    private let failure: LockedBox<CommandError?>

    init(dispatcher: Dispatcher, config: Config, logger: Logger, failure: LockedBox<CommandError?>) {
        self.dispatcher = dispatcher
        self.configInForce = LockedBox(config)
        self.logger = logger
        self.failure = failure
    }

    /// The config in force: the one `watch` started with, or the last a reload applied.
    public var config: Config { configInForce.value }

    /// Reloads the config as SIGHUP does, on the dispatcher's queue, and answers with the outcome.
    public func reload(_ reply: @escaping @Sendable (ReloadOutcome) -> Void) {
        dispatcher.queue.async { [dispatcher] in
            // A stopping dispatcher may never run another cycle: answer now rather than never.
            guard !dispatcher.phase.isStopping else { return reply(.stopping) }
            dispatcher.post(.reload(reply: reply))
        }
    }

    /// The service cannot run (its port is taken): the daemon stops as on SIGTERM and `watch` exits with
    /// this error.
    public func fail(_ error: CommandError) {
        failure.value = error
        for line in error.lines { logger.critical("\(line)") }
        let why = error.lines.first.map { $0.hasPrefix("error: ") ? String($0.dropFirst(7)) : $0 } ?? "a service failed"
        dispatcher.queue.async { [dispatcher] in dispatcher.post(.serviceFailed(why)) }
    }
}
