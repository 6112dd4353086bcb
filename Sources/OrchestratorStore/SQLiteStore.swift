import Foundation
import GRDB
import OrchestratorCore

/// The ledger in one SQLite file in the state folder (WAL mode), through GRDB: the engine of a single daemon.
/// The daemon and one-shot commands on the same state folder share it, each waiting for the other's writes.
public final class SQLiteStore: Store {
    let pool: DatabasePool
    public let path: String
    public var location: String { path }
    private let log: LogFile
    static let busyTimeoutMilliseconds = 10_000

    /// Opens (creating and migrating if needed) `DIRECTORY/orchestrator.sqlite`.
    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            // Foundation's text ("Error Domain=NSCocoaErrorDomain Code=516 ...") says nothing an operator can act on.
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder)
            throw StoreFolderError(
                description: exists && !isFolder.boolValue
                    ? "\(directory) is not a folder" : "cannot make the folder \(directory): \(Self.posixText(error))")
        }
        path = directory + "/orchestrator.sqlite"
        log = LogFile(path: path + "-wal")
        var configuration = Configuration()
        // The daemon and one-shot commands touch the same file; wait for each other instead of failing.
        configuration.busyMode = .timeout(Double(Self.busyTimeoutMilliseconds) / 1000)
        configuration.prepareDatabase { db in
            // FULL: a commit that returned is on disk even after a power cut, so a file moved to Done
            // after its commit can never be found with an older state on restart.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        // An empty file is new too: what an open that ran out of space left behind (`watch` waits and tries again).
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        if size == nil || size == 0 {
            // auto_vacuum can only be chosen before the first page is written (switching WAL on writes it);
            // a database created before this switches at its first prune (`reclaimFreePages`), since that
            // needs a VACUUM, which cannot run inside a migration's transaction.
            try DatabaseQueue(path: path).writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                try db.execute(sql: "PRAGMA journal_mode = WAL")
            }
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    /// From now on a commit returns once it is written, without waiting for the disk; `syncToDisk` makes every
    /// commit so far durable. The daemon calls that (off its own thread) before the effects that must follow a
    /// durable record: a file leaving the processing area, the daemon's stop. A crash of the process loses
    /// nothing either way (the writes are in the page cache); a power cut may lose the latest commits, whose
    /// files are then still in the processing area and recovered as any interrupted claim.
    public func syncOnlyWhenAsked() throws {
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        // Opened now, while descriptors are plentiful: a daemon at its fd limit can still make its commits durable.
        try? log.sync()
    }

    /// Makes every commit so far durable: an fdatasync of the write-ahead log, where commits go in WAL mode.
    /// Throws the errno (ENOSPC and EIO included: then nothing may rely on the latest commits being on disk).
    public func syncToDisk() throws(StoreSyncError) {
        try log.sync()
    }

    /// The write-ahead log keeps its size (up to about 4 MB) between checkpoints, and a writer appends after the last
    /// commit: at the log's end, on a full filesystem, no write goes through until a checkpoint starts the log over,
    /// and SQLite only checkpoints after a commit. A truncating checkpoint copies the log into the database (which needs room for the
    /// pages it adds) and empties the file. Best effort; the prune sweep ends with it too. It waits for readers to
    /// leave the log while holding the write lock: it gives up after a moment rather than hold the dispatcher's
    /// commits for the usual 10 s busy timeout.
    public func reclaimLogSpace() {
        try? pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA busy_timeout = 200")
            defer { try? db.execute(sql: "PRAGMA busy_timeout = \(Self.busyTimeoutMilliseconds)") }
            _ = try? db.checkpoint(.truncate)
        }
    }

    public func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try pool.write { db in try body(SQLiteTransaction(db: db)) }
    }

    public func read<T>(_ body: (any StoreReader) throws -> T) throws -> T {
        try pool.read { db in try body(SQLiteReader(db: db)) }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE job (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    name BLOB NOT NULL,
                    handler TEXT,
                    state TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    max_attempts INTEGER NOT NULL,
                    not_before REAL,
                    final_path BLOB,
                    reason TEXT,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    finished_at REAL
                );
                -- One live job per name: the same arrival is never queued twice.
                CREATE UNIQUE INDEX job_live_name ON job(kind, name) WHERE state NOT IN ('done', 'failed');
                CREATE INDEX job_name ON job(name, id);
                CREATE INDEX job_state ON job(state);
                CREATE TABLE attempt (
                    id INTEGER PRIMARY KEY,
                    job_id INTEGER NOT NULL REFERENCES job(id),
                    number INTEGER NOT NULL,
                    outcome TEXT NOT NULL,
                    started_at REAL NOT NULL,
                    ended_at REAL,
                    pid INTEGER,
                    start_time INTEGER,
                    exit_code INTEGER,
                    signal INTEGER,
                    timed_out INTEGER NOT NULL DEFAULT 0,
                    user_cpu REAL,
                    system_cpu REAL,
                    max_rss_kib INTEGER,
                    log_path BLOB,
                    stderr_tail BLOB,
                    reason TEXT
                );
                CREATE INDEX attempt_job ON attempt(job_id, number);
                CREATE INDEX attempt_outcome ON attempt(outcome);
                CREATE TABLE transition (
                    id INTEGER PRIMARY KEY,
                    job_id INTEGER NOT NULL REFERENCES job(id),
                    at REAL NOT NULL,
                    from_state TEXT,
                    to_state TEXT NOT NULL,
                    detail TEXT
                );
                CREATE INDEX transition_job ON transition(job_id, id);
                """)
        }
        migrator.registerMigration("v2-tasks") { db in
            try db.execute(sql: """
                -- Tasks: what made a run due. slot_ms is the scheduled instant of an interval or cron slot (or
                -- the daemon's start for @reboot), event_id the event that queued it; each is unique per task,
                -- so a slot or an event never runs twice, across restarts and processes.
                ALTER TABLE job ADD COLUMN cause TEXT;
                ALTER TABLE job ADD COLUMN slot_ms INTEGER;
                ALTER TABLE job ADD COLUMN event_id INTEGER;
                CREATE UNIQUE INDEX job_task_slot ON job(name, slot_ms) WHERE kind = 'task' AND slot_ms IS NOT NULL;
                CREATE UNIQUE INDEX job_task_event ON job(name, event_id) WHERE kind = 'task' AND event_id IS NOT NULL;
                -- One live job per file name; a task may have a run waiting behind a running one.
                DROP INDEX job_live_name;
                CREATE UNIQUE INDEX job_live_file ON job(name) WHERE kind = 'file' AND state NOT IN ('done', 'failed');
                CREATE INDEX job_task_latest ON job(name, finished_at) WHERE kind = 'task';
                -- One live upload per Done file.
                CREATE UNIQUE INDEX job_live_upload ON job(name) WHERE kind = 'upload' AND state NOT IN ('done', 'failed');
                CREATE TABLE event (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    source TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    handled_at REAL
                );
                CREATE INDEX event_pending ON event(id) WHERE handled_at IS NULL;
                CREATE TABLE task_state (
                    name TEXT PRIMARY KEY,
                    -- NULL: as the config says; 0/1: set by `task disable|enable`.
                    enabled INTEGER,
                    -- When a daemon first saw the task: slots before it were never missed.
                    baseline_ms INTEGER,
                    -- Prerequisites a due run waits for (comma-separated), NULL when it waits for none.
                    waiting_for TEXT
                );
                -- What commands ask of a running daemon: kind 'task_run' (target: a task) or 'sweep' (target: a mode).
                CREATE TABLE request (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    target TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    handled_at REAL
                );
                -- What the daemon wants other processes to see (`status`), such as why its queue waits.
                CREATE TABLE daemon_note (key TEXT PRIMARY KEY, value TEXT, updated_at REAL NOT NULL);
                -- Circuit breakers as the daemon last changed them (for `status`).
                CREATE TABLE breaker (
                    owner TEXT PRIMARY KEY,
                    state TEXT NOT NULL,
                    consecutive_failures INTEGER NOT NULL,
                    open_until REAL,
                    updated_at REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3") { db in
            try db.execute(sql: """
                -- The identity of a claimed file (its device and inode in the processing area): recovery checks it
                -- before finishing a job's move, so a newcomer that took a freed name is never taken for the
                -- finished job's file.
                ALTER TABLE job ADD COLUMN claim_device INTEGER;
                ALTER TABLE job ADD COLUMN claim_inode INTEGER;
                -- What the prune sweep looks for: finished jobs by age, handled events and requests by age.
                CREATE INDEX job_finished ON job(finished_at) WHERE state IN ('done', 'failed');
                CREATE INDEX event_handled ON event(handled_at) WHERE handled_at IS NOT NULL;
                CREATE INDEX request_handled ON request(handled_at) WHERE handled_at IS NOT NULL;
                -- When the prune sweep deleted the attempt's log file (`show` says so instead of "no output").
                ALTER TABLE attempt ADD COLUMN log_pruned_at REAL;
                """)
        }
        migrator.registerMigration("v4-intervention") { db in try registerInterventionSchema(db) }
        migrator.registerMigration("v5-event-body") { db in try registerEventBodySchema(db) }
        migrator.registerMigration("v6-leases") { db in try registerLeaseSchema(db) }
        migrator.registerMigration("v7-nodes") { db in try registerNodeSchema(db) }
        migrator.registerMigration("v8-node-notes") { db in try registerNodeNoteSchema(db) }
        migrator.registerMigration("v9-report-indexes") { db in
            try db.execute(sql: """
                -- What the reports read from a store of months of work: `history` (newest ended runs first, or the
                -- failed ones) and `status`'s uploads, each found without reading every job or attempt.
                CREATE INDEX attempt_ended ON attempt(ended_at) WHERE outcome != 'running';
                CREATE INDEX attempt_failed_ended ON attempt(ended_at) WHERE outcome IN ('failed', 'cancelled');
                CREATE INDEX job_upload_state ON job(state) WHERE kind = 'upload';
                """)
        }
        return migrator
    }
}

extension Array where Element == UInt8 {
    var data: Data { Data(self) }
}

extension Data {
    var bytes: [UInt8] { [UInt8](self) }
}

/// `Store.syncToDisk` failed with this errno.
/// The write-ahead log, held open once synced: each later sync needs no new descriptor, which a process at its
/// fd limit could not get (the mover then left files in the processing area until the watchdog sweep). Opened
/// again if SQLite has replaced the file.
private final class LogFile: @unchecked Sendable {
    private let path: String
    private let lock = NSLock()
    private var fd: Int32 = -1

    init(path: String) { self.path = path }

    deinit { if fd >= 0 { close(fd) } }

    func sync() throws(StoreSyncError) {
        lock.lock()
        defer { lock.unlock() }
        var status = stat()
        if fd >= 0, fstat(fd, &status) != 0 || status.st_nlink == 0 {
            close(fd)
            fd = -1
        }
        if fd < 0 {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { return }  // No log: every commit is in the database file, synced at checkpoint.
                throw StoreSyncError(code: errno)
            }
        }
        while fdatasync(fd) != 0 {
            if errno != EINTR { throw StoreSyncError(code: errno) }
        }
    }
}

/// The state folder cannot be had.
public struct StoreFolderError: Error, CustomStringConvertible {
    public let description: String
}

extension SQLiteStore {
    /// The POSIX reason under a Foundation file error (permission denied, no space), or its own text.
    static func posixText(_ error: any Error) -> String {
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        guard let code = underlying?.code, underlying?.domain == NSPOSIXErrorDomain else { return "\(error)" }
        return String(cString: strerror(Int32(code)))
    }
}

public struct StoreSyncError: Error, CustomStringConvertible {
    public let code: Int32
    public init(code: Int32) { self.code = code }
    public var description: String { "cannot sync the state database's log: \(String(cString: strerror(code)))" }
}
