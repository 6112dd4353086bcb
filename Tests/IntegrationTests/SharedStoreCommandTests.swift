import Foundation
import Testing

/// Commands given the config of a daemon that is not running, while other daemons of its shared store run.
extension SharedStoreTests {
    /// A one-shot `sweep` or `task run` needs the store alone: it exits 69 at once, naming the daemons that own the
    /// Inbox. Before, it read the shared lock as another one-shot run's and waited for it forever.
    @Test func aOneShotRunBesideRunningDaemonsOfItsStoreExits69AtOnce() throws {
        let cluster = try Cluster(count: 3, extra: """

            [[task]]
            name = "tidy"
            every = "1h"
            command = ["/bin/true"]
            """)
        for daemon in cluster.daemons.prefix(2) { try daemon.startDaemon() }
        let idle = cluster.daemons[2]
        for arguments in [["sweep", "--mode", "ingest"], ["task", "run", "tidy"]] {
            let started = Date()
            let refused = try idle.run(arguments, timeout: 20)
            #expect(refused.status == 69, "\(arguments): \(refused.stderr)")
            #expect(refused.stderr.contains("the orchestrator daemons of a shared store (one of them pid "), "\(refused.stderr)")
            #expect(!refused.stderr.contains("waiting for another one-shot run"), "\(refused.stderr)")
            #expect(Date().timeIntervalSince(started) < 10)
        }
        // A daemon on SQLite is refused the Inbox, and told who owns it.
        let loner = try TestInstance(config: testConfig(handler: "command = [\"/bin/true\"]", extra: """

            [paths]
            inbox = "\(cluster.first.path("Inbox"))"
            done = "\(cluster.first.path("Done"))"
            failed = "\(cluster.first.path("Failed"))"
            """))
        let refused = try loner.run(["watch"], timeout: 20)
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("the orchestrator daemons of a shared store"), "\(refused.stderr)")
        for daemon in cluster.daemons.prefix(2) { #expect(daemon.stopDaemon() == 0) }
    }
}
