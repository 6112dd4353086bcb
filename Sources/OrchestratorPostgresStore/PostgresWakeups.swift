import Foundation
import OrchestratorPostgres
import OrchestratorStore

/// Wake-ups over LISTEN/NOTIFY. A transaction that makes a job claimable sends one notification with its COMMIT
/// (`PostgresStore.write`), which the server delivers at the commit and drops on a rollback; each daemon LISTENs on
/// a connection that does nothing else, so its socket turns readable exactly when one arrives.
///
/// The notification is sent from Swift, once per transaction, rather than by a trigger on `job`: a statement-level
/// trigger would run on every statement that touches a job (claims and lease renewals included, the busiest ones)
/// to find the rare one that queues, while the Swift side already knows which writes queue. It travels in the
/// COMMIT's own round trip (`commit(notifying:)`), so what it costs is the server's work at commit only: measured at
/// about 10% of a one-job transaction and within noise for 50 jobs a transaction.
///
/// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`) hands each transaction to any server
/// session, so a LISTEN stays on a session that others then use: daemons must reach the server directly, or
/// through a pool in session mode.
extension PostgresStore {
    /// Names the channel after the `job` table's identity: NOTIFY already stays within its database, and two stores
    /// in different schemas of one database have different tables, so neither hears the other. (A schema's name can
    /// be longer than a channel name may be; an OID cannot.)
    static func wakeupChannel(_ connection: PostgresConnection) throws -> String {
        guard let oid = try connection.execute("SELECT to_regclass('job')::oid::bigint").scalar?.int64() else {
            throw PostgresError(kind: .client, message: "the store has no job table to announce work of")
        }
        return "orchestrator_wakeup_\(oid)"
    }

    public func openWakeups() throws -> (any StoreWakeups)? {
        try PostgresWakeups(url: url, channel: wakeupChannel)
    }
}

/// Set when a write makes a job claimable; one per `PostgresStore.write`, used on its thread only.
final class WakeupMark {
    var needed = false
}

/// A LISTEN session of its own, not the writer's, the reader's or the hold's: those block in statements, and
/// libpq reads a notification that arrives during a statement into its queue, where no epoll sees it.
public final class PostgresWakeups: StoreWakeups, @unchecked Sendable {  // `connection` is used under `lock` only
    private let lock = NSLock()
    private let connection: PostgresConnection
    /// The session was found ended and the one replacing it has not been reported (`WakeupBatch.renewed`) yet.
    private var lost = false

    init(url: PostgresURL, channel: String) throws {
        connection = try PostgresConnection(url: url)
        try connection.listen(channel)
    }

    public var descriptor: Int32 {
        lock.withLock { connection.isConnected ? connection.socketDescriptor : -1 }
    }

    /// The payload of `PostgresStore.announceRequests`; work announcements have none.
    static let requestsPayload = "requests"

    /// The server process of the listening session (what `pg_terminate_backend` takes).
    public var backendPID: Int32 { lock.withLock { connection.backendPID } }

    public func drain() throws -> WakeupBatch {
        let (arrived, renewed) = try receive()
        return WakeupBatch(
            notified: arrived.contains { $0.payload != Self.requestsPayload }, renewed: renewed, descriptor: descriptor,
            requests: arrived.contains { $0.payload == Self.requestsPayload })
    }

    /// `drain`, with the notifications themselves (the tests count them).
    func receive() throws -> (notifications: [PostgresNotification], renewed: Bool) {
        try lock.withLock {
            if !lost && connection.isConnected {
                do {
                    return (try connection.consumeNotifications(), false)
                } catch let error as PostgresError where error.kind == .connection {
                    // The server ended the session (a restart, pg_terminate_backend) or the network did: renew below.
                }
            }
            lost = true
            // Listens on the channel again; throws a connection error while the server is away, and the next drain
            // tries again.
            try connection.reconnect()
            lost = false
            return ([], true)
        }
    }
}
