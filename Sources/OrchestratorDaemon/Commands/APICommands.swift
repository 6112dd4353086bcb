import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// What the HTTP API needs beyond the commands it shares with the CLI: the job list, events with a body,
/// and the JSON it answers with. Like the CLI, it works on the store and wakes the daemon through the wake
/// folder, so every change reaches the dispatcher as an event on its queue.
public enum APICommands {
    /// `{"jobs": [...], "next": CURSOR or null}`, newest first. `cursor` encodes the id a next page starts
    /// below.
    public static func jobs(config: Config, filter: JobFilter, limit: Int, cursor: (Int64) -> String) throws(CommandError) -> String {
        var rows: [JobRecord] = []
        var durations: [Int64: Double] = [:]
        do {
            try Reports.openStoreIfPresent(config)?.read { reader in
                rows = try reader.jobs(filter, limit: limit + 1)
                durations = try reader.lastRunDurations(jobIDs: rows.prefix(limit).map(\.id))
            }
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.failure, "error: cannot read the state database: \(error)")
        }
        let page = rows.prefix(limit)
        let next: Any = rows.count > limit ? cursor(page.last!.id) : NSNull()
        let jobs = page.map { job in
            var fields = Reports.jobFields(job)
            fields["duration_seconds"] = durations[job.id] as Any? ?? NSNull()
            if let location = Reports.location(of: job, config: config) { fields["location"] = location }
            if let notBefore = job.notBefore, job.state == .retryWait { fields["not_before"] = Reports.iso(notBefore) }
            return fields
        }
        return try Reports.render(["jobs": jobs, "next": next] as [String: Any])
    }

    /// Refuses (404) an id that names no job. The commands also take paths and fall back to them; an API id
    /// must never find a file that happens to be named like a number.
    public static func requireJob(config: Config, id: Int64) throws(CommandError) {
        let exists: Bool
        do {
            exists = try Reports.openStoreIfPresent(config)?.read { try $0.job(id: id) } != nil
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.failure, "error: cannot read the state database: \(error)")
        }
        if !exists {
            throw CommandError(
                .badInput, "error: no job \(id) (finished jobs older than [retention] jobs = \(config.retention.jobs.configText) are pruned)"
            ).about(.unknown)
        }
    }


    /// Records the event (with its body, if any) durably, then wakes the daemon; its id.
    public static func fireEvent(config: Config, name: String, body: [UInt8]?) throws(CommandError) -> Int64 {
        guard TaskCommands.isValidEventName(name) else { throw TaskCommands.invalidEventName(name) }
        let state = PathBytes(config.paths.state)
        var staged: PathBytes?
        if let body, !body.isEmpty {
            do {
                staged = try EventBodies.stage(state: state, body)
            } catch {
                throw CommandError(.failure, "error: cannot store the event's body: \(error)")
            }
        }
        let store = try Reports.openStore(config)
        let id: Int64
        var published: PathBytes?
        do {
            id = try store.write { transaction in
                let id = try transaction.insertEvent(name: name, source: "api", at: Date().timeIntervalSince1970)
                if let staged {
                    try transaction.setEventBodyPath(id: id, EventBodies.path(state: state, event: id).bytes)
                    try EventBodies.publish(staged, state: state, event: id)
                    published = EventBodies.path(state: state, event: id)
                }
                return id
            }
        } catch {
            // Published under an id the failed commit gives back, the body would be the next event's: gone.
            for path in [staged, published].compactMap({ $0 }) { _ = path.withCString(unlink) }
            throw CommandError(.failure, "error: cannot record the event: \(error)")
        }
        TaskCommands.wakeDaemon(config, reason: "event-\(id)")
        return id
    }

    public static func render(_ object: [String: Any]) throws(CommandError) -> String { try Reports.render(object) }
}
