import Glibc
import Testing

@testable import OrchestratorPlatform

/// EMFILE from inotify_init1 is either limit; the warning names the one that is reached.
struct InotifyLimitTests {
    @Test func theLimitReachedIsTheOneNamed() {
        #expect(InotifyWatcher.cannotCreate(errno: EMFILE, fileLimitReached: true).contains("raise ulimit -n / LimitNOFILE="))
        #expect(InotifyWatcher.cannotCreate(errno: EMFILE, fileLimitReached: false).contains("fs.inotify.max_user_instances"))
        #expect(InotifyWatcher.cannotCreate(errno: ENOMEM, fileLimitReached: false)
            == "cannot create an inotify instance: \(String(cString: strerror(ENOMEM)))")
    }

}
