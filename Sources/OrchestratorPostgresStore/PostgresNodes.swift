import OrchestratorPostgres
import OrchestratorStore

/// Daemons in PostgreSQL: the same rows as SQLite's (StoreNodes.swift), times from the server's clock.
extension PostgresReader {
    static let nodeColumns = """
        name, instance, pid, version, config_hash, roles, started_at, heartbeat_at, stopped_at,
        \(serverClock) - heartbeat_at,
        (SELECT count(*) FROM job WHERE job.state = 'running' AND job.owner = node.name)
        """

    func nodes() throws -> [NodeRecord] {
        try connection.execute("SELECT \(Self.nodeColumns) FROM node ORDER BY name").rows.map(Self.node(from:))
    }

    func node(named name: String) throws -> NodeRecord? {
        try connection.execute("SELECT \(Self.nodeColumns) FROM node WHERE name = $1", [.text(name)]).rows.first
            .map(Self.node(from:))
    }

    private static func node(from row: PostgresRow) throws -> NodeRecord {
        NodeRecord(
            registration: NodeRegistration(
                name: try row[0].string() ?? "", instance: try row[1].string() ?? "", pid: Int32(try row[2].int64() ?? 0),
                version: try row[3].string() ?? "", configHash: try row[4].string() ?? "",
                roles: NodeRecord.roles(from: try row[5].string() ?? "")),
            startedAt: try row[6].double() ?? 0,
            heartbeatAt: try row[7].double() ?? 0, stoppedAt: try row[8].double(), heartbeatAge: try row[9].double() ?? 0,
            leasesHeld: Int(try row[10].int64() ?? 0))
    }
}

extension PostgresTransaction {
    func registerNode(_ node: NodeRegistration) throws {
        try connection.execute(
            """
            INSERT INTO node (name, instance, pid, version, config_hash, roles, started_at, heartbeat_at, stopped_at)
            VALUES ($1, $2, $3, $4, $5, $6, \(serverClock), \(serverClock), NULL)
            ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, pid = excluded.pid, version = excluded.version,
                config_hash = excluded.config_hash, roles = excluded.roles,
                    -- The same daemon registering again (a reload) keeps its start.
                    started_at = CASE WHEN node.instance = excluded.instance AND node.pid = excluded.pid AND node.stopped_at IS NULL
                                      THEN node.started_at ELSE excluded.started_at END,
                heartbeat_at = excluded.heartbeat_at, stopped_at = NULL
            """,
            [
                .text(node.name), .text(node.instance), .int(Int64(node.pid)), .text(node.version), .text(node.configHash),
                .text(node.roles.joined(separator: ",")),
            ])
    }

    func heartbeat(node name: String, instance: String) throws -> Bool {
        try connection.execute(
            "UPDATE node SET heartbeat_at = \(serverClock) WHERE name = $1 AND instance = $2 AND stopped_at IS NULL",
            [.text(name), .text(instance)]
        ).affectedRows == 1
    }

    func markNodeStopped(node name: String, instance: String) throws {
        try connection.execute(
            "UPDATE node SET stopped_at = \(serverClock), heartbeat_at = \(serverClock) WHERE name = $1 AND instance = $2",
            [.text(name), .text(instance)])
    }
}
