import OrchestratorConfig
import OrchestratorPostgresStore
import OrchestratorStore

/// Opens the ledger the config names: PostgreSQL for `[store] url` (or `--store`, `$ORCHESTRATOR_STORE`), else
/// SQLite in the state folder.
public enum StoreFactory {
    static func open(_ config: Config) throws -> any Store {
        if let url = config.store.url { return try PostgresStore(url: url) }
        return try SQLiteStore(directory: config.paths.state)
    }

    /// A PostgreSQL store is one daemon's (or one one-shot run's) at a time, whatever its state folder, until
    /// several daemons can share one through claims under leases; 69 when another holds it. A SQLite store is
    /// already the state folder's, whose lock the caller holds.
    static func holdExclusively(_ store: any Store, _ config: Config) throws(CommandError) {
        guard let postgres = store as? PostgresStore else { return }
        let held: Bool
        do {
            held = try postgres.holdExclusively()
        } catch {
            throw CommandError(.failure, "error: cannot lock \(describe(config)): \(error)")
        }
        guard held else {
            throw CommandError(
                .unavailable, "error: another orchestrator daemon or one-shot run is using \(describe(config)); one at a time per store")
        }
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
            config.store = StoreSettings(url: flag, origin: .commandLine)
        } else if let variable = environment["ORCHESTRATOR_STORE"], !variable.isEmpty {
            if let problem = StoreSettings.problem(with: variable) {
                throw CommandError(.config, "error: ORCHESTRATOR_STORE: \(problem)")
            }
            config.store = StoreSettings(url: variable, origin: .environment)
        }
    }
}
