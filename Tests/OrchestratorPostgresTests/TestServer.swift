import Glibc
import OrchestratorPostgres
import Testing

/// The PostgreSQL the tests run against: `$ORCH_TEST_POSTGRES_URL`, set by scripts/test (through scripts/postgres).
/// Outside CI a missing URL skips the server tests; under `CI=true` they run and fail, so a CI run that lost its
/// server cannot pass by testing nothing.
enum TestServer {
    static var url: String? {
        guard let value = getenv("ORCH_TEST_POSTGRES_URL"), value.pointee != 0 else { return nil }
        return String(cString: value)
    }

    static var shouldRun: Bool { url != nil || (getenv("CI").map { String(cString: $0) } ?? "") == "true" }

    static let skipReason: Comment =
        "ORCH_TEST_POSTGRES_URL is unset: run scripts/test, or scripts/postgres swift test --filter OrchestratorPostgresTests"

    static func connect() throws -> PostgresConnection {
        guard let url else {
            throw PostgresError(kind: .client, message: "CI=true but ORCH_TEST_POSTGRES_URL is unset: the CI run has no PostgreSQL")
        }
        return try PostgresConnection(url: url)
    }

    /// A name no other test (or earlier run against a kept server) uses, for tables, channels and lock keys.
    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Waits for `connection`'s socket to become readable and returns the notifications that arrived, or [] at the
    /// deadline.
    static func notifications(
        on connection: PostgresConnection, within timeout: Duration = .seconds(10)
    ) throws -> [PostgresNotification] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let arrived = try connection.consumeNotifications()
            if !arrived.isEmpty { return arrived }
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return [] }
            var socket = pollfd(fd: connection.socketDescriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
            _ = poll(&socket, 1, Int32(milliseconds))
        }
    }
}
