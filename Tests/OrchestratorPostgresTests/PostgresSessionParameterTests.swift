import OrchestratorPostgres
import Testing

/// A half-open TCP connection (a server host powered off, a partition) must not hold a statement for the kernel's
/// minutes of retransmissions: every connection goes out with keepalives and a TCP user timeout, unless the URL sets
/// its own. No server is needed.
struct PostgresSessionParameterTests {
    private func parameters(_ text: String) throws -> [String: String] {
        let pairs = try PostgresURL(text).sessionParameters
        #expect(Set(pairs.map(\.keyword)).count == pairs.count, "each keyword once: \(pairs)")
        return Dictionary(pairs.map { ($0.keyword, $0.value) }) { first, _ in first }
    }

    @Test func aURLWithoutSettingsGetsKeepalivesThatNoticeADeadPeerWithin30Seconds() throws {
        let given = try parameters("postgres://orch@db.example:5432/jobs")
        #expect(given["keepalives"] == "1")
        let idle = try #require(given["keepalives_idle"].flatMap(Int.init))
        let interval = try #require(given["keepalives_interval"].flatMap(Int.init))
        let count = try #require(given["keepalives_count"].flatMap(Int.init))
        #expect(idle + interval * count <= 30, "silence noticed after \(idle + interval * count) s")
        // libpq 12 and later know tcp_user_timeout (Debian 12 ships 15); it bounds unacknowledged sends.
        #expect(given["tcp_user_timeout"] == "30000")
        #expect(given["connect_timeout"] == "10")
        #expect(given["fallback_application_name"] == "orchestrator")
        #expect(given["host"] == "db.example" && given["user"] == "orch" && given["dbname"] == "jobs")
    }

    @Test func whatTheURLSetsIsKept() throws {
        let given = try parameters(
            "postgres://h/d?keepalives_idle=120&keepalives_interval=30&keepalives_count=9&tcp_user_timeout=0&connect_timeout=3"
                + "&keepalives=0")
        #expect(given["keepalives"] == "0")
        #expect(given["keepalives_idle"] == "120" && given["keepalives_interval"] == "30" && given["keepalives_count"] == "9")
        #expect(given["tcp_user_timeout"] == "0" && given["connect_timeout"] == "3")
    }

    /// A database's or role's statement_timeout must not cancel a daemon's writes (a cancelled write stops it), nor
    /// its first statement: the timeouts are off from the session's start, and what the URL's own `options` say wins.
    @Test func sessionTimeoutsAreOffFromTheStartUnlessTheURLSaysOtherwise() throws {
        let plain = try parameters("postgres://orch@h/d")
        #expect(plain["options"] == "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0")
        let own = try parameters("postgres://orch@h/d?options=-csearch_path%3Dq%20-cstatement_timeout%3D5min")
        #expect(own["options"] == "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -csearch_path=q -cstatement_timeout=5min")
    }

    @Test func theURLsOwnPartsComeFirstInTheirOrder() throws {
        let url = try PostgresURL("postgres://alice:pw@h:1/d?sslmode=require")
        #expect(Array(url.sessionParameters.prefix(url.connectionParameters.count)).map { "\($0.keyword)=\($0.value)" }
            == url.connectionParameters.map { "\($0.keyword)=\($0.value)" })
    }
}
