import Foundation
import Glibc

/// A TCP proxy in front of the test server that can lose a COMMIT's answer on purpose: armed, it forwards the next
/// COMMIT a client sends, waits until `applied` says the server has applied it, then closes that client's connection
/// without passing on anything the server answered since. What a network cut or a crash right after the commit does,
/// made certain instead of a race.
final class CommitCuttingProxy: @unchecked Sendable {
    private let listener: Int32
    let port: UInt16
    private let serverPort: UInt16
    private let lock = NSLock()
    private var armed: (@Sendable () -> Bool)?
    private var cuts = 0
    /// After a cut, new connections are refused until then: the server looks away for that long.
    private var refusingUntil = Date.distantPast
    private var awayAfterCut: TimeInterval = 0
    private var stopped = false

    init(serverPort: UInt16) throws {
        self.serverPort = serverPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard listener >= 0, bound == 0, listen(listener, 16) == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        Thread { [self] in acceptLoop() }.start()
    }

    deinit {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// The next COMMIT any client sends is applied and its answer lost (see the type); then, for `away` seconds, every
    /// new connection is refused, as if the server had gone away.
    func loseTheNextCommitsAnswer(away: TimeInterval = 0, once applied: @escaping @Sendable () -> Bool) {
        lock.withLock {
            armed = applied
            awayAfterCut = away
        }
    }

    var cutCount: Int { lock.withLock { cuts } }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if lock.withLock({ stopped }) { return }
                continue
            }
            if lock.withLock({ Date() < refusingUntil }) {
                close(client)
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: serverPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            Thread { [self] in relay(client: client, server: server) }.start()
        }
    }

    private func relay(client: Int32, server: Int32) {
        defer {
            close(client)
            close(server)
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var descriptors = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: server, events: Int16(POLLIN), revents: 0)]
        while true {
            guard poll(&descriptors, 2, -1) > 0 else { continue }
            if descriptors[0].revents != 0 {
                let count = read(client, &buffer, buffer.count)
                guard count > 0, Self.writeAll(server, buffer[..<count]) else { return }
                let commit = Array("COMMIT".utf8)
                if buffer[..<count].firstRange(of: commit) != nil,
                    let applied = lock.withLock({ () -> (@Sendable () -> Bool)? in defer { armed = nil }; return armed })
                {
                    // The server's answers stay unread until it has applied the COMMIT; then the client is cut off.
                    let deadline = Date().addingTimeInterval(20)
                    while !applied(), Date() < deadline { usleep(10_000) }
                    lock.withLock {
                        cuts += 1
                        refusingUntil = Date().addingTimeInterval(awayAfterCut)
                    }
                    return
                }
            }
            if descriptors[1].revents != 0 {
                let count = read(server, &buffer, buffer.count)
                guard count > 0, Self.writeAll(client, buffer[..<count]) else { return }
            }
        }
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }
}
