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
    func claimNodeName(_ node: NodeRegistration, silentAfter: Double) throws -> Bool {
        // The server's clock judges the silence, as it stamps the heartbeats. Of two claims at once, the second waits
        // on the first's row and then sees it committed: alive and another instance, so it updates nothing.
        try connection.execute(
            nodeUpsert(clock: serverClock, placeholders: (1...6).map { "$\($0)" }) + "\n"
                + nodeClaimCondition(clock: serverClock, silentAfter: "$7"),
            Self.registrationValues(node) + [.double(silentAfter)]
        ).affectedRows == 1
    }

    func registerNode(_ node: NodeRegistration) throws {
        try connection.execute(
            nodeUpsert(clock: serverClock, placeholders: (1...6).map { "$\($0)" }), Self.registrationValues(node))
    }

    private static func registrationValues(_ node: NodeRegistration) -> [PostgresValue?] {
        [
            .text(node.name), .text(node.instance), .int(Int64(node.pid)), .text(node.version), .text(node.configHash),
            .text(node.roles.joined(separator: ",")),
        ]
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
