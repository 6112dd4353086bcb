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
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Messages received so far (each call drains what is waiting).
    func receive() -> [String] { receiveStamped().map(\.message) }

    /// Messages with the time the kernel received each one (`SO_TIMESTAMPNS`, seconds since the epoch), so
    /// the spacing of datagrams is measured exactly, however late the test gets around to reading them.
    /// Reads until nothing has arrived for 100 ms, or at least until `until` (seconds since the epoch).
    func receiveStamped(until: Double = 0) -> [(at: Double, message: String)] {
        var messages: [(at: Double, message: String)] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var control = [UInt8](repeating: 0, count: 128)
        while true {
            var arrived: Double?
            let count = buffer.withUnsafeMutableBytes { data in
                control.withUnsafeMutableBytes { controlBytes in
                    var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                    return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                        var header = msghdr()
                        header.msg_iov = vectorPointer
                        header.msg_iovlen = 1
                        header.msg_control = controlBytes.baseAddress
                        header.msg_controllen = controlBytes.count
                        let count = recvmsg(fd, &header, 0)
                        guard count > 0, header.msg_controllen >= MemoryLayout<cmsghdr>.size + MemoryLayout<timespec>.size else {
                            return count
                        }
                        let cmsg = controlBytes.load(as: cmsghdr.self)
                        if cmsg.cmsg_level == SOL_SOCKET, cmsg.cmsg_type == SCM_TIMESTAMPNS {
                            let stamp = controlBytes.loadUnaligned(fromByteOffset: MemoryLayout<cmsghdr>.size, as: timespec.self)
                            arrived = Double(stamp.tv_sec) + Double(stamp.tv_nsec) / 1e9
                        }
                        return count
                    }
                }
            }
            if count > 0 {
                messages.append((arrived ?? .nan, String(decoding: buffer[..<count], as: UTF8.self)))
            } else if Date().timeIntervalSince1970 >= until {
                break
            }
        }
        return messages
    }
}

@Suite(.serialized, .timeLimit(.minutes(2)))
struct SystemdNotifyTests {
    @Test func daemonSendsReadyStatusWatchdogAndStopping() throws {
        // systemd kills a service that lets WATCHDOG_USEC pass without a ping; the daemon pings every half of it.
        let watchdog = 1.0
        let instance = try TestInstance(config: testConfig(handler: #"command = ["true"]"#))
        let listener = try NotifyListener(path: instance.path("notify.sock"))
        try instance.startDaemon(environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000"])
        // A deliberate window of several intervals: what matters is the spacing of the pings in it.
        let stamped = listener.receiveStamped(until: Date().timeIntervalSince1970 + 5 * watchdog)
        var received = stamped.map(\.message)
        let ready = try #require(stamped.first { $0.message.contains("READY=1") }, "\(received)")
        let pings = stamped.filter { $0.message == "WATCHDOG=1" }.map(\.at)
        try #require(pings.count >= 6, "about 10 pings in 5 s at half of WATCHDOG_USEC; got \(pings.count)")
        #expect(pings.allSatisfy { !$0.isNaN }, "every datagram carries its kernel timestamp")
        if let first = pings.first { #expect(first - ready.at < watchdog, "the first ping came \(first - ready.at) s after READY") }
        let gaps = zip(pings.dropFirst(), pings).map { $0 - $1 }
        // Every gap below WATCHDOG_USEC, or systemd would have killed the daemon. Pinging at half leaves the
        // other half for scheduling noise; pinging at the full interval fails here, and so does a burst.
        #expect(gaps.allSatisfy { $0 < watchdog }, "gaps \(gaps)")
        #expect(gaps.allSatisfy { $0 > 0.3 * watchdog }, "pings come more often than every half interval: \(gaps)")
        let middle = gaps.sorted()[gaps.count / 2]
        #expect(middle > 0.45 * watchdog && middle < 0.7 * watchdog, "median gap \(middle) s, expected about half of \(watchdog) s")

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
