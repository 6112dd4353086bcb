#if canImport(Glibc)
import Glibc
#endif
@preconcurrency import Dispatch
import Logging
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform

/// `watch --dry-run`: decides and logs what would happen to each file in Inbox and to each arrival,
/// without claiming, running or moving anything, and without touching the store.
enum DryRun {
    static func watch(config: Config, logger: Logger) -> ExitStatus {
        let queue = DispatchQueue(label: "orchestrator.dry-run")
        let finished = DispatchSemaphore(value: 0)
        let inbox = PathBytes(config.paths.inbox)
        let reporter = DecisionReporter(config: config, logger: logger)
        var sources: [any DispatchSourceSignal] = []
        var watcher: InotifyWatcher?
        queue.sync {
            for number in [SIGTERM, SIGINT] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { finished.signal() }
                source.resume()
                sources.append(source)
            }
            let cursor = DirectoryCursor(root: inbox, recursive: config.inbox.recursive) { config.skipsFolder($0) }
            while case let slice = cursor.next(limit: 512), !slice.isEmpty {
                for file in slice { reporter.decide(file.path) }
            }
            do {
                watcher = try InotifyWatcher(root: inbox, queue: queue) { events in
                    for event in events {
                        switch event {
                        case .renamedIn(let name), .closedAfterWrite(let name): reporter.decide(name)
                        default: break
                        }
                    }
                }
            } catch {
                logger.warning("\(error)")
            }
            logger.info("dry run: watching; nothing will be run or moved", metadata: ["inbox": "\(inbox)"])
        }
        finished.wait()
        queue.sync {
            watcher?.cancel()
            for source in sources { source.cancel() }
        }
        return .ok
    }
}

/// Says what the daemon would do with one file.
struct DecisionReporter: @unchecked Sendable {  // used on one queue
    let config: Config
    let logger: Logger

    func decide(_ name: RelativePath) {
        guard config.isInput(name) else {
            logger.info("would ignore (excluded)", metadata: ["file": "\(name)"])
            return
        }
        guard let handler = config.handler(for: name) else {
            logger.info("would move to Failed: no handler", metadata: ["file": "\(name)"])
            return
        }
        let file = PathBytes(config.paths.processing).appending(name)
        let argv = handler.command.expand(PlaceholderValues(file: file.bytes, name: name, job: 0, attempt: 1))
        logger.info(
            "would run", metadata: [
                "file": "\(name)", "handler": "\(handler.name)",
                "command": "\(argv.map { String(decoding: $0, as: UTF8.self) })",
            ])
    }
}
