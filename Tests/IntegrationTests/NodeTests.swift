#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// The daemons of a store as `status` lists them: registered at start, stopped at a clean stop, and a name that
/// another live daemon holds refused. Against the server scripts/test starts; under `CI=true` a missing one fails.
@Suite(.serialized, .timeLimit(.minutes(3))) struct NodeTests {
    typealias Server = PostgresStoreTests.Server

    static let handler = """
        command = ["/bin/true"]
        max_attempts = 1
        """

    /// A reload records the daemon's new config hash, but never takes its name back from a daemon that took it while
    /// this one was silent: the next heartbeat finds the name gone, and this one stops.
    @Test func aReloadUpdatesTheRegistrationButNeverTakesTheNameBack() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let config = { (attempts: Int) in
            testConfig(handler: "command = [\"/bin/true\"]\nmax_attempts = \(attempts)", extra: "\n[node]\nname = \"web1\"\n")
        }
        let instance = try TestInstance(config: config(1))
        try instance.startDaemon(extraArguments: ["--store", store])
        let daemon = try #require(instance.daemon)
        let hash = "SELECT config_hash FROM node WHERE name = 'web1'"
        try instance.waitUntil("the daemon registered", timeout: 10) { try !Server.psql(store, hash).isEmpty }
        let first = try Server.psql(store, hash)

        try config(2).write(to: instance.configURL, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        try instance.waitUntil("the reload's registration is recorded", timeout: 20) { try Server.psql(store, hash) != first }

        // Another daemon took the name (as it may once this one has been silent past two heartbeats).
        _ = try Server.psql(store, "UPDATE node SET instance = 'otherhost:/var/lib/o', pid = 77, heartbeat_at = extract(epoch FROM now()) WHERE name = 'web1'")
        try config(3).write(to: instance.configURL, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        try instance.waitUntil("the daemon stops at the reload", timeout: 10) { !daemon.isRunning }
        #expect(daemon.terminationStatus == 1)
        #expect(instance.log.contains("another daemon registered the node name \"web1\""), "\(instance.log.suffix(1500))")
        #expect(try Server.psql(store, "SELECT instance FROM node WHERE name = 'web1'") == "otherhost:/var/lib/o")
    }

    @Test func statusListsTheDaemonsOfASharedStoreAndRefusesANameInUse() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let instance = try TestInstance(config: testConfig(handler: Self.handler, extra: """

            [node]
            name = "web1"
            """))
        try instance.startDaemon(extraArguments: ["--store", store])
        try instance.waitUntil("the daemon registered", timeout: 10) {
            try Server.psql(store, "SELECT count(*) FROM node WHERE name = 'web1' AND stopped_at IS NULL") == "1"
        }
        let status = try instance.run(["status", "--store", store])
        let nodeLine = try #require(status.stdout.split(separator: "\n").first { $0.hasPrefix("node:     web1") }, "\(status.stdout)")
        #expect(nodeLine.contains("running, heartbeat") && nodeLine.contains("0 leases") && nodeLine.contains("lister+worker+scheduler"))
        #expect(nodeLine.hasSuffix("at \(Self.hostName()):\(instance.path(".orchestrator"))"), "\(nodeLine)")
        let hash = try Server.psql(store, "SELECT config_hash FROM node WHERE name = 'web1'")
        #expect(hash.count == 16 && nodeLine.contains("config \(hash.prefix(12))"))

        // Another live daemon under another name with another config: listed, and the disagreement named.
        _ = try Server.psql(store, """
            INSERT INTO node VALUES ('vm2', 'otherhost:/var/lib/o', 77, '0.1.0', '00000000deadbeef', 'worker',
                extract(epoch FROM now()), extract(epoch FROM now()), NULL)
            """)
        let both = try instance.json(["status", "--store", store]) as? [String: Any]
        let daemons = try #require(both?["daemons"] as? [[String: Any]])
        #expect(daemons.compactMap { $0["name"] as? String } == ["vm2", "web1"])
        #expect(daemons.allSatisfy { $0["condition"] as? String == "running" })
        let disagreement = try #require(both?["config_disagreement"] as? String)
        #expect(disagreement.contains("vm2 00000000dead") && disagreement.contains("web1 \(hash.prefix(12))"))

        // A daemon of another instance (its own state dir) under a name that is alive: refused, 69.
        // Its own state dir, the same folders (daemons of one store share them).
        let other = try TestInstance(config: testConfig(handler: Self.handler, extra: """

            [node]
            name = "vm2"

            [paths]
            inbox = "\(instance.path("Inbox"))"
            done = "\(instance.path("Done"))"
            failed = "\(instance.path("Failed"))"
            """))
        let refused = try other.run(["watch", "--store", store], timeout: 30)
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("the node name \"vm2\" is in use by the daemon at otherhost:/var/lib/o (pid 77"), "\(refused.stderr)")
        // Silent past two heartbeats, the name is free: the new daemon takes it.
        _ = try Server.psql(store, "UPDATE node SET heartbeat_at = heartbeat_at - 80 WHERE name = 'vm2'")
        try other.startDaemon(extraArguments: ["--store", store])
        try other.waitUntil("the name is taken over", timeout: 10) {
            try Server.psql(store, "SELECT pid <> 77 FROM node WHERE name = 'vm2'") == "t"
        }
        // web1 is SIGKILLed: no clean stop, silent once its heartbeat is old.
        instance.killDaemon()
        _ = try Server.psql(store, "UPDATE node SET heartbeat_at = heartbeat_at - 80 WHERE name = 'web1'")
        let afterKill = try other.run(["status", "--store", store])
        #expect(afterKill.stdout.contains("node:     web1") && afterKill.stdout.contains("SILENT for 1m2"), "\(afterKill.stdout)")
        #expect(other.stopDaemon() == 0)
        #expect(try Server.psql(store, "SELECT stopped_at IS NOT NULL FROM node WHERE name = 'vm2'") == "t")
        let stopped = try other.run(["status", "--store", store])
        #expect(stopped.stdout.split(separator: "\n").contains { $0.hasPrefix("node:     vm2") && $0.contains("stopped") }, "\(stopped.stdout)")
    }

    @Test func onSQLiteTheDaemonIsItsOwnNodeAndRolesAreRefused() throws {
        let instance = try TestInstance(config: testConfig(handler: Self.handler))
        try instance.startDaemon()
        try instance.waitUntil("the daemon registered", timeout: 10) {
            let object = try instance.json(["status"]) as? [String: Any]
            return (object?["daemons"] as? [[String: Any]])?.first?["condition"] as? String == "running"
        }
        #expect(instance.stopDaemon() == 0)
        let object = try instance.json(["status"]) as? [String: Any]
        let daemons = try #require(object?["daemons"] as? [[String: Any]])
        #expect(daemons.count == 1 && daemons.first?["condition"] as? String == "stopped")
        #expect(daemons.first?["name"] as? String == Self.hostName())

        let workerOnly = try TestInstance(config: testConfig(handler: Self.handler, extra: "\n[node]\nroles = [\"worker\"]\n"))
        let refused = try workerOnly.run(["config", "check"])
        #expect(refused.status == 78)
        #expect(refused.stderr.contains("orchestrator.toml:14: error: [node] roles: a daemon on SQLite does all the work"), "\(refused.stderr)")
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
