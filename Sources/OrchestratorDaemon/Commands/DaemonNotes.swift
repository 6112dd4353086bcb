import Foundation
import OrchestratorStore

/// What one daemon noted about itself for `status`: its health, its sweeps' last results, when its config was
/// loaded, why its queue waits, and its breakers. Daemons sharing a store each keep their own; store-wide things
/// (pause requests, the shared folders) are not in here.
struct DaemonNotes {
    var health: HealthSnapshot?
    /// By mode (`ingest`, `prune`, ...), in mode order.
    var sweeps: [(mode: String, result: String, at: UnixTime)] = []
    var configLoadedAt: String?
    var admissionWait: String?
    var breakers: [BreakerRecord] = []

    static let sweepPrefix = "sweep."

    init() {}

    /// Notes and breakers that belong to one daemon (of any daemon's, the caller filters), newest first per key.
    init(notes: [NodeNote], breakers: [BreakerRecord]) {
        var newest: [String: NodeNote] = [:]
        for note in notes where newest[note.key].map({ $0.at < note.at }) ?? true { newest[note.key] = note }
        health = HealthSnapshot.decode(newest[HealthSnapshot.noteKey]?.value)
        configLoadedAt = newest[Dispatcher.configLoadedNote]?.value
        admissionWait = newest[Dispatcher.admissionNote]?.value
        sweeps = newest.values.filter { $0.key.hasPrefix(Self.sweepPrefix) }.sorted { $0.key < $1.key }.map {
            (mode: String($0.key.dropFirst(Self.sweepPrefix.count)), result: $0.value, at: $0.at)
        }
        var seen: Set<String> = []
        self.breakers = breakers.sorted { $0.updatedAt > $1.updatedAt }.filter { seen.insert($0.owner).inserted }
            .sorted { $0.owner < $1.owner }
    }

    /// Each daemon's own, by its name.
    static func byNode(_ notes: [NodeNote], _ breakers: [BreakerRecord]) -> [String: DaemonNotes] {
        let names = Set(notes.map(\.node)).union(breakers.map(\.node))
        return Dictionary(uniqueKeysWithValues: names.map { name in
            (name, DaemonNotes(notes: notes.filter { $0.node == name }, breakers: breakers.filter { $0.node == name }))
        })
    }

    // MARK: status, as text and JSON (the same for the daemon of the state dir and for each daemon of a store)

    func healthLines(now: UnixTime) -> [String] {
        guard let health else { return [] }
        let when = "checked \(Reports.formatSeconds(max(0, now - health.at))) ago by the \(health.by)"
        return ["health:   " + (health.healthy ? "ok (\(when))" : "UNHEALTHY (\(when))")] + health.problems.map { "  \($0)" }
    }

    func sweepLines(now: UnixTime) -> [String] {
        sweeps.map { "sweep:    \(Reports.pad($0.mode, 9)) \(Reports.formatSeconds(max(0, now - $0.at))) ago: \($0.result)" }
    }

    var breakerLines: [String] {
        breakers.filter { $0.state != "closed" }.map { breaker in
            let until = breaker.openUntil.map { " until \(Reports.formatTime($0))" } ?? ""
            return "breaker:  \(breaker.owner) \(breaker.state.replacingOccurrences(of: "_", with: "-"))\(until) after "
                + "\(breaker.consecutiveFailures) failures"
        }
    }

    var healthJSON: Any {
        health.map { snapshot -> [String: Any] in
            [
                "at": Reports.iso(snapshot.at), "by": snapshot.by, "healthy": snapshot.healthy, "problems": snapshot.problems,
                "notes": snapshot.notes,
            ]
        } ?? NSNull()
    }

    var sweepsJSON: [String: Any] {
        Dictionary(uniqueKeysWithValues: sweeps.map { ($0.mode, ["at": Reports.iso($0.at), "result": $0.result] as [String: Any]) })
    }

    var breakersJSON: [[String: Any]] {
        breakers.map { breaker -> [String: Any] in
            var fields: [String: Any] = [
                "owner": breaker.owner, "state": breaker.state, "consecutive_failures": breaker.consecutiveFailures,
            ]
            if let until = breaker.openUntil, breaker.state == "open" { fields["open_until"] = Reports.iso(until) }
            return fields
        }
    }
}
