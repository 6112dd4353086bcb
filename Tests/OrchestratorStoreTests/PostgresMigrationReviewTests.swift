import Foundation
import OrchestratorPostgres
import OrchestratorPostgresStore
import Testing

/// Migrating into a database another application already uses: the orchestrator's tables have common names.
@Suite(.enabled(if: !(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"] ?? "").isEmpty, "needs scripts/postgres"))
struct PostgresMigrationReviewTests {
    @Test func aTableOfTheSameNameIsAClearErrorAndLeavesNothingBehind() throws {
        let url = try #require(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"])
        let schema = "orch_taken_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PostgresConnection(url: url)
        defer { _ = try? admin.execute("DROP SCHEMA \"\(schema)\" CASCADE") }
        try admin.execute("CREATE SCHEMA \"\(schema)\"")
        try admin.execute("CREATE TABLE \"\(schema)\".event (id serial PRIMARY KEY, title text)")
        #expect {
            try PostgresStore(url: url, schema: schema)
        } throws: { error in
            let text = "\(error)"
            return text.contains("relation \"event\" already exists") && text.contains("a database of its own")
                && text.contains("search_path")
        }
        let left = try admin.execute(
            "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = $1",
            [.text(schema)]
        ).scalar?.string()
        #expect(left == "event", "only the other application's table is there")
    }
}
