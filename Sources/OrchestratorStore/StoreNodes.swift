import GRDB
import OrchestratorCore

/// A daemon as the store knows it: who it is, what it runs, and when it last said it was alive.
public struct NodeRecord: Sendable, Equatable {
    /// What it recorded at its start (or last reload).
    public var registration: NodeRegistration
    /// The store's clock, Unix seconds.
    public var startedAt: UnixTime
    public var heartbeatAt: UnixTime
    /// Set by a clean stop; nil while it runs or after it died.
    public var stoppedAt: UnixTime?
    /// Seconds since its last heartbeat, by the store's clock (the daemons' own clocks may differ).
    public var heartbeatAge: Double
    /// Running jobs it owns.
    public var leasesHeld: Int

    public init(
        registration: NodeRegistration, startedAt: UnixTime, heartbeatAt: UnixTime, stoppedAt: UnixTime?,
        heartbeatAge: Double, leasesHeld: Int
    ) {
        self.registration = registration
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.stoppedAt = stoppedAt
        self.heartbeatAge = heartbeatAge
        self.leasesHeld = leasesHeld
    }

    public var name: String { registration.name }
    public var instance: String { registration.instance }
    public var pid: Int32 { registration.pid }
    public var version: String { registration.version }
    public var configHash: String { registration.configHash }
    public var roles: [String] { registration.roles }
}

/// What a starting daemon records about itself.
public struct NodeRegistration: Sendable, Equatable {
    /// `[node] name`: the owner of the jobs it claims.
    public var name: String
    /// The host and state folder it runs from: one name's daemon restarting is the same instance, another
    /// daemon taking the name is not.
    public var instance: String
    public var pid: Int32
    public var version: String
    public var configHash: String
    public var roles: [String]

    public init(name: String, instance: String, pid: Int32, version: String, configHash: String, roles: [String]) {
        self.name = name
        self.instance = instance
        self.pid = pid
        self.version = version
        self.configHash = configHash
        self.roles = roles
    }
}

/// A note one daemon keeps about itself for `status` (`StoreTransaction.setNodeNote`).
public struct NodeNote: Sendable, Equatable {
    public var node: String
    public var key: String
    public var value: String
    /// When it was written, by the writer's clock.
    public var at: UnixTime

    public init(node: String, key: String, value: String, at: UnixTime) {
        self.node = node
        self.key = key
        self.value = value
        self.at = at
    }
}

/// The keys of `daemon_note` that describe one daemon, not the store: `v8-node-notes` moves them to `node_note`.
/// Listed here, not derived from the daemon's code, because a migration must never change once released.
let nodeNoteKeysMoved = "key IN ('health', 'admission', 'config.loaded_at', 'disk.checked') OR key LIKE 'sweep.%'"

func registerNodeNoteSchema(_ db: Database) throws {
    try db.execute(sql: """
        -- What each daemon notes about itself for `status` (its health, sweeps, config load, why its queue waits):
        -- daemons sharing a store each keep their own. `daemon_note` keeps what is the store's (its shared folders).
        CREATE TABLE node_note (
            node TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (node, key)
        );
        -- Breakers by the daemon whose failures moved them: one daemon's start clears its own, not another's.
        CREATE TABLE breaker_by_node (
            node TEXT NOT NULL,
            owner TEXT NOT NULL,
            state TEXT NOT NULL,
            consecutive_failures INTEGER NOT NULL,
            open_until REAL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (node, owner)
        );
        """)
    // What a single daemon wrote before belongs to the daemon that last beat (the only one, on SQLite).
    let latest = "COALESCE((SELECT name FROM node ORDER BY heartbeat_at DESC LIMIT 1), '')"
    try db.execute(sql: """
        INSERT INTO node_note (node, key, value, updated_at)
            SELECT \(latest), key, value, updated_at FROM daemon_note WHERE \(nodeNoteKeysMoved);
        DELETE FROM daemon_note WHERE \(nodeNoteKeysMoved);
        INSERT INTO breaker_by_node (node, owner, state, consecutive_failures, open_until, updated_at)
            SELECT \(latest), owner, state, consecutive_failures, open_until, updated_at FROM breaker;
        DROP TABLE breaker;
        ALTER TABLE breaker_by_node RENAME TO breaker;
        """)
}

func registerNodeSchema(_ db: Database) throws {
    try db.execute(sql: """
        CREATE TABLE node (
            name TEXT PRIMARY KEY,
            instance TEXT NOT NULL,
            pid INTEGER NOT NULL,
            version TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            roles TEXT NOT NULL,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            stopped_at REAL
        );
        """)
}

extension NodeRecord {
    init(row: Row) {
        self.init(
            registration: NodeRegistration(
                name: row["name"], instance: row["instance"], pid: row["pid"], version: row["version"],
                configHash: row["config_hash"], roles: NodeRecord.roles(from: row["roles"])),
            startedAt: row["started_at"], heartbeatAt: row["heartbeat_at"], stoppedAt: row["stopped_at"],
            heartbeatAge: row["age"], leasesHeld: row["leases"])
    }

    /// Roles are stored as one comma-separated text: they are only ever shown.
    public static func roles(from text: String) -> [String] { text.split(separator: ",").map(String.init) }
}

let sqliteNodeColumns = """
    node.*, \(sqliteClock) - heartbeat_at AS age,
    (SELECT COUNT(*) FROM job WHERE job.state = 'running' AND job.owner = node.name) AS leases
    """

extension SQLiteReader {
    public func nodes() throws -> [NodeRecord] {
        try Row.fetchAll(db, sql: "SELECT \(sqliteNodeColumns) FROM node ORDER BY name").map(NodeRecord.init(row:))
    }

    public func node(named name: String) throws -> NodeRecord? {
        try Row.fetchOne(db, sql: "SELECT \(sqliteNodeColumns) FROM node WHERE name = ?", arguments: [name])
            .map(NodeRecord.init(row:))
    }
}

/// The upsert both engines' `registerNode` and `claimNodeName` share; `clock` is the engine's SQL for now.
package func nodeUpsert(clock: String, placeholders: [String]) -> String {
    let values = placeholders.joined(separator: ", ")
    return """
        INSERT INTO node (name, instance, pid, version, config_hash, roles, started_at, heartbeat_at, stopped_at)
        VALUES (\(values), \(clock), \(clock), NULL)
        ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, pid = excluded.pid, version = excluded.version,
            config_hash = excluded.config_hash, roles = excluded.roles,
            -- The same daemon registering again (a reload) keeps its start.
            started_at = CASE WHEN node.instance = excluded.instance AND node.pid = excluded.pid AND node.stopped_at IS NULL
                              THEN node.started_at ELSE excluded.started_at END,
            heartbeat_at = excluded.heartbeat_at, stopped_at = NULL
        """
}

/// What lets a claim take a name someone holds: the holder stopped, fell silent, or is the claimant itself.
package func nodeClaimCondition(clock: String, silentAfter: String) -> String {
    "WHERE node.instance = excluded.instance OR node.stopped_at IS NOT NULL OR \(clock) - node.heartbeat_at > \(silentAfter)"
}

extension SQLiteTransaction {
    public func claimNodeName(_ node: NodeRegistration, silentAfter: Double) throws -> Bool {
        try db.execute(
            sql: nodeUpsert(clock: sqliteClock, placeholders: Array(repeating: "?", count: 6)) + "\n"
                + nodeClaimCondition(clock: sqliteClock, silentAfter: "?"),
            arguments: [
                node.name, node.instance, node.pid, node.version, node.configHash, node.roles.joined(separator: ","), silentAfter,
            ])
        return db.changesCount == 1
    }

    public func registerNode(_ node: NodeRegistration) throws {
        try db.execute(
            sql: nodeUpsert(clock: sqliteClock, placeholders: Array(repeating: "?", count: 6)),
            arguments: [node.name, node.instance, node.pid, node.version, node.configHash, node.roles.joined(separator: ",")])
    }

    public func heartbeat(node name: String, instance: String) throws -> Bool {
        try db.execute(
            sql: "UPDATE node SET heartbeat_at = \(sqliteClock) WHERE name = ? AND instance = ? AND stopped_at IS NULL",
            arguments: [name, instance])
        return db.changesCount == 1
    }

    public func markNodeStopped(node name: String, instance: String) throws {
        try db.execute(
            sql: "UPDATE node SET stopped_at = \(sqliteClock), heartbeat_at = \(sqliteClock) WHERE name = ? AND instance = ?",
            arguments: [name, instance])
    }
}
