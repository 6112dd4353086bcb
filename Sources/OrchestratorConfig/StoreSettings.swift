import OrchestratorPostgres

/// `[store]`: where the ledger is kept. Absent: SQLite in `[paths] state`, the engine of a single daemon.
public struct StoreSettings: Sendable, Hashable {
    /// `postgres://USER@HOST:PORT/DB`: a PostgreSQL database; nil: SQLite in the state folder.
    public var url: String?
    /// Where `url` came from. One given on the command line or in the environment outlives a reload of the file.
    public var origin: Origin

    public enum Origin: Sendable, Hashable {
        case configFile
        /// `--store URL`.
        case commandLine
        /// `$ORCHESTRATOR_STORE`.
        case environment
    }

    public init(url: String? = nil, origin: Origin = .configFile) {
        self.url = url
        self.origin = origin
    }

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
        checkKeys(section, allowed: ["url"])
        guard let url = nonEmptyString(section, "url") else { return .sqlite }
        if let problem = StoreSettings.problem(with: url) {
            report(section.path.key("url"), "[store] url: \(problem)")
            return .sqlite
        }
        return StoreSettings(url: url, origin: .configFile)
    }
}
