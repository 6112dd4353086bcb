import OrchestratorPostgres

/// `[store]`: where the ledger is kept. Absent: SQLite in `[paths] state`, the engine of a single daemon.
public struct StoreSettings: Sendable, Hashable {
    /// `postgres://USER@HOST:PORT/DB`: a PostgreSQL database; nil: SQLite in the state folder.
    public var url: String?
    /// Where `url` came from. One given on the command line or in the environment outlives a reload of the file.
    public var origin: Origin
    /// `[store] lease`: how long a claim holds without renewal. A daemon renews its claims every third of it; past
    /// it, another daemon may take the job back. Longer tolerates longer stalls (a paused VM, a slow server), shorter
    /// brings a dead daemon's work back sooner. Independent of a task's `timeout`.
    public var lease: Duration = .seconds(30)

    public enum Origin: Sendable, Hashable {
        case configFile
        /// `--store URL`.
        case commandLine
        /// `$ORCHESTRATOR_STORE`.
        case environment
    }

    public init(url: String? = nil, origin: Origin = .configFile, lease: Duration = .seconds(30)) {
        self.url = url
        self.origin = origin
        self.lease = lease
    }

    /// The lease in seconds, as the store takes it.
    public var leaseSeconds: Double { Double(lease.wholeMilliseconds) / 1000 }

    public static let sqlite = StoreSettings()

    /// Why `text` is not a store URL, or nil when it is one.
    public static func problem(with text: String) -> String? {
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else {
            return "\"\(PostgresURL.masked(text))\" is not a store URL: expected postgres://USER@HOST:PORT/DATABASE"
        }
        do {
            _ = try PostgresURL(text)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Which ledger a `shown` store is, whoever logs in to it and how: the server and database of a PostgreSQL URL
    /// (libpq's defaults filled in), `sqlite` for SQLite. A monitoring role reads the daemon's store under another
    /// user name.
    public static func identity(_ shown: String) -> String {
        guard shown != "sqlite", let url = try? PostgresURL(shown) else { return shown }
        return "postgres \(url.host ?? "") \(url.port ?? 5432) \(url.database ?? url.user ?? "")"
    }

    /// The URL with any password replaced, for logs and `status`.
    public var shown: String {
        guard let url else { return "sqlite" }
        return (try? PostgresURL(url).redacted) ?? "postgres://…"
    }
}

extension ConfigValidator {
    mutating func readStore(_ root: [String: TOMLNode]) -> StoreSettings {
        guard root["store"] != nil else { return .sqlite }
        let section = section("store", in: root)
        checkKeys(section, allowed: ["url", "lease"])
        var settings = StoreSettings.sqlite
        if let lease = duration(section, "lease") {
            // Renewed every third of it: below a second, a busy host would lose claims it still works on.
            if lease < .seconds(1) || lease > .seconds(3600) {
                report(section.path.key("lease"), "[store] lease: \(lease.configText) is outside 1s...1h")
            } else {
                settings.lease = lease
            }
        }
        guard let url = nonEmptyString(section, "url") else { return settings }
        if let problem = StoreSettings.problem(with: url) {
            report(section.path.key("url"), "[store] url: \(problem)")
            return settings
        }
        settings.url = url
        return settings
    }
}
