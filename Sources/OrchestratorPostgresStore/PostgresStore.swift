import Foundation
import Synchronization
import OrchestratorCore
import OrchestratorPostgres
import OrchestratorStore

/// The ledger in a PostgreSQL database (`[store] url`), through libpq: the engine several daemons can share.
///
/// Two connections, each used by one caller at a time: the writer for `write` and `syncToDisk` (the dispatcher's
/// commits), the reader for `read` (status, the API, commands), so that a report never waits behind a commit.
/// A read runs in a REPEATABLE READ, READ ONLY transaction: one consistent view, as SQLite's WAL readers have.
/// The hold (`holdExclusively`) and each listener (`openWakeups`) have sessions of their own besides.
///
/// Migrations run under a session advisory lock, so daemons starting together migrate once.
public final class PostgresStore: Store, @unchecked Sendable {  // each connection is used under its own lock
    public let url: PostgresURL
    /// The schema the tables live in; nil: the connection's default (`public`).
    public let schema: String?
    private let writer: LockedConnection
    private let reader: LockedConnection
    /// The writer's job ids taken ahead (see `JobIDPool`).
    private let jobIDs = JobIDPool()
    /// The writer's numbering of its transactions (see `write`).
    private let commitMarks = CommitMarks()
    /// Where commits that make work claimable are announced (see PostgresWakeups.swift).
    let wakeupChannel: String
    /// Off only to measure what the announcements cost.
    let announcesWakeups = Atomic<Bool>(true)

    /// The advisory lock key that serialises migrations: "orchestr" in ASCII.
    static let migrationLockKey: Int64 = 0x6F72_6368_6573_7472
    /// The advisory lock key the daemon of a store holds (`holdExclusively`): "orchdaem".
    static let daemonLockKey: Int64 = 0x6F72_6368_6461_656D

    /// Takes the store for this process alone, as a one-shot run needs it (its recovery takes running jobs as its
    /// own): a session advisory lock on a connection of its own, which does nothing else, so that its socket turns
    /// readable exactly when the server ends that session (`holdDescriptor`). False when another process holds it.
    public func holdExclusively() throws -> Bool { try hold(shared: false) }

    /// `shared`: the hold of a daemon among several on the store (see `holdExclusively`): daemons holding it shared
    /// coexist, and keep out any process that wants the store alone (a one-shot run's recovery would take their
    /// running jobs back), as it keeps them out.
    public func hold(shared: Bool) throws -> Bool {
        let connection = LockedConnection(try Self.connect(url, schema: schema, setup: sessionSetup), sessionSetup: sessionSetup)
        guard try connection.holdLock(Self.daemonLockKey, shared: shared) else { return false }
        let backend = try connection.use { $0.backendPID }
        holderBackend.withLock { $0 = backend }
        holder.withLock { $0 = connection }
        return true
    }

    private let holder = Mutex<LockedConnection?>(nil)
    /// The server process of the holding session, as last seen.
    private let holderBackend = Mutex<Int32>(0)
    private let sessionSetup: [String]

    public var holdDescriptor: Int32? {
        guard let connection = holder.withLock({ $0 }) else { return nil }
        return try? connection.use { $0.socketDescriptor }
    }

    /// After `holdDescriptor` turned readable: the server ended the session (a restart, `pg_terminate_backend`),
    /// and with it the lock. A new session takes the lock again at once; if another process took it meanwhile, that
    /// is an error that says so. Throws a connection error while the server is away (nobody can take the store
    /// then either).
    public func checkHold() throws -> StoreHold? {
        guard let connection = holder.withLock({ $0 }) else { return nil }
        // `use` renews a session already known to be gone before the body runs: the server process tells.
        let before = holderBackend.withLock { $0 }
        let hold = try connection.use { session in
            do {
                _ = try session.consumeNotifications()
            } catch let error as PostgresError where error.kind == .connection {
                try connection.renew(session)
            }
            return (session.socketDescriptor, session.backendPID)
        }
        holderBackend.withLock { $0 = hold.1 }
        return StoreHold(descriptor: hold.0, renewed: hold.1 != before)
    }

    /// Connects (twice) and migrates. `schema`: a schema of its own, created if missing (tests use one each).
    public init(url text: String, schema: String? = nil) throws {
        url = try PostgresURL(text)
        self.schema = schema
        let setup = try schema.map { ["SET search_path TO \(try Self.quoteIdentifier($0))"] } ?? []
        sessionSetup = setup
        let writer = LockedConnection(try Self.connect(url, schema: schema, setup: setup), sessionSetup: setup)
        self.writer = writer
        reader = LockedConnection(try Self.connect(url, schema: schema, setup: setup), sessionSetup: setup)
        wakeupChannel = try writer.use { connection in
            try Self.migrate(connection)
            return try Self.wakeupChannel(connection)
        }
    }

    private static func connect(_ url: PostgresURL, schema: String?, setup: [String]) throws -> PostgresConnection {
        let connection = try PostgresConnection(url: url)
        if let schema { try connection.execute("CREATE SCHEMA IF NOT EXISTS \(try quoteIdentifier(schema))") }
        for statement in setup { try connection.execute(statement) }
        return connection
    }

    static func quoteIdentifier(_ name: String) throws -> String {
        guard !name.isEmpty, !name.utf8.contains(0) else {
            throw PostgresError(kind: .client, message: "a schema name must be non-empty text without NUL")
        }
        return "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public var location: String { url.redacted + (schema.map { " (schema \($0))" } ?? "") }

    /// A failure before COMMIT was sent leaves nothing behind, and a lost connection then means "try again once the
    /// server is back". A connection lost while COMMIT was on its way is another matter: the server may or may not
    /// have applied it, so the batch cannot simply be sent again. Each write transaction also numbers itself in the
    /// writer's row of `commit_mark`; once the server answers again (a crash and restart, a cut network) that row
    /// settles it: the number there, the write succeeded; an older one, it failed like any write to a server that
    /// went away, and is sent again. (The transaction id cannot tell: a server that crashes before the COMMIT is
    /// durable hands the same id to a new transaction after its restart.)
    ///
    /// The write waits for that answer (a crash and restart takes seconds), saying so after `noticeAfter`
    /// (`handLongWaits`): its caller cannot go on without knowing, since the transaction's own answers (ids, claims)
    /// and what it did (a file registered once, not twice) are only right if it was applied. Given hooks (the daemon),
    /// it waits as long as the server is away, telling the hooks it is alive, until they give up (a stop signal);
    /// without them it waits `LongWaitHooks.boundedWait`. A wait given up leaves the outcome open: the write
    /// fails as for a server out of reach, and every later write first settles the open one. Not applied, the later
    /// write goes ahead. Applied after all, the caller's memory is behind the store: that write fails as
    /// `.commitOutcomeUnknown`, which stops a daemon (it was stopping anyway), and its next start's recovery reads
    /// what the store holds and the folders, as after a crash.
    public func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try writer.use { connection in
            do {
                return try writeOnce(body, connection: connection)
            } catch {
                // Ids taken in a transaction that was not applied may be handed out again: the sequence's advance is
                // in the WAL that only a later commit makes durable, and a server that crashes before one restarts the
                // sequence behind them. A job inserted with one of them would then collide with a later block's.
                jobIDs.discard()
                throw error
            }
        }
    }

    /// Under the writer connection's lock.
    private func writeOnce<T>(_ body: (any StoreTransaction) throws -> T, connection: PostgresConnection) throws -> T {
        if let open = unsettled.withLock({ $0 }) {
            try settleOpenCommit(open, connection: connection)
        }
        if !commitMarks.registered {
            // The writer's row exists before any transaction numbers itself in it, so that a lost COMMIT's
            // update always has a row to wait on (`CommitMarks.applied`).
            try withRenewal(connection) { try commitMarks.register($0) }
        }
        let busy = connection.answeredWithin(Self.aliveWithin)
        // Busy: BEGIN goes with the first statement. Idle: sent alone, so that a session that died since its
        // last use (a server restart) is opened again before anything is written.
        try withRenewal(connection) { try $0.begin(sendingLater: busy) }
        let value: T
        let transaction = PostgresTransaction(connection: connection, wakeup: WakeupMark(), jobIDs: jobIDs)
        let number: Int64
        do {
            value = try body(transaction)
            number = try commitMarks.mark(connection)
        } catch {
            connection.rollback()
            throw error
        }
        do {
            // Once per transaction however many jobs it queued, in the COMMIT's round trip: delivered with it, or never.
            try connection.commit(notifying: transaction.wakeup.needed && announcesWakeups.load(ordering: .relaxed) ? wakeupChannel : nil)
        } catch let error as PostgresError where error.kind == .commitOutcomeUnknown {
            try settleLostCommit(number, connection: connection, error: error)
        }
        return value
    }

    /// Runs `step`, and once more on a new session if the connection had died since its last use. Only for steps
    /// that write nothing before they fail.
    private func withRenewal(_ connection: PostgresConnection, _ step: (PostgresConnection) throws -> Void) throws {
        do {
            try step(connection)
        } catch let error as PostgresError where error.kind == .connection {
            try writer.renew(connection)
            try step(connection)
        }
    }

    /// A busy writer session that answered this recently is taken to be alive: its BEGIN is not sent on its own to
    /// find out (and to open a new session if it is not).
    static let aliveWithin: Duration = .seconds(1)

    /// After how long a write whose COMMIT was lost says that it waits (see `write`). It tells the hooks it is alive
    /// every `LongWaitHooks.aliveEvery` (10 s): well inside the unit's `WatchdogSec` (60 s), since the dispatcher's
    /// thread, which pets the watchdog, waits with it.
    static let noticeAfter: Duration = .seconds(2)

    /// On the wake-up channel (PostgresWakeups.swift), told apart from work announcements by its payload.
    public func announceRequests() throws {
        try writer.use { try $0.notify(wakeupChannel, payload: PostgresWakeups.requestsPayload) }
    }

    public func handLongWaits(_ hooks: LongWaitHooks) {
        longWaitHooks.withLock { $0 = hooks }
    }

    private let longWaitHooks = Mutex<LongWaitHooks?>(nil)

    /// The number of a lost COMMIT whose outcome the server has not told yet (see `write`).
    private let unsettled = Mutex<Int64?>(nil)

    /// Returns when the lost COMMIT was applied; throws a connection error (sent again later) when it was not, or
    /// when the wait is given up (see `write`; then the outcome stays open for the next write).
    private func settleLostCommit(_ number: Int64, connection: PostgresConnection, error lost: PostgresError) throws {
        // Measured on the clock, not by adding up the pauses: a reconnect to a host that does not answer takes up to
        // libpq's connect_timeout itself.
        let started = ContinuousClock.now
        let hooks = longWaitHooks.withLock { $0 }
        let givesUp = hooks?.givesUp ?? { $0 >= LongWaitHooks.boundedWait }
        var lastAlive = started
        let lostAnswers = connection.takeLostAnswers()  // Before asking: that opens a transaction of its own.
        var pause = 0.1
        var noticed = false
        while true {
            if !noticed, ContinuousClock.now - started >= Self.noticeAfter, let hooks {
                noticed = true
                hooks.notice(
                    "the store's server went away while a COMMIT was on its way; nothing new starts while this daemon waits "
                        + "for it to answer whether that COMMIT was applied (as long as it is away; a stop signal ends the wait)")
            }
            if let hooks, ContinuousClock.now - lastAlive >= hooks.aliveEvery {
                lastAlive = ContinuousClock.now
                hooks.stillWaiting()
            }
            if let applied = try? commitMarks.applied(number, on: connection, renewing: writer) {
                guard applied else {
                    throw PostgresError(
                        kind: .connection, message: "the connection was lost during COMMIT and the server did not apply it: \(lost.message)")
                }
                // Applied, but what its statements answered (a claim, a refused end) never came: each is read again
                // from what the transaction left. One that cannot be leaves the daemon unable to act on it, so it
                // stops and its next start recovers from the store.
                guard lostAnswers.replayable else {
                    throw PostgresError(
                        kind: .commitOutcomeUnknown,
                        message: "a COMMIT whose answer was lost turned out applied, but its statements' answers are gone with the connection: \(lost.message)")
                }
                do {
                    try lostAnswers.replay(on: connection)
                    return
                } catch let error as PostgresError where error.kind == .connection {
                    // Gone again before the answers were read: asked again below, the COMMIT's outcome included.
                }
            }
            guard !givesUp(ContinuousClock.now - started) else { break }
            usleep(useconds_t(pause * 1_000_000))
            pause = min(1, pause * 2)
        }
        unsettled.withLock { $0 = number }
        throw PostgresError(
            kind: .connection,
            message: "the connection was lost during COMMIT and the server has not answered since, so whether it was applied is settled once it does: \(lost.message)")
    }

    /// Before any other write, the outcome a lost COMMIT left open: not applied, the write goes ahead; still unknown,
    /// it fails as for a server out of reach; applied, it fails as `.commitOutcomeUnknown` (see `write`).
    private func settleOpenCommit(_ number: Int64, connection: PostgresConnection) throws {
        let applied = try commitMarks.applied(number, on: connection, renewing: writer)
        unsettled.withLock { $0 = nil }
        if applied {
            throw PostgresError(
                kind: .commitOutcomeUnknown,
                message: "a COMMIT lost when the server went away turned out applied once it answered, after this daemon had taken it for not applied; it stops so that its next start recovers from the store")
        }
    }

    /// Reads change nothing, so one that lost its connection (a server restart since the last use) is read again
    /// on a new one.
    public func read<T>(_ body: (any StoreReader) throws -> T) throws -> T {
        do {
            return try readOnce(body)
        } catch let error as PostgresError where error.kind == .connection {
            return try readOnce(body)
        }
    }

    private func readOnce<T>(_ body: (any StoreReader) throws -> T) throws -> T {
        try reader.use { connection in
            try connection.transaction(isolation: .repeatableRead) { try body(PostgresReader(connection: $0)) }
        }
    }

    /// Every commit is durable when it returns (the server's `synchronous_commit` stays on). SQLite's engine may
    /// defer its fsync because only a power cut loses page-cached commits; a PostgreSQL server that crashes and
    /// restarts would lose unflushed ones, and the daemon has acted on them by then (workers started, ids used).
    public func syncOnlyWhenAsked() throws {}

    /// Nothing to do: see `syncOnlyWhenAsked`.
    public func syncToDisk() throws(StoreSyncError) {}

    /// The server keeps its own log.
    public func reclaimLogSpace() {}

    /// The server reclaims deleted rows itself (autovacuum); there is nothing for the prune sweep to hand back.
    public func reclaimFreePages(pagesPerStep: Int) throws -> ReclaimResult {
        ReclaimResult(switchedToIncremental: false, pagesFreed: 0, byTheServer: true)
    }

    /// The orchestrator's tables with their indexes and TOAST.
    public var bytesOnDisk: Int64 {
        let size = try? reader.use { connection in
            try connection.execute(
                """
                SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname = ANY($1::text[])
                """, [.text("{" + Self.tables.joined(separator: ",") + "}")]
            ).scalar?.int64()
        }
        return (size ?? nil) ?? 0
    }

    static let tables = [
        "job", "attempt", "transition", "event", "task_state", "request", "daemon_note", "breaker", "handler_state", "node",
        "node_note", "commit_mark",
    ]

    // MARK: Schema

    /// Append-only, like SQLite's: a released migration is never edited, a change is a new one.
    static let migrations: [(name: String, sql: String)] = [
        (
            "v1",
            """
            CREATE TABLE job (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                kind TEXT NOT NULL,
                name BYTEA NOT NULL,
                handler TEXT,
                state TEXT NOT NULL,
                priority INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                max_attempts INTEGER NOT NULL,
                not_before DOUBLE PRECISION,
                final_path BYTEA,
                reason TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                finished_at DOUBLE PRECISION,
                cause TEXT,
                slot_ms BIGINT,
                event_id BIGINT,
                claim_device BIGINT,
                claim_inode BIGINT,
                priority_set_at DOUBLE PRECISION
            );
            -- One live job per file name and per Done file's upload; one run per task slot and per task event.
            CREATE UNIQUE INDEX job_live_file ON job(name) WHERE kind = 'file' AND state NOT IN ('done', 'failed');
            CREATE UNIQUE INDEX job_live_upload ON job(name) WHERE kind = 'upload' AND state NOT IN ('done', 'failed');
            CREATE UNIQUE INDEX job_task_slot ON job(name, slot_ms) WHERE kind = 'task' AND slot_ms IS NOT NULL;
            CREATE UNIQUE INDEX job_task_event ON job(name, event_id) WHERE kind = 'task' AND event_id IS NOT NULL;
            CREATE INDEX job_name ON job(name, id);
            CREATE INDEX job_state ON job(state);
            CREATE INDEX job_final_path ON job(final_path) WHERE final_path IS NOT NULL;
            CREATE INDEX job_task_latest ON job(name, finished_at) WHERE kind = 'task';
            CREATE INDEX job_finished ON job(finished_at) WHERE state IN ('done', 'failed');
            CREATE TABLE attempt (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                job_id BIGINT NOT NULL REFERENCES job(id),
                number INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                ended_at DOUBLE PRECISION,
                pid INTEGER,
                start_time BIGINT,
                exit_code INTEGER,
                signal INTEGER,
                timed_out BOOLEAN NOT NULL DEFAULT false,
                user_cpu DOUBLE PRECISION,
                system_cpu DOUBLE PRECISION,
                max_rss_kib BIGINT,
                log_path BYTEA,
                stderr_tail BYTEA,
                reason TEXT,
                log_pruned_at DOUBLE PRECISION
            );
            CREATE INDEX attempt_job ON attempt(job_id, number);
            CREATE INDEX attempt_running ON attempt(id) WHERE outcome = 'running';
            CREATE TABLE transition (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                job_id BIGINT NOT NULL REFERENCES job(id),
                at DOUBLE PRECISION NOT NULL,
                from_state TEXT,
                to_state TEXT NOT NULL,
                detail TEXT
            );
            CREATE INDEX transition_job ON transition(job_id, id);
            CREATE TABLE event (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                name TEXT NOT NULL,
                source TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                handled_at DOUBLE PRECISION,
                body_path BYTEA
            );
            CREATE INDEX event_pending ON event(id) WHERE handled_at IS NULL;
            CREATE INDEX event_handled ON event(handled_at) WHERE handled_at IS NOT NULL;
            CREATE TABLE task_state (
                name TEXT PRIMARY KEY,
                enabled BOOLEAN,
                baseline_ms BIGINT,
                waiting_for TEXT
            );
            CREATE TABLE request (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                kind TEXT NOT NULL,
                target TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                handled_at DOUBLE PRECISION,
                result TEXT
            );
            CREATE INDEX request_handled ON request(handled_at) WHERE handled_at IS NOT NULL;
            CREATE TABLE daemon_note (key TEXT PRIMARY KEY, value TEXT, updated_at DOUBLE PRECISION NOT NULL);
            CREATE TABLE breaker (
                owner TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                consecutive_failures INTEGER NOT NULL,
                open_until DOUBLE PRECISION,
                updated_at DOUBLE PRECISION NOT NULL
            );
            CREATE TABLE handler_state (name TEXT PRIMARY KEY, paused BOOLEAN NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
            """
        ),
        (
            "v2-leases",
            """
            -- The node a running job is claimed by, and when its lease runs out (the server's clock, Unix seconds).
            ALTER TABLE job ADD COLUMN owner TEXT, ADD COLUMN lease_until DOUBLE PRECISION,
                ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX job_lease ON job(lease_until) WHERE state = 'running';
            CREATE INDEX job_queued ON job(priority, id) WHERE state = 'queued';
            """
        ),
        (
            "v3-nodes",
            """
            -- The daemons of the store (see StoreNodes.swift); times are the server's clock, Unix seconds.
            CREATE TABLE node (
                name TEXT PRIMARY KEY,
                instance TEXT NOT NULL,
                pid INTEGER NOT NULL,
                version TEXT NOT NULL,
                config_hash TEXT NOT NULL,
                roles TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                heartbeat_at DOUBLE PRECISION NOT NULL,
                stopped_at DOUBLE PRECISION
            );
            """
        ),
        (
            "v4-node-notes",
            """
            -- What each daemon notes about itself for `status` (its health, sweeps, config load, why its queue waits):
            -- daemons sharing a store each keep their own. `daemon_note` keeps what is the store's (its shared folders).
            CREATE TABLE node_note (
                node TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (node, key)
            );
            -- Which daemon wrote the notes before is unknown: they go, and each daemon writes its own again.
            DELETE FROM daemon_note
                WHERE key IN ('health', 'admission', 'config.loaded_at', 'disk.checked') OR starts_with(key, 'sweep.');
            -- Breakers by the daemon whose failures moved them: one daemon's start clears its own, not another's.
            -- Every start cleared them all before, so those left are rebuilt by their daemons' next failures.
            DELETE FROM breaker;
            ALTER TABLE breaker ADD COLUMN node TEXT NOT NULL DEFAULT '';
            ALTER TABLE breaker ALTER COLUMN node DROP DEFAULT;
            ALTER TABLE breaker DROP CONSTRAINT breaker_pkey, ADD PRIMARY KEY (node, owner);
            """
        ),
        (
            "v6-commit-marks",
            """
            -- Each writer session numbers its write transactions here, in the transaction itself: what settles a
            -- COMMIT whose answer a crash or a cut network lost (see PostgresStore.write). Rows of writers gone a week
            -- are deleted by the next writer that registers.
            CREATE TABLE commit_mark (
                writer TEXT PRIMARY KEY,
                number BIGINT NOT NULL,
                at DOUBLE PRECISION NOT NULL
            );
            """
        ),
        (
            "v7-report-indexes",
            """
            -- What the reports read from a store of months of work: `history` (newest ended runs first, or the
            -- failed ones) and `status`'s uploads, each found without reading every job or attempt.
            CREATE INDEX attempt_ended ON attempt(ended_at, id) WHERE outcome <> 'running';
            CREATE INDEX attempt_failed_ended ON attempt(ended_at, id) WHERE outcome IN ('failed', 'cancelled');
            CREATE INDEX job_upload_state ON job(state) WHERE kind = 'upload';
            """
        ),
    ]

    /// Applies the migrations not yet recorded, each in its own transaction, while holding the migration lock.
    /// A schema that is up to date is only read, so that a role that may only read (a monitoring `status`) can use it.
    static func migrate(_ connection: PostgresConnection) throws {
        if try isUpToDate(connection) { return }
        try connection.advisoryLock(migrationLockKey)
        defer { _ = try? connection.advisoryUnlock(migrationLockKey) }
        let recorded = try connection.execute("SELECT to_regclass('orchestrator_migration') IS NOT NULL").scalar?.bool() == true
        let applied =
            recorded
            ? Set(try connection.execute("SELECT name FROM orchestrator_migration").rows.compactMap { try $0[0].string() })
            : []
        for migration in migrations where !applied.contains(migration.name) {
            do {
                try connection.transaction { connection in
                    // In the migration's transaction: a first migration that fails leaves no table behind.
                    try connection.execute(
                        "CREATE TABLE IF NOT EXISTS orchestrator_migration (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                    try connection.executeScript(migration.sql)
                    try connection.execute("INSERT INTO orchestrator_migration (name) VALUES ($1)", [.text(migration.name)])
                }
            } catch let error as PostgresError where error.sqlState == "42P07" {
                // The tables have common names (job, event, request ...): the database is most likely another
                // application's.
                throw PostgresError(
                    kind: error.kind, sqlState: error.sqlState,
                    message: error.message + "; the orchestrator needs a database of its own, or a schema of its own "
                        + "named by ?options=-csearch_path%3DNAME (create the schema first)")
            }
        }
    }
}

extension PostgresStore {
    /// Whether every migration is recorded; CREATE TABLE IF NOT EXISTS would need the right to create even then.
    static func isUpToDate(_ connection: PostgresConnection) throws -> Bool {
        guard try connection.execute("SELECT to_regclass('orchestrator_migration') IS NOT NULL").scalar?.bool() == true
        else { return false }
        let applied = Set(
            try connection.execute("SELECT name FROM orchestrator_migration").rows.compactMap { try $0[0].string() })
        return migrations.allSatisfy { applied.contains($0.name) }
    }
}

/// A connection and the lock that gives it to one caller at a time.
final class LockedConnection: @unchecked Sendable {  // everything is touched only while `lock` is held
    private let lock = NSLock()
    private let connection: PostgresConnection
    /// Statements that set up the session (search path, commit mode), run again on a new session.
    private let sessionSetup: [String]

    init(_ connection: PostgresConnection, sessionSetup: [String]) {
        self.connection = connection
        self.sessionSetup = sessionSetup
    }

    func use<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        // A connection that broke (a server restart, a network cut) is opened again before use, with its session
        // set up as before; if the server is still away, the error says so and the caller retries later.
        if !connection.isConnected { try renew(connection) }
        do {
            return try body(connection)
        } catch let error as PostgresError where error.kind == .connection && connection.isConnected {
            // The server answers but this session cannot do its work there (a read-only transaction after a
            // failover, a database set read-only: a session keeps the default it started with): a new one next time.
            connection.abandon()
            throw error
        }
    }

    /// A new session for `connection`, set up as the first was; only inside `use`. A lock held for the process is
    /// taken again; if another process took it while the connection was down, the store is no longer this
    /// process's alone, and the error says so (the daemon stops).
    func renew(_ connection: PostgresConnection) throws {
        try connection.reconnect()
        for statement in sessionSetup { try connection.execute(statement) }
        if let (key, shared) = heldLock, try !connection.tryAdvisoryLock(key, shared: shared) {
            throw PostgresError(
                kind: .client, message: "another daemon took the store while the connection to its server was down")
        }
    }

    /// A session advisory lock this connection keeps for the life of the process.
    private var heldLock: (key: Int64, shared: Bool)?

    func holdLock(_ key: Int64, shared: Bool) throws -> Bool {
        try use { connection in
            guard try connection.tryAdvisoryLock(key, shared: shared) else { return false }
            heldLock = (key, shared)
            return true
        }
    }
}

extension PostgresError: StoreFailureClassifying {
    /// A server out of reach (or restarting) is waited for; a transaction the server rolled back for a conflict is
    /// retried like a busy SQLite file; a full disk on the server (53100) is waited for like a full local one;
    /// anything else means the ledger cannot be trusted.
    public var storeFailure: StoreFailure {
        switch kind {
        case .connection: return .unreachable
        case .serialization: return .busy
        // Sending the batch again could apply it twice: stopping hands it to the next start's recovery.
        case .constraint, .client, .commitOutcomeUnknown: return .fatal
        case .server: return sqlState == "53100" ? .outOfSpace : .fatal
        }
    }
}
