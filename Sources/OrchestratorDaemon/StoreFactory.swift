#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorPostgresStore
import OrchestratorStore

/// Opens the ledger the config names: PostgreSQL for `[store] url` (or `--store`, `$ORCHESTRATOR_STORE`), else
/// SQLite in the state folder.
public enum StoreFactory {
    static func open(_ config: Config) throws -> any Store {
        if let problem = daemonStoreMismatch(config) { throw DaemonUsesAnotherStore(description: problem) }
        if let url = config.store.url { return try PostgresStore(url: url) }
        return try SQLiteStore(directory: config.paths.state)
    }

    /// A PostgreSQL store is shared by its daemons, which hold its lock shared (`shared`), or one one-shot run's
    /// alone: a one-shot run recovers running jobs as its own. 69 when the other kind holds it. A SQLite store is
    /// already the state folder's, whose lock the caller holds.
    static func hold(_ store: any Store, _ config: Config, shared: Bool) throws(CommandError) {
        guard let postgres = store as? PostgresStore else { return }
        let held: Bool
        do {
            held = try postgres.hold(shared: shared)
        } catch {
            throw CommandError(.failure, "error: cannot lock \(describe(config)): \(error)")
        }
        guard held else {
            throw CommandError(
                .unavailable,
                shared
                    ? "error: a one-shot orchestrator run is using \(describe(config)); daemons start once it is done"
                    : "error: orchestrator daemons or another one-shot run are using \(describe(config)); a one-shot run needs it alone")
        }
    }

    /// Which store the state dir's daemon uses (redacted, as `status` shows it), written by `watch` once it holds
    /// the state dir: a command given no `--store` (or another one) would otherwise read and write another ledger
    /// than the daemon's, e.g. `trigger` record an event in a SQLite file the daemon never reads.
    static func daemonStorePath(_ config: Config) -> String { config.paths.state + "/daemon.store" }

    /// Only while holding the state dir's lock. The old file goes first, so that one this start cannot replace (a
    /// full disk) does not outlive the daemon that wrote it: without the file nothing is checked.
    static func recordDaemonStore(_ config: Config) {
        let path = daemonStorePath(config)
        _ = path.withCString(unlink)
        try? Data((config.store.shown + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Why a command must not open `config`'s store: the state dir's daemon uses another one. Nil when it uses the
    /// same, when no daemon runs (one-shot runs and commands without a daemon use the store they are given), and
    /// inside the daemon itself (its HTTP API).
    static func daemonStoreMismatch(_ config: Config) -> String? {
        guard !StateOwner.thisProcessIsTheDaemon.value, let pid = StateOwner.current(config).daemonPID,
            let text = try? String(contentsOfFile: daemonStorePath(config), encoding: .utf8)
        else { return nil }
        let daemons = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !daemons.isEmpty, StoreSettings.identity(daemons) != StoreSettings.identity(config.store.shown) else { return nil }
        func describe(_ shown: String) -> String { shown == "sqlite" ? "SQLite in the state dir" : shown }
        // SQLite cannot be named by --store: a daemon on it is one started before [store] was added to the file.
        let remedy =
            daemons == "sqlite"
            ? "restart the daemon to move it to that store, or undo the [store] change"
            : "give it the daemon's --store (or $ORCHESTRATOR_STORE, or [store] url)"
        return "the daemon (pid \(pid)) on \(config.paths.state) uses the store \(describe(daemons)), this command "
            + "\(describe(config.store.shown)): \(remedy)"
    }

    struct DaemonUsesAnotherStore: Error, CustomStringConvertible {
        let description: String
    }

    /// Where the ledger is, for messages.
    static func describe(_ config: Config) -> String {
        config.store.url == nil ? "the state database in \(config.paths.state)" : "the store at \(config.store.shown)"
    }

    /// The config with `--store URL` or `$ORCHESTRATOR_STORE` in force instead of `[store]`; a bad URL is a usage
    /// error for the flag and a config error for the variable.
    public static func applyOverride(
        to config: inout Config, flag: String?, environment: [String: String]
    ) throws(CommandError) {
        if let flag {
            if let problem = StoreSettings.problem(with: flag) { throw CommandError(.usage, "error: --store: \(problem)") }
            (config.store.url, config.store.origin) = (flag, .commandLine)
        } else if let variable = environment["ORCHESTRATOR_STORE"], !variable.isEmpty {
            if let problem = StoreSettings.problem(with: variable) {
                throw CommandError(.config, "error: ORCHESTRATOR_STORE: \(problem)")
            }
            (config.store.url, config.store.origin) = (variable, .environment)
        }
        if let problem = config.roleProblem() { throw CommandError(.config, problem.description) }
    }
}
