import OrchestratorPostgres
import Testing

/// Store URLs come from config files and the command line, so every mistake must name the part that is wrong.
/// No server is needed.
struct PostgresURLTests {
    @Test func aFullURLIsTakenApartWithPercentEncodingDecoded() throws {
        let url = try PostgresURL("postgres://alice:s%40cr%3Aet@db.example:6543/job%20store?sslmode=require&connect_timeout=5")
        #expect(url.user == "alice")
        #expect(url.password == "s@cr:et")
        #expect(url.host == "db.example")
        #expect(url.port == 6543)
        #expect(url.database == "job store")
        #expect(url.parameters == ["sslmode": "require", "connect_timeout": "5"])
        #expect(url.connectionParameters.map { "\($0.keyword)=\($0.value)" } == [
            "host=db.example", "port=6543", "user=alice", "password=s@cr:et", "dbname=job store", "connect_timeout=5",
            "sslmode=require",
        ])
    }

    @Test func bothSchemesAndEveryPartAreOptional() throws {
        let url = try PostgresURL("postgresql://")
        #expect(url == (try PostgresURL("postgres://")))
        #expect(url.connectionParameters.isEmpty)
        let short = try PostgresURL("postgresql://db.example/jobs")
        #expect(short.host == "db.example" && short.port == nil && short.user == nil && short.database == "jobs")
    }

    @Test func aUnixSocketDirectoryComesFromTheQueryOrAnEncodedHost() throws {
        let query = try PostgresURL("postgres://orch@/jobs?host=/var/run/postgresql&port=5433")
        #expect(query.host == "/var/run/postgresql")
        #expect(query.port == 5433)
        #expect(query.user == "orch")
        let encoded = try PostgresURL("postgres://%2Ftmp%2Fpg/jobs")
        #expect(encoded.host == "/tmp/pg")
        #expect(encoded.redacted == "postgres:///jobs?host=/tmp/pg")
    }

    @Test func anIPv6HostIsInBrackets() throws {
        let url = try PostgresURL("postgres://u@[::1]:5433/d")
        #expect(url.host == "::1")
        #expect(url.port == 5433)
        #expect(url.redacted == "postgres://u@[::1]:5433/d")
    }

    @Test func theRedactedFormHidesThePassword() throws {
        let url = try PostgresURL("postgres://alice:hunter2@h:1/d?application_name=x")
        #expect(url.redacted == "postgres://alice:***@h:1/d?application_name=x")
        #expect(!url.redacted.contains("hunter2"))
    }

    @Test(arguments: [
        ("mysql://h/d", "must start with postgres:// or postgresql://"),
        ("h:5432/d", "must start with postgres:// or postgresql://"),
        ("postgres://h:abc/d", "the port \"abc\" is not a number from 1 to 65535"),
        ("postgres://h:70000/d", "the port \"70000\" is not a number from 1 to 65535"),
        ("postgres://h:/d", "the port \"\" is not a number from 1 to 65535"),
        ("postgres://h/d?port=0", "the port \"0\" is not a number from 1 to 65535"),
        ("postgres://u:p%zz@h/d", "the password has an invalid percent-encoding \"%zz\""),
        ("postgres://h/d%4", "the database name has an invalid percent-encoding \"%4\""),
        ("postgres://h/d%00", "the database name contains a NUL byte"),
        ("postgres://h/d?sslmod=require", "unknown connection parameter \"sslmod\""),
        // libpq said these only as it connected: the daemon retried a store it could never reach.
        ("postgres://h/d?sslmode=bogus", "sslmode=bogus is not a value libpq takes (one of: disable, allow, prefer"),
        ("postgres://h/d?connect_timeout=abc", "connect_timeout=abc is not a whole number"),
        ("postgres://h/d?keepalives_idle=-1", "keepalives_idle=-1 is not a whole number"),
        ("postgres://h/d?sslmode", "the query parameter \"sslmode\" has no value"),
        ("postgres://a:1,b:2/d", "several hosts"),
        ("postgres://[::1/d", "has no closing ]"),
        ("postgres://h/d ", "a space or a control character"),
        ("postgres://h/d#x", "fragment"),
    ])
    func aBadURLSaysWhatIsWrong(url: String, message: String) {
        #expect {
            try PostgresURL(url)
        } throws: { error in
            (error as? PostgresURLError)?.message.contains(message) == true
        }
    }

    /// A password with a raw / or ? (or & in a query value) splits the URL in the wrong places; the message must
    /// say so without quoting the pieces, which are pieces of the password.
    @Test(arguments: [
        "postgres://alice:hun/ter2@h:1/d",
        "postgres://alice:hun?ter2@h:1/d",
        "postgres://alice:hu,n/ter2@h:1/d",
        "postgres://h:1/d?password=hun&ter2",
        "postgres://h:1/d?sslpassword=hun&ter2&sslmode=require",
    ])
    func aMalformedPasswordIsNeverQuotedInTheError(url: String) {
        #expect {
            try PostgresURL(url)
        } throws: { error in
            guard let message = (error as? PostgresURLError)?.message else { return false }
            return !message.contains("hun") && !message.contains("ter2")
        }
    }

    @Test func anAtInAQueryValueOrAnEncodedPasswordIsStillAccepted() throws {
        #expect(try PostgresURL("postgres://h/d?application_name=me@host").parameters["application_name"] == "me@host")
        #expect(try PostgresURL("postgres://u:hun%2Fter2@h/d").password == "hun/ter2")
    }

    @Test func theSSLKeyPasswordIsRedactedToo() throws {
        let url = try PostgresURL("postgres://alice@h:1/d?sslpassword=hunter2&sslmode=require")
        #expect(url.redacted == "postgres://alice@h:1/d?sslmode=require&sslpassword=***")
    }

    @Test func textThatIsNotAURLIsMaskedBeforeItIsQuoted() {
        #expect(PostgresURL.masked("Postgres://alice:hunter2@h/d") == "Postgres://alice:***@h/d")
        #expect(PostgresURL.masked("alice:hunter2@h:5432/d") == "alice:***@h:5432/d")
        #expect(PostgresURL.masked("mysql://root@localhost/db") == "mysql://root@localhost/db")
        #expect(PostgresURL.masked("mysql://localhost:3306/db") == "mysql://localhost:3306/db")
    }

    @Test func aServerThatIsNotThereIsAConnectionError() {
        // Port 1 on loopback: nothing listens there, so the connect is refused at once.
        #expect {
            try PostgresConnection(url: "postgres://nobody:secret@127.0.0.1:1/none")
        } throws: { error in
            guard let error = error as? PostgresError else { return false }
            return error.kind == .connection && error.message.contains("postgres://nobody:***@127.0.0.1:1/none")
                && !error.message.contains("secret")
        }
    }

    @Test func sqlStatesAreClassifiedByWhatTheCallerShouldDo() {
        #expect(PostgresError.kind(sqlState: "23505", connectionBroken: false) == .constraint)
        #expect(PostgresError.kind(sqlState: "23503", connectionBroken: false) == .constraint)
        #expect(PostgresError.kind(sqlState: "40001", connectionBroken: false) == .serialization)
        #expect(PostgresError.kind(sqlState: "40P01", connectionBroken: false) == .serialization)
        #expect(PostgresError.kind(sqlState: "08006", connectionBroken: false) == .connection)
        #expect(PostgresError.kind(sqlState: "57P01", connectionBroken: false) == .connection)
        #expect(PostgresError.kind(sqlState: "42601", connectionBroken: false) == .server)
        #expect(PostgresError.kind(sqlState: nil, connectionBroken: false) == .server)
        // libpq's view of the socket wins: a broken connection often reports no code, or the one of its last words.
        #expect(PostgresError.kind(sqlState: "42601", connectionBroken: true) == .connection)
    }
}
