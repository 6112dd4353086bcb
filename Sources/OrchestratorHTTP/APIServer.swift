import Dispatch
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import OrchestratorConfig
import OrchestratorDaemon
import ServiceLifecycle

/// The HTTP API (`[http]`), served by the daemon beside its dispatcher.
///
/// Built from Hummingbird's router and HTTP/1 server on one NIO event-loop thread, run without
/// `Application`: its date-header cache wakes every second, and an idle daemon must not wake at all
/// (SPEC guarantee 8). Handlers run the command library (blocking file and store work) on their own
/// queue, never on the event loop.
public enum APIServer {
    /// One event-loop thread for every server this process runs, never shut down. Hummingbird's graceful
    /// shutdown finishes on the loop after `run` returns (its quiescing promise, from a task of its own), so a
    /// group shut down when `run` returns sometimes had that last step scheduled on a dead loop (SwiftNIO's
    /// "Cannot schedule tasks on an EventLoop that has already shut down" after "stopped"). An idle loop sleeps
    /// in epoll without a timer: keeping it costs no wake-ups.
    private static let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// `metrics`: renders `GET /metrics` (Prometheus text); nil answers it with 404.
    public static func service(settings: HTTPSettings, metrics: (@Sendable () -> String)? = nil) -> DaemonService {
        let state = ServerState()
        return DaemonService(
            start: { handle in
                state.launch()
                Task { await run(settings: settings, metrics: metrics, handle: handle, state: state) }
            },
            stop: { state.stop() },
            precheck: {
                bindProblem(settings.listen).map { CommandError(.unavailable, "error: http: cannot listen on \(settings.listen): \($0)") }
            })
    }

    /// Why `listen` cannot be bound now (another process holds the port, a port below 1024 for a user without the
    /// right), or nil. Tried once with the options the server binds with, then let go: a port taken only later
    /// still ends the daemon when the server starts (exit 69), after it may have started work.
    static func bindProblem(_ listen: ListenAddress) -> String? {
        guard listen.port != 0 else { return nil }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(listen.host, String(listen.port), &hints, &found)
        guard rc == 0, let first = found else { return rc == 0 ? nil : String(cString: gai_strerror(rc)) }
        defer { freeaddrinfo(found) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }  // Out of descriptors now, say: the server's own bind says what it finds.
        defer { close(fd) }
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return String(cString: strerror(errno)) }
        return nil
    }

    private static func run(settings: HTTPSettings, metrics: (@Sendable () -> String)?, handle: DaemonHandle, state: ServerState) async {
        defer { state.finished.signal() }
        let quiet = {
            var logger = handle.logger
            logger.logLevel = max(logger.logLevel, .warning)
            return logger
        }()
        let group = eventLoops
        let routes = APIRoutes(handle: handle, metrics: metrics)
        let responder = routes.router().buildResponder()
        let token = settings.token
        let listening = LockedFlag()
        // The token of the config in force, read per request: a reload after the token file was rewritten
        // (a rotated or leaked token) applies at once, without a restart that would drop the queue's workers.
        let tokenInForce: @Sendable () -> String? = { handle.config.http?.token }
        do {
            let limit = Self.connectionLimit()
            let roster = ConnectionRoster(limit: limit)
            let server = try HTTPServerBuilder.http1(
                configuration: .init(
                    additionalChannelHandlers: [ConnectionTracker(roster: roster)], idleTimeout: .seconds(Self.idleTimeoutSeconds))
            ).buildServer(
                configuration: ServerConfiguration(
                    address: .hostname(settings.listen.host, port: settings.listen.port),
                    availableConnectionsDelegate: MaximumAvailableConnections(limit, logger: quiet)),
                eventLoopGroup: group, logger: quiet,
                responder: { (request, writer: consuming ResponseWriter, channel) in
                    let context = BasicRequestContext(source: .init(channel: channel, logger: quiet))
                    let response = await APIRoutes.answer(request, context: context, token: tokenInForce(), responder: responder)
                    try await writer.write(response: response.head, body: response.body)
                },
                onServerRunning: { channel in
                    listening.set()
                    let port = channel.localAddress?.port ?? settings.listen.port
                    let address = ListenAddress(host: settings.listen.host, port: port)
                    handle.logger.info("http: listening on http://\(address)", metadata: ["auth": "\(token == nil ? "none (loopback)" : "bearer token")"])
                })
            let services = ServiceGroup(configuration: .init(services: [server], gracefulShutdownSignals: [], logger: quiet))
            if state.begin(services) {
                try await services.run()
            }
        } catch {
            if !listening.isSet {
                handle.fail(CommandError(.unavailable, "error: http: cannot listen on \(settings.listen): \(describe(error))"))
            } else {
                handle.logger.error("http: the server stopped: \(describe(error))")
            }
        }
    }

    /// A connection that sends no whole request for this long is closed: held open (a client gone quiet, or one sending
    /// a byte at a time), it would keep one of the daemon's descriptors, which its workers need, for ever.
    static let idleTimeoutSeconds: Int64 = 60

    /// How many connections are served at once; the others wait in the listen backlog, holding none of the daemon's
    /// descriptors. An eighth of the descriptor limit (at most 64, at least 4): a dashboard and a few monitors fit, and
    /// a flood of connections leaves the workers' pipes and the store room.
    static func connectionLimit(descriptorLimit: UInt64 = currentDescriptorLimit()) -> Int {
        Int(min(64, max(4, descriptorLimit / 8)))
    }

    static func currentDescriptorLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return UInt64(limit.rlim_cur)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }
}

/// The running server's group, so that `stop` (on another thread) can end it.
private final class ServerState: @unchecked Sendable {
    private let lock = NSLock()
    private var group: ServiceGroup?
    private var stopping = false
    private var launched = false
    let finished = DispatchSemaphore(value: 0)

    func launch() { lock.withLock { launched = true } }

    /// False if a stop came first: the group is not run.
    func begin(_ services: ServiceGroup) -> Bool {
        lock.withLock {
            group = services
            return !stopping
        }
    }

    /// Ends the server (requests in flight may finish within a few seconds) and waits for it.
    func stop() {
        let (group, launched) = lock.withLock { () -> (ServiceGroup?, Bool) in
            stopping = true
            return (self.group, self.launched)
        }
        guard launched else { return }
        if let group { Task { await group.triggerGracefulShutdown() } }
        _ = finished.wait(timeout: .now() + 5)
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
