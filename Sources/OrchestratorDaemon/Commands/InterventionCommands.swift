#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// `cancel`, `priority` and `handler pause|resume`.
///
/// With a daemon running, a cancel or priority change is a request in the store, announced through the wake
/// folder (as `trigger` and `task run` are); the command waits for the daemon's answer so that its exit code
/// is the truth. Without one, the command takes the state dir's and the Inbox's locks (so no daemon or
/// one-shot run can start meanwhile) and does the whole change itself. A pause is a row in the store that a
/// daemon reads when woken, and at every start.
public enum InterventionCommands {
    /// How long a command waits for a running daemon's answer.
    static let answerTimeout: TimeInterval = 10

    // MARK: cancel

    public static func cancel(
        config: Config, target: String, reason: String?, workingDirectory: String
    ) throws(CommandError) -> String {
        let reasonText = Intervention.cancelReason(reason)
        let (store, found) = try findJob(config, target: target, workingDirectory: workingDirectory)
        if case .refuse(let refusal) = Intervention.cancel(found.state, daemonRuns: true) {
            throw refused(found, refusal, "cancel")
        }
        let asking: Asked
        switch try StateOwner.acquireForOneShot(config, role: "cancel") {
        case .failure(let daemon): asking = .daemon(pid: daemon.pid)
        case .success(let lock):
            guard !TaskCommands.otherDaemonsRun(config, store: store) else {
                asking = .storesDaemons
                break
            }
            // It moves the file itself: from the store's processing area, not another one this config names.
            if config.store.url != nil { try NodeLiveness.requireStoresFolders(store, config) }
            let inboxLocks = try InboxOwner.acquireForOneShot(config, role: "cancel")
            defer { withExtendedLifetime((lock, inboxLocks)) {} }
            return try cancelWithoutDaemon(config, store: store, jobID: found.id, reason: reasonText)
        }
        let answer = try ask(
            config, store: store, kind: Dispatcher.cancelRequest,
            jobID: found.id, target: InterventionRequest.target(jobID: found.id, reasonText), asking: asking)
        if let refusal = InterventionRequest.refusal(answer) { throw refused(found, refusal, "cancel") }
        if answer == InterventionRequest.ending {
            return "job \(found.id) cancelled: its worker group got SIGTERM (SIGKILL after shutdown_grace, \(config.limits.shutdownGrace.configText)); it goes to Failed/ with the reason \"\(Reports.terminalSafe(reasonText))\", unless its worker exits 0 first (its work is then done, and it goes to Done/)"
        }
        return "job \(found.id) cancelled \(Intervention.whenCancelled(attempts: found.attempts)) (\(Reports.terminalSafe(reasonText)))"
    }

    /// The whole cancel, by this command: the job's end is committed before its file leaves the processing
    /// area, so a crash in between leaves a move that the next start finishes.
    private static func cancelWithoutDaemon(_ config: Config, store: any Store, jobID: Int64, reason: String) throws(CommandError) -> String {
        let (job, attempt) = try reading(store) { (try $0.job(id: jobID), try $0.runningAttempt(jobID: jobID)) }
        guard let job else { throw CommandError(.badInput, "error: job \(jobID): \(Intervention.describe(.unknown))").about(.unknown) }
        switch Intervention.cancel(job.state, daemonRuns: false) {
        case .refuse(let refusal): throw refused(job, refusal, "cancel")
        case .endRunningAttempt, .endLeftoverThenFail, .failNow: break
        }
        var ended = ""
        if let pid = attempt?.pid, let start = attempt?.startTime {
            let worker = WorkerHandle(pid: pid, startTime: start)
            if ProcessSupervisor.isAlive(worker) {
                // A worker group left by a daemon that died: ended, as the next start would.
                ProcessSupervisor.killGroup(worker)
                ended = "; the worker group its daemon left running was ended"
            }
        }
        let now = Date().timeIntervalSince1970
        do {
            try store.write { transaction in
                if job.state == .running {
                    try transaction.finishRunningAttempt(jobID: jobID, AttemptResult(outcome: .cancelled, reason: reason), at: now)
                }
                try transaction.setState(jobID: jobID, from: job.state, to: .failed, reason: reason, at: now)
            }
        } catch {
            throw CommandError(.failure, "error: cannot record the cancel: \(error)")
        }
        guard job.kind == .file else { return "job \(jobID) cancelled (\(Reports.terminalSafe(reason)))\(ended)" }
        let processing = PathBytes(config.paths.processing)
        let failed = PathBytes(config.paths.failed)
        let finalName: RelativePath?
        do {
            finalName = try FileMover.move(processing.appending(job.name), into: failed, as: job.name, tag: "\(jobID)")
        } catch {
            throw CommandError(.failure, "error: job \(jobID) is cancelled, but its file could not be moved to Failed/ (\(error)); the next start moves it")
        }
        if let finalName { FileSystem.syncDirectory(failed.appending(RelativePath(finalName.parent))) }
        do {
            try store.write { try $0.setFinalPath(jobID: jobID, finalName ?? RelativePath([])) }
        } catch {
            throw CommandError(.failure, "error: job \(jobID) is cancelled and moved, but its new place could not be recorded: \(error)")
        }
        let place = finalName.map { " -> Failed/\(Reports.printable($0))" } ?? "; its file was gone"
        return "job \(jobID) cancelled (\(Reports.terminalSafe(reason)))\(place)\(ended)"
    }

    // MARK: priority

    public static func setPriority(
        config: Config, target: String, priority: Int, workingDirectory: String
    ) throws(CommandError) -> String {
        let (store, found) = try findJob(config, target: target, workingDirectory: workingDirectory)
        if case .refuse(let refusal) = Intervention.priority(found.state, to: priority) {
            throw refused(found, refusal, "change the priority of")
        }
        let asking: Asked
        switch try StateOwner.acquireForOneShot(config, role: "priority") {
        case .failure(let daemon): asking = .daemon(pid: daemon.pid)
        case .success(let lock):
            defer { withExtendedLifetime(lock) {} }
            guard !TaskCommands.otherDaemonsRun(config, store: store) else {
                asking = .storesDaemons
                break
            }
            let job = try reading(store) { try $0.job(id: found.id) }
            if case .refuse(let refusal) = Intervention.priority(job?.state, to: priority) {
                throw refused(job ?? found, refusal, "change the priority of")
            }
            let now = Date().timeIntervalSince1970
            do {
                try store.write { try $0.setPriority(jobID: found.id, state: job?.state ?? found.state, priority: priority, at: now) }
            } catch {
                throw CommandError(.failure, "error: cannot record the priority: \(error)")
            }
            return "job \(found.id) priority set to \(priority)"
        }
        let answer = try ask(
            config, store: store, kind: Dispatcher.priorityRequest,
            jobID: found.id, target: InterventionRequest.target(jobID: found.id, String(priority)), asking: asking)
        if let refusal = InterventionRequest.refusal(answer) { throw refused(found, refusal, "change the priority of") }
        return "job \(found.id) priority set to \(priority)"
    }

    // MARK: handler pause / resume

    public static func setHandlerPaused(config: Config, handler: String, paused: Bool) throws(CommandError) -> String {
        guard config.handlers.contains(where: { $0.name == handler }) else {
            throw CommandError(.badInput, "error: no handler named \"\(handler)\" in \(config.file)").about(.unknown)
        }
        let store = try Reports.openStore(config)
        let now = Date().timeIntervalSince1970
        do {
            try store.write { try $0.setHandlerPaused(handler, paused, at: now) }
        } catch {
            throw CommandError(.failure, "error: cannot record the change: \(error)")
        }
        TaskCommands.wakeDaemons(config, store: store, reason: paused ? "pause" : "resume")
        return paused
            ? "handler \(handler) paused: its jobs wait (state paused), running ones finish; `orchestrator handler resume \(handler)` lets them run"
            : "handler \(handler) resumed"
    }

    // MARK: helpers

    /// The job a target names (an id, or a path in Inbox, the processing area, Done or Failed); 65 if none.
    private static func findJob(_ config: Config, target: String, workingDirectory: String) throws(CommandError) -> (any Store, JobRecord) {
        try Reports.requireTarget(target)
        guard let store = try Reports.openStoreIfPresent(config) else {
            throw CommandError(.badInput, "error: no job matches \(target): nothing has been recorded yet").about(.unknown)
        }
        let found = try reading(store) { try Reports.findJob($0, config: config, target: target, workingDirectory: workingDirectory) }
        if found?.state.isTerminal ?? true, Reports.waitsInInbox(config, target: target, workingDirectory: workingDirectory) {
            throw CommandError(
                .badInput,
                "error: \(target) waits in Inbox and is not a job yet (files are claimed a queue's worth at a time); "
                    + "remove it from Inbox to keep it from running, or try again once `status` shows it queued"
            ).about(.unknown)
        }
        guard let found else {
            throw CommandError(.badInput, "error: no job matches \(target)\(Reports.notFoundHint(config, target: target, workingDirectory: workingDirectory))")
                .about(.unknown)
        }
        return (store, found)
    }

    /// Records a request, wakes its daemons (`wake`, given the request's id) and waits up to `answerTimeout` for the
    /// answer; nil if none came.
    static func awaitAnswer(
        store: any Store, kind: String, target: String, wake: (Int64) -> Void
    ) throws(CommandError) -> String? {
        let id: Int64
        do {
            id = try store.write { try $0.insertRequest(kind: kind, target: target, at: Date().timeIntervalSince1970) }
        } catch {
            throw CommandError(.failure, "error: cannot record the request: \(error)")
        }
        wake(id)
        let deadline = Date().addingTimeInterval(answerTimeout)
        while Date() < deadline {
            // On a shared store the daemon that takes a request marks it in a commit of its own, before its answer is
            // written: handled without a result yet is still to be answered.
            if let answer = try reading(store, { try $0.requestAnswer(id: id) }), answer.handled, let result = answer.result {
                return result
            }
            usleep(20_000)
        }
        return nil
    }

    private static func reading<T>(_ store: any Store, _ body: (any StoreReader) throws -> T) throws(CommandError) -> T {
        do {
            return try store.read(body)
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.failure, "error: cannot read the state database: \(error)")
        }
    }

    private static func refused(_ job: JobRecord, _ refusal: Intervention.Refusal, _ what: String) -> CommandError {
        let error = CommandError(.badInput, "error: cannot \(what) job \(job.id) (\(Reports.printable(job.name))): \(Intervention.describe(refusal))")
        switch refusal {
        case .unknown: return error.about(.unknown)
        case .finished, .notWaiting, .otherDaemon: return error.about(.conflict)
        case .outOfRange: return error
        }
    }

    /// Who answers a request: the config's own daemon, or (it is not running) the other daemons of its shared store,
    /// among which the job's holder takes it.
    private enum Asked {
        case daemon(pid: Int32)
        case storesDaemons
    }

    /// Why a request on a shared store may go unanswered: the daemon that holds the job has died (its heartbeat
    /// still looks fresh) and the job waits for its lease to run out.
    private static func holderSilence(_ config: Config, store: any Store, jobID: Int64) -> String {
        let stays = "the request stays recorded and is applied when the daemon that holds the job reads it"
        guard let (job, transitions) = try? store.read({ (try $0.job(id: jobID), try $0.transitions(jobID: jobID)) }),
              let job, !job.state.isTerminal
        else { return stays }
        guard let holder = job.owner ?? Dispatcher.registrar(firstTransitionDetail: transitions.first?.detail), let node = try? store.read({ try $0.node(named: holder) }) else { return stays }
        // A claimed job goes back to the store when its lease runs out; one only queued in the holder's memory when the
        // holder is presumed dead.
        let takenBack = job.owner != nil
            ? "at the latest once its lease (\(Reports.formatSeconds(config.store.leaseSeconds))) has run out"
            : "at the latest once it has been silent for \(Reports.formatSeconds(NodeLiveness.silentAfter))"
        return "job \(jobID) is held by the daemon \"\(holder)\" at \(node.instance) (pid \(node.pid)), last heard from "
            + "\(Reports.formatSeconds(max(0, node.heartbeatAge))) ago; if it has died, another daemon takes the job over "
            + "\(takenBack) and applies the request then; \(stays)"
    }

    /// Records a request for the running daemons, wakes them and waits for the answer. On a shared store every
    /// daemon hears of it (the store's wake-up channel) and the one that holds the job answers.
    private static func ask(
        _ config: Config, store: any Store, kind: String, jobID: Int64, target: String, asking: Asked
    ) throws(CommandError) -> String {
        let answer = try awaitAnswer(store: store, kind: kind, target: target) { id in
            TaskCommands.wakeDaemons(config, store: store, reason: "\(kind)-\(id)")
        }
        if let answer { return answer }
        let said = switch asking {
        case .daemon(let pid) where config.store.url == nil:
            "the daemon (pid \(pid)) has not answered within \(Int(answerTimeout)) s; the request stays recorded and is applied when it reads it"
        case .daemon, .storesDaemons:
            "no daemon of the store has answered within \(Int(answerTimeout)) s; " + holderSilence(config, store: store, jobID: jobID)
        }
        throw CommandError(.failure, "error: \(said)")
    }
}
