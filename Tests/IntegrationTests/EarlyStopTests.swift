#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// A stop sent while the daemon is still starting (a service manager's stop right after its start) stops it: it is
/// never lost between the start and the moment the daemon listens for signals. The test runner starts processes
/// with these signals blocked, so one sent early waits as pending: exactly the case where ignoring it would drop it.
@Suite(.timeLimit(.minutes(2))) struct EarlyStopTests {
    @Test(arguments: [0, 20, 60, 150])
    func aStopDuringTheStartStopsTheDaemon(afterMilliseconds delay: Int) throws {
        let instance = try TestInstance(config: testConfig(handler: "command = [\"/bin/true\"]"))
        let daemon = try instance.launchDaemon()
        usleep(useconds_t(delay * 1000))
        kill(daemon.processIdentifier, SIGTERM)
        let stopped = waitForExit(daemon, within: 15, "a daemon sent SIGTERM \(delay) ms after its start")
        #expect(stopped, "\(instance.log.suffix(2000))")
        // Stopped cleanly (0), or ended by the signal before it had any handler (nothing had started yet).
        let clean = daemon.terminationReason == .exit && daemon.terminationStatus == 0
        let byTheSignal = daemon.terminationReason == .uncaughtSignal && daemon.terminationStatus == SIGTERM
        #expect(clean || byTheSignal, "status \(daemon.terminationStatus) \(daemon.terminationReason)")
    }
}
