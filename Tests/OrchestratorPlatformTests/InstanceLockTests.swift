import Foundation
import OrchestratorPlatform
import Testing
import TestSupport

/// A record lock belongs to the file, not to its name: `keepInPlace` puts a locked file back under the name, and
/// leaves alone a replacement another process holds.
@Suite struct InstanceLockTests {
    let dir: String

    init() {
        var template = Array("/tmp/orch-lock-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    func acquired(_ path: String, shared: Bool = false) throws -> InstanceLock {
        guard case .acquired(let lock) = try InstanceLock.acquire(path, role: "watch /state", shared: shared) else {
            Issue.record("the lock was not acquired")
            throw CancellationError()
        }
        return lock
    }

    @Test func aRemovedOrReplacedLockFileIsPutBackWithItsRecord() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/daemon.lock"
        let lock = try acquired(path)
        #expect(lock.keepInPlace() == .inPlace)
        try FileManager.default.removeItem(atPath: path)
        #expect(lock.keepInPlace() == .putBack)
        #expect(lock.keepInPlace() == .inPlace)
        #expect(InstanceLock.writtenRole(path).map { "\($0.pid) \($0.role)" } == "\(getpid()) watch /state")
        // Replaced by a file nobody locks (a second start that gave up, an editor's save): put back over it.
        try "someone else's\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(lock.keepInPlace() == .putBack)
        #expect(InstanceLock.writtenRole(path)?.pid == getpid())
        // No staging file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["daemon.lock"])
    }

    /// Another process's lock on the replacement (here a python3 holding `lockf` on it) is named, not overwritten.
    @Test func aReplacementAnotherProcessHoldsIsNamed() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/inbox.lock"
        let lock = try acquired(path)
        let holder = try PythonHolder(script: """
            import fcntl, os, sys
            fd = os.open(sys.argv[1] + ".new", os.O_RDWR | os.O_CREAT)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(sys.argv[1] + ".new", sys.argv[1])
            print("held", flush=True)
            sys.stdin.read()
            """, arguments: [path])
        try #require(holder.report() == "held")
        #expect(lock.keepInPlace() == .takenBy(pid: holder.pid))
        holder.release()
        #expect(lock.keepInPlace() == .putBack)
    }
}
