#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Daemons sharing one PostgreSQL store each keep what describes them (health, sweeps, config load, breakers), and a
/// name is claimed once even by two daemons started at the same instant. Against the server scripts/test starts.
@Suite(.serialized, .timeLimit(.minutes(4))) struct PerNodeStoreTests {
    typealias Server = PostgresStoreTests.Server

    /// A daemon config on `store` named `name`, sharing `folders`' Inbox, Done and Failed.
    static func config(_ name: String, store: String, folders: TestInstance, handler: String, extra: String = "") -> String {
        testConfig(
            handler: handler, settle: "50ms",
            extra: """

                [paths]
                inbox = "\(folders.path("Inbox"))"
                done = "\(folders.path("Done"))"
                failed = "\(folders.path("Failed"))"

                [node]
                name = "\(name)"

                [store]
                url = "\(store)"
                \(extra)
                """)
    }

    @Test func twoDaemonsStartedUnderOneNameAtTheSameInstantLeaveOneRunning() throws {
        let server = try Server()
        for round in 1...4 {
            let store = try server.freshDatabase()
            let first = try TestInstance(config: "")
            let handler = "command = [\"/bin/true\"]"
            try Self.config("twin", store: store, folders: first, handler: handler).write(
                to: first.configURL, atomically: true, encoding: .utf8)
            let second = try TestInstance(config: Self.config("twin", store: store, folders: first, handler: handler))
            let starts = [try first.launchDaemon(), try second.launchDaemon()]
            try waitUntil("round \(round): one of the two starts is refused", timeout: 60) { starts.contains { !$0.isRunning } }
            let refusedIndex = try #require(starts.firstIndex { !$0.isRunning })
            let (loser, winner) = refusedIndex == 0 ? (first, second) : (second, first)
            starts[refusedIndex].waitUntilExit()
            #expect(starts[refusedIndex].terminationStatus == 69, "round \(round): \(loser.log)")
            #expect(loser.log.contains("error: the node name \"twin\" is in use by the daemon at"), "round \(round): \(loser.log)")
            try winner.waitUntil("round \(round): the other one watches", timeout: 60) { winner.log.contains("watching") }
            #expect(starts[1 - refusedIndex].isRunning, "round \(round): the winner runs on")
            let holder = try Server.psql(store, "SELECT instance FROM node WHERE name = 'twin' AND stopped_at IS NULL")
            #expect(holder.hasSuffix(":" + winner.path(".orchestrator")), "round \(round): \(holder)")
            #expect(winner.stopDaemon() == 0)
        }
    }

    @Test func eachDaemonShowsItsOwnNotesAndOneDaemonsStartKeepsAnothersBreakers() throws {
        let server = try Server()
        let store = try server.freshDatabase()
        let web1 = try TestInstance(config: "")
        let handler = """
            command = ["/bin/sh", "-c", "exit 3"]
            max_attempts = 1
            breaker = { failures = 1, cooldown = "5m" }
            """
        let sweeps = "\n[sweeps]\nwatchdog = \"1s\"\n"
        try Self.config("web1", store: store, folders: web1, handler: handler, extra: sweeps).write(
            to: web1.configURL, atomically: true, encoding: .utf8)
        let vm2 = try TestInstance(config: Self.config("vm2", store: store, folders: web1, handler: handler, extra: sweeps))

        try web1.startDaemon()
        try web1.drop("bad.txt")
        try web1.waitUntil("web1's breaker opens", timeout: 30) {
            try Server.psql(store, "SELECT count(*) FROM breaker WHERE node = 'web1' AND state = 'open'") == "1"
        }
        // vm2's start closes its own breakers, not web1's.
        try vm2.startDaemon()
        try vm2.waitUntil("vm2 noted its config", timeout: 30) {
            try Server.psql(store, "SELECT count(*) FROM node_note WHERE node = 'vm2' AND key = 'config.loaded_at'") == "1"
        }
        #expect(try Server.psql(store, "SELECT count(*) FROM breaker WHERE node = 'web1' AND state = 'open'") == "1")

        // Each daemon's watchdog notes its health; an idle daemon commits it with its heartbeat (every 30 s).
        var daemons: [String: [String: Any]] = [:]
        try web1.waitUntil("both daemons noted their health", timeout: 75) {
            let object = try web1.json(["status", "--json"]) as? [String: Any]
            let entries = (object?["daemons"] as? [[String: Any]]) ?? []
            daemons = Dictionary(entries.compactMap { entry in (entry["name"] as? String).map { ($0, entry) } }) { first, _ in first }
            return ["web1", "vm2"].allSatisfy { daemons[$0]?["health"] is [String: Any] }
        }
        for name in ["web1", "vm2"] {
            let entry = try #require(daemons[name])
            #expect((entry["health"] as? [String: Any])?["by"] as? String == "daemon", "\(name): \(entry)")
            #expect(entry["config_loaded_at"] is String, "\(name): \(entry)")
            #expect((entry["sweeps"] as? [String: Any])?["watchdog"] != nil, "\(name): \(entry)")
        }
        let web1Breakers = try #require(daemons["web1"]?["breakers"] as? [[String: Any]])
        #expect(web1Breakers.count == 1 && web1Breakers.first?["owner"] as? String == "handler test")
        #expect(web1Breakers.first?["state"] as? String == "open")
        #expect((daemons["vm2"]?["breakers"] as? [[String: Any]])?.isEmpty == true)

        // The top-level fields are those of the daemon whose config `status` was given.
        let fromWeb1 = try #require(try web1.json(["status", "--json"]) as? [String: Any])
        let fromVM2 = try #require(try vm2.json(["status", "--json"]) as? [String: Any])
        #expect((fromWeb1["breakers"] as? [[String: Any]])?.count == 1)
        #expect((fromVM2["breakers"] as? [[String: Any]])?.isEmpty == true)
        #expect(fromWeb1["config_loaded_at"] is String && fromVM2["config_loaded_at"] is String)

        // As text, each daemon's lines follow its `node:` line.
        let text = try web1.run(["status"]).stdout.split(separator: "\n").map(String.init)
        let web1Line = try #require(text.firstIndex { $0.hasPrefix("node:     web1") }, "\(text)")
        let vm2Line = try #require(text.firstIndex { $0.hasPrefix("node:     vm2") }, "\(text)")
        let (web1Lines, vm2Lines) = web1Line < vm2Line
            ? (text[(web1Line + 1)..<vm2Line], text[(vm2Line + 1)...]) : (text[(web1Line + 1)...], text[(vm2Line + 1)..<web1Line])
        #expect(web1Lines.contains { $0.hasPrefix("          breaker:  handler test open until") }, "\(text)")
        #expect(!vm2Lines.prefix { $0.hasPrefix("          ") }.contains { $0.contains("breaker:") }, "\(text)")
        for lines in [web1Lines, vm2Lines] {
            let own = lines.prefix { $0.hasPrefix("          ") }
            #expect(own.contains { $0.hasPrefix("          health:   ") && $0.contains("checked") }, "\(text)")
            #expect(own.contains { $0.hasPrefix("          sweep:    watchdog") }, "\(text)")
            #expect(own.contains { $0.hasPrefix("          config:   in force since") }, "\(text)")
        }
        #expect(vm2.stopDaemon() == 0)
        #expect(web1.stopDaemon() == 0)
    }
}
