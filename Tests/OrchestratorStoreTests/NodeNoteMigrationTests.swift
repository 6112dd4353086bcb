import Foundation
import GRDB
import OrchestratorPostgres
import Testing

@testable import OrchestratorPostgresStore
@testable import OrchestratorStore

/// A store written before notes and breakers belonged to a daemon: the migration keeps what is the store's and
/// gives SQLite's one daemon what it wrote (PostgreSQL cannot tell whose they were: its daemons write them again).
@Suite struct NodeNoteMigrationTests {
    private static let oldNotes = """
        INSERT INTO daemon_note (key, value, updated_at) VALUES
            ('health', '{"at":5,"by":"daemon","problems":[],"notes":[]}', 5), ('sweep.ingest', '3 files', 6),
            ('admission', 'waiting for memory', 7), ('config.loaded_at', '2026-12-01T00:00:00.000Z', 8),
            ('disk.checked', 'writable', 9), ('shared.folders', 'inbox /srv/in', 10);
        INSERT INTO breaker (owner, state, consecutive_failures, open_until, updated_at) VALUES ('handler h', 'open', 5, 90, 4);
        """

    @Test func sqliteGivesTheNotesAndBreakersOfItsOneDaemonToThatDaemon() throws {
        let directory = NSTemporaryDirectory() + "orch-migration-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            let queue = try DatabaseQueue(path: directory + "/orchestrator.sqlite")
            try SQLiteStore.migrator.migrate(queue, upTo: "v7-nodes")
            try queue.write { db in
                try db.execute(sql: Self.oldNotes)
                try db.execute(sql: """
                    INSERT INTO node VALUES ('web1', 'h:/s', 1, '0.1.0', 'aa', 'worker', 1, 100, NULL);
                    INSERT INTO node VALUES ('renamed', 'h:/s', 1, '0.1.0', 'aa', 'worker', 1, 50, 60);
                    """)
            }
        }
        let store = try SQLiteStore(directory: directory)
        let notes = try store.read { try $0.nodeNotes(prefix: "") }
        #expect(Set(notes.map(\.node)) == ["web1"])
        #expect(notes.map(\.key) == ["admission", "config.loaded_at", "disk.checked", "health", "sweep.ingest"])
        #expect(try store.read { try $0.nodeNote(node: "web1", "sweep.ingest") } == "3 files")
        #expect(try store.read { try $0.daemonNotes(prefix: "") }.map(\.key) == ["shared.folders"])
        #expect(try store.read { try $0.breakers() } == [
            BreakerRecord(node: "web1", owner: "handler h", state: "open", consecutiveFailures: 5, openUntil: 90, updatedAt: 4)
        ])
    }

    @Test(.enabled(if: !(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"] ?? "").isEmpty, "needs scripts/postgres"))
    func postgresKeepsTheStoresNoteAndLetsEachDaemonWriteItsOwnAgain() throws {
        let url = try #require(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"])
        let schema = "orch_migrate_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PostgresConnection(url: url)
        defer { _ = try? admin.execute("DROP SCHEMA \"\(schema)\" CASCADE") }
        try admin.execute("CREATE SCHEMA \"\(schema)\"")
        try admin.execute("SET search_path TO \"\(schema)\"")
        try admin.execute("CREATE TABLE orchestrator_migration (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        let before = PostgresStore.migrations.prefix { $0.name != "v4-node-notes" }
        #expect(before.map(\.name) == ["v1", "v2-leases", "v3-nodes"])
        for migration in before {
            _ = try admin.executeScript(migration.sql)
            try admin.execute("INSERT INTO orchestrator_migration (name) VALUES ($1)", [.text(migration.name)])
        }
        _ = try admin.executeScript(Self.oldNotes)

        let store = try PostgresStore(url: url, schema: schema)
        #expect(try store.read { try $0.nodeNotes(prefix: "") }.isEmpty)
        #expect(try store.read { try $0.daemonNotes(prefix: "") }.map(\.key) == ["shared.folders"])
        #expect(try store.read { try $0.breakers() }.isEmpty)
        try store.write { transaction in
            try transaction.setBreaker(node: "web1", owner: "handler h", state: "open", consecutiveFailures: 1, openUntil: 9, at: 1)
            try transaction.setBreaker(node: "vm2", owner: "handler h", state: "open", consecutiveFailures: 2, openUntil: 9, at: 1)
        }
        #expect(try store.read { try $0.breakers() }.map(\.node) == ["vm2", "web1"])
    }
}
