import Foundation
import OrchestratorCore
import OrchestratorPostgres
import Testing

@testable import OrchestratorPostgresStore
@testable import OrchestratorStore

private func path(_ text: String) -> RelativePath { RelativePath(Array(text.utf8)) }

/// Wake-ups between daemons sharing a store (issue 10): a commit that makes work claimable wakes the other handles'
/// listeners, once per transaction, and nothing else does; a listener whose session ends comes back and says so.
/// And `nextClaimable`, the time to look when nothing wakes. Waits are poll() on the descriptor with a deadline.
@Suite struct StoreWakeupContractTests {
    private func withStore(_ engine: StoreEngine, _ body: (any Store, @Sendable () throws -> any Store) throws -> Void) throws {
        let opened = try engine.open()
        defer { opened.cleanUp() }
        try body(opened.store, opened.another)
    }

    /// The listener of a second handle, or nil for an engine without wake-ups (which must then be SQLite's).
    private func listener(_ store: any Store, engine: StoreEngine) throws -> (any StoreWakeups)? {
        let wakeups = try store.openWakeups()
        if engine.name == "sqlite" { #expect(wakeups == nil, "one daemon per SQLite store: nothing to hear") }
        return wakeups
    }

    private func queue(_ store: any Store, _ name: String, state: JobState = .queued) throws -> Int64 {
        try store.write {
            try $0.insertJob(kind: .file, name: path(name), handler: "h", state: state, priority: 5, maxAttempts: 3, at: 1)
        }
    }

    @Test(arguments: StoreEngine.all)
    func aQueuedJobCommittedOnOneHandleWakesAnotherWhichClaimsIt(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            let other = try another()
            guard let wakeups = try listener(other, engine: engine) else { return }
            #expect(wakeups.descriptor >= 0)
            let id = try queue(store, "f")
            let batch = try #require(try waitForWakeup(wakeups), "no wake-up within 10 s")
            #expect(batch.notified && !batch.renewed && batch.mustLook && batch.descriptor == wakeups.descriptor)
            #expect(try other.write { try $0.claimNext(node: "b", lease: 60, kinds: [.file], agingStep: 0) }?.id == id)
        }
    }

    /// Every write that makes a job claimable announces it, once per transaction; the announcements are counted up
    /// to a fence the test sends after each write (the server delivers them in commit order).
    @Test(arguments: StoreEngine.all)
    func everyWriteThatQueuesAJobWakesOncePerTransaction(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            guard let wakeups = try listener(another(), engine: engine) else { return }
            let fence = try Fence(store)
            try store.write { transaction in
                for index in 0..<3 {
                    _ = try transaction.insertJob(
                        kind: .file, name: path("batch\(index)"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
                }
            }
            #expect(try fence.announcements(wakeups) == 1, "three jobs queued in one transaction")

            _ = try store.write { try $0.insertTaskRun(task: "t", priority: 5, maxAttempts: 1, cause: .manual, detail: "run", at: 1) }
            #expect(try fence.announcements(wakeups) == 1, "a task run")
            _ = try store.write { try $0.insertUpload(path: path("up"), handler: "h", maxAttempts: 1, at: 1) }
            #expect(try fence.announcements(wakeups) == 1, "an upload")

            let failed = try queue(store, "failed", state: .failed)
            #expect(try fence.announcements(wakeups) == 0, "a job inserted as failed")
            try store.write { try $0.setState(jobID: failed, from: .failed, to: .queued, at: 2) }
            #expect(try fence.announcements(wakeups) == 1, "a job set queued again (a retry)")

            let claimed = try #require(try store.write { try $0.claimNext(node: "a", lease: 60, kinds: [.file], agingStep: 0) })
            #expect(try fence.announcements(wakeups) == 0, "a claim")
            #expect(try store.write { try $0.renewLeases(node: "a", lease: 60) } == 1)
            #expect(try fence.announcements(wakeups) == 0, "a lease renewed")
            #expect(try store.write {
                try $0.finishClaimed(
                    jobID: claimed.id, node: "a", claim: claimed.claims, to: .queued, notBefore: 4_000_000_000, reason: "retry", at: 3)
            })
            #expect(try fence.announcements(wakeups) == 1, "a claimed job queued to run again later")

            let done = try #require(try store.write { try $0.claimNext(node: "a", lease: 60, kinds: [.file], agingStep: 0) })
            #expect(try store.write {
                try $0.finishClaimed(jobID: done.id, node: "a", claim: done.claims, to: .done, notBefore: nil, reason: nil, at: 4)
            })
            #expect(try fence.announcements(wakeups) == 0, "a claim and a completion")

            struct Abandoned: Error {}
            #expect(throws: Abandoned.self) {
                try store.write { transaction in
                    _ = try transaction.insertJob(
                        kind: .file, name: path("rolled-back"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 5)
                    throw Abandoned()
                }
            }
            #expect(try fence.announcements(wakeups) == 0, "a queued job rolled back")
        }
    }

    @Test(arguments: StoreEngine.all)
    func aRescueWakesTheOtherDaemons(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            guard let wakeups = try listener(another(), engine: engine) else { return }
            let fence = try Fence(store)
            let id = try queue(store, "f")
            _ = try #require(try store.write { try $0.claimNext(node: "a", lease: -1, kinds: [.file], agingStep: 0) })
            #expect(try fence.announcements(wakeups) == 1, "the insert")
            #expect(try store.write { try $0.rescueExpiredLeases(at: 2) } == [id])
            #expect(try fence.announcements(wakeups) == 1, "the rescue")
            #expect(try store.write { try $0.rescueExpiredLeases(at: 3) }.isEmpty)
            #expect(try fence.announcements(wakeups) == 0, "a rescue that took nothing")
        }
    }

    /// The server ends the listener's session (an administrator, a restart): the socket turns readable, the drain
    /// renews the session and says so (what was announced meanwhile is lost: catch up), and later commits wake it.
    @Test(arguments: StoreEngine.all)
    func aListenerWhoseSessionEndsIsRenewedAndHearsAgain(engine: StoreEngine) throws {
        try withStore(engine) { store, another in
            guard let wakeups = try listener(another(), engine: engine) else { return }
            let listening = try #require(wakeups as? PostgresWakeups)
            let ended = listening.backendPID
            let url = try #require(ProcessInfo.processInfo.environment["ORCH_TEST_POSTGRES_URL"])
            let terminated = try PostgresConnection(url: url).execute("SELECT pg_terminate_backend($1::int, 5000)", [.int(Int64(ended))])
            #expect(try terminated.scalar?.bool() == true)

            let renewal = try #require(try waitForWakeup(wakeups), "the ended session went unnoticed for 10 s")
            #expect(renewal.renewed && renewal.mustLook && !renewal.notified)
            #expect(renewal.descriptor >= 0 && renewal.descriptor == wakeups.descriptor)
            #expect(listening.backendPID != ended, "a new session")

            _ = try queue(store, "after")
            let batch = try #require(try waitForWakeup(wakeups), "the renewed listener heard nothing within 10 s")
            #expect(batch.notified && !batch.renewed)
        }
    }

    /// While the server is out of reach the listener cannot be renewed: a drain throws what `StoreFailure.classify`
    /// calls unreachable, nothing listens (-1), and a drain once the server is back renews it. Out of reach without
    /// stopping the server the other tests use: the listener goes through a link to the server's Unix socket, which
    /// the test removes and puts back.
    @Test func aListenerThatCannotReconnectThrowsUnreachableAndRenewsOnceTheServerIsBack() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment["ORCH_TEST_POSTGRES_URL"], !text.isEmpty,
            let sockets = environment["ORCH_TEST_POSTGRES_SOCKETS"], let port = environment["ORCH_TEST_POSTGRES_PORT"]
        else { return }
        let schema = "orch_wakeup_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let store = try PostgresStore(url: text, schema: schema)
        let admin = try PostgresConnection(url: text)
        defer { _ = try? admin.execute("DROP SCHEMA \"\(schema)\" CASCADE") }
        let directory = NSTemporaryDirectory() + "orch-wakeup-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let link = directory + "/.s.PGSQL.\(port)"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: sockets + "/.s.PGSQL.\(port)")
        var viaLink = try PostgresURL(text)
        viaLink.host = directory
        let wakeups = try PostgresWakeups(url: viaLink, channel: store.wakeupChannel)

        try FileManager.default.removeItem(atPath: link)
        try admin.execute("SELECT pg_terminate_backend($1::int, 5000)", [.int(Int64(wakeups.backendPID))])
        let deadline = Date() + 10
        var failure: (any Error)?
        while failure == nil, try readable(wakeups.descriptor, until: deadline) {
            do { _ = try wakeups.drain() } catch { failure = error }
        }
        let error = try #require(failure, "the ended session went unnoticed for 10 s")
        #expect(StoreFailure.classify(error) == .unreachable, "\(error)")
        #expect(wakeups.descriptor == -1, "nothing listens")
        do {
            let batch = try wakeups.drain()
            Issue.record("a drain while the server is out of reach returned \(batch)")
        } catch {
            #expect(StoreFailure.classify(error) == .unreachable, "\(error)")
        }

        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: sockets + "/.s.PGSQL.\(port)")
        let renewal = try wakeups.drain()
        #expect(renewal.renewed && renewal.mustLook && renewal.descriptor >= 0)
        _ = try store.write {
            try $0.insertJob(kind: .file, name: path("back"), handler: "h", state: .queued, priority: 5, maxAttempts: 3, at: 1)
        }
        let batch = try #require(try waitForWakeup(wakeups), "the renewed listener heard nothing within 10 s")
        #expect(batch.notified && !batch.renewed)
    }

    @Test(arguments: StoreEngine.all)
    func nextClaimableIsTheEarliestDueJobOrLeaseEndByTheStoresClock(engine: StoreEngine) throws {
        try withStore(engine) { store, _ in
            let next = { (kinds: [JobKind]) in try store.read { try $0.nextClaimable(kinds: kinds) } }
            #expect(try next([.file, .task, .upload]) == nil, "an empty queue: only a wake-up brings work")

            let later = try queue(store, "later")
            try store.write { try $0.setState(jobID: later, from: .queued, to: .queued, notBefore: 4_000_000_000, at: 1) }
            let waiting = try #require(try next([.file]))
            #expect(waiting.at == 4_000_000_000)
            let now = Date().timeIntervalSince1970
            #expect(abs(waiting.now - now) < 60 && abs(waiting.delay - (4_000_000_000 - waiting.now)) < 0.001)
            #expect(try next([.task]) == nil, "a file job is not a task's")

            _ = try store.write { try $0.insertTaskRun(task: "t", priority: 5, maxAttempts: 1, cause: .manual, detail: "run", at: 1) }
            let due = try #require(try next([.task]))
            #expect(due.at == due.now && due.delay == 0, "a job without not_before is due now")
            #expect(try next([.file])?.at == 4_000_000_000)

            let held = try #require(try store.write { try $0.claimNext(node: "a", lease: 60, kinds: [.task], agingStep: 0) })
            let lease = try #require(try next([.file]))
            #expect(lease.at == held.leaseUntil && lease.delay > 30 && lease.delay <= 60, "the lease runs out first")
            _ = try store.write { try $0.claimNext(node: "a", lease: -1, kinds: [.task], agingStep: 0) }
            _ = try queue(store, "expired")
            let expired = try #require(try store.write { try $0.claimNext(node: "b", lease: -5, kinds: [.file], agingStep: 0) })
            let rescuable = try #require(try next([]))
            #expect(rescuable.at == expired.leaseUntil && rescuable.delay == 0, "a lease run out: rescue now")
        }
    }
}

/// The announcements on a store's channel, counted up to a notification the test sends itself after the write in
/// question: the server delivers notifications in commit order, so any the write sent arrive before the fence.
private struct Fence {
    let sender: PostgresConnection
    let channel: String

    init(_ store: any Store) throws {
        let postgres = try #require(store as? PostgresStore)
        sender = try PostgresConnection(url: postgres.url)
        channel = postgres.wakeupChannel
    }

    func announcements(_ wakeups: any StoreWakeups, within seconds: Double = 10) throws -> Int {
        let listening = try #require(wakeups as? PostgresWakeups)
        try sender.notify(channel, payload: "fence")
        var count = 0
        let deadline = Date() + seconds
        while deadline.timeIntervalSinceNow > 0 {
            guard try readable(listening.descriptor, until: deadline) else { break }
            for notification in try listening.receive().notifications {
                if notification.payload == "fence" { return count }
                count += 1
            }
        }
        Issue.record("the fence did not arrive within \(seconds) s")
        return count
    }
}

/// Waits for a drain with something to act on (`mustLook`), until `seconds` pass; nil if none came.
func waitForWakeup(_ wakeups: any StoreWakeups, seconds: Double = 10) throws -> WakeupBatch? {
    let deadline = Date() + seconds
    while try readable(wakeups.descriptor, until: deadline) {
        let batch = try wakeups.drain()
        if batch.mustLook { return batch }
    }
    return nil
}

/// Whether `descriptor` turned readable before `deadline`.
func readable(_ descriptor: Int32, until deadline: Date) throws -> Bool {
    while true {
        let remaining = deadline.timeIntervalSinceNow
        guard remaining > 0 else { return false }
        var watched = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&watched, 1, Int32(min(remaining * 1000 + 1, 60_000)))
        if ready > 0 { return true }
        if ready == 0 { return false }
        guard errno == EINTR else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
}
