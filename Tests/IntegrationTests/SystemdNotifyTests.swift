#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// A datagram socket standing in for systemd's notify socket.
final class NotifyListener {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Messages received so far (each call drains what is waiting).
    func receive() -> [String] {
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            messages.append(String(decoding: buffer[..<count], as: UTF8.self))
        }
        return messages
    }
}

@Suite(.serialized)
struct SystemdNotifyTests {
    @Test func daemonSendsReadyStatusWatchdogAndStopping() throws {
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        let listener = try NotifyListener(path: instance.path("notify.sock"))
        try instance.startDaemon(environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "200000"])
        var received: [String] = []
        try waitUntil("READY=1 and a watchdog ping arrive", timeout: 30) {
            received += listener.receive()
            return received.contains { $0.contains("READY=1") } && received.filter { $0 == "WATCHDOG=1" }.count >= 2
        }
        try instance.drop("one.txt")
        try waitUntil("a STATUS line arrives", timeout: 30) {
            received += listener.receive()
            return received.contains { $0.hasPrefix("STATUS=") && $0.contains("files processed") }
        }
        #expect(instance.stopDaemon() == 0)
        received += listener.receive()
        #expect(received.contains { $0.contains("STOPPING=1") })
    }
}
