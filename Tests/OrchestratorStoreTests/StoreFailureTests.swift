import Foundation
import GRDB
import Testing
@testable import OrchestratorStore

/// The store's one error policy, as `watch` applies it to opening the store: lack of space is waited out,
/// anything else is fatal.
@Suite struct StoreFailureTests {
    @Test func lackOfSpaceFromSQLiteOrTheSystemIsOutOfSpace() {
        #expect(StoreFailure.classify(DatabaseError(resultCode: .SQLITE_FULL)) == .outOfSpace)
        // How a write-ahead log index that cannot grow surfaces (SQLITE_IOERR_SHMSIZE).
        #expect(StoreFailure.classify(DatabaseError(resultCode: ResultCode(rawValue: 4874))) == .outOfSpace)
        #expect(StoreFailure.classify(POSIXError(.ENOSPC)) == .outOfSpace)
        #expect(StoreFailure.classify(POSIXError(.EDQUOT)) == .outOfSpace)
        #expect(StoreFailure.classify(CocoaError(.fileWriteOutOfSpace)) == .outOfSpace)
        #expect(StoreFailure.classify(CocoaError(.fileWriteUnknown, userInfo: [NSUnderlyingErrorKey: POSIXError(.ENOSPC)])) == .outOfSpace)
    }

    @Test func corruptionAndPermissionsAreFatal() {
        #expect(StoreFailure.classify(DatabaseError(resultCode: .SQLITE_NOTADB)) == .fatal)
        #expect(StoreFailure.classify(DatabaseError(resultCode: .SQLITE_CORRUPT)) == .fatal)
        #expect(StoreFailure.classify(DatabaseError(resultCode: .SQLITE_CANTOPEN)) == .fatal)
        #expect(StoreFailure.classify(DatabaseError(resultCode: .SQLITE_READONLY)) == .fatal)
        #expect(StoreFailure.classify(POSIXError(.EACCES)) == .fatal)
        #expect(StoreFailure.classify(CocoaError(.fileWriteNoPermission)) == .fatal)
        #expect(StoreFailure.classify(DatabaseError(resultCode: .SQLITE_BUSY)) == .busy)
    }

    @Test func aCorruptDatabaseFileFailsToOpenAsFatal() throws {
        let directory = NSTemporaryDirectory() + "orch-store-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: directory + "/orchestrator.sqlite"))
        #expect(throws: (any Error).self) { try SQLiteStore(directory: directory) }
        do {
            _ = try SQLiteStore(directory: directory)
        } catch {
            #expect(StoreFailure.classify(error) == .fatal, "\(error)")
        }
    }

    /// An open that ran out of space leaves an empty file; the next open makes it the same database a fresh
    /// start makes (incremental auto-vacuum, write-ahead log).
    @Test func anEmptyFileLeftByAFailedOpenBecomesAFreshDatabase() throws {
        let directory = NSTemporaryDirectory() + "orch-store-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: directory + "/orchestrator.sqlite", contents: nil))
        let store = try SQLiteStore(directory: directory)
        let (autoVacuum, journal) = try store.pool.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA auto_vacuum"), try String.fetchOne(db, sql: "PRAGMA journal_mode"))
        }
        #expect(autoVacuum == 2, "INCREMENTAL")
        #expect(journal == "wal")
    }
}
