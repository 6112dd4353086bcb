import NIOEmbedded
import NIOHTTP1
import Testing
@testable import OrchestratorHTTP

/// Hummingbird closes a connection after its answer only for `connection: close` exactly, and sees requests without
/// their HTTP version: the marker says so for every request that does not keep its connection alive.
@Suite struct ConnectionCloseMarkerTests {
    func passed(_ version: HTTPVersion, _ headers: [(String, String)]) throws -> HTTPRequestHead? {
        let channel = EmbeddedChannel(handler: ConnectionCloseMarker())
        defer { _ = try? channel.finish() }
        let head = HTTPRequestHead(version: version, method: .GET, uri: "/api/v1/status", headers: HTTPHeaders(headers))
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        guard case .head(let out)? = try channel.readInbound(as: HTTPServerRequestPart.self) else { return nil }
        return out
    }

    @Test func http10WithoutKeepAliveAndCloseInAnySpellingAreMarked() throws {
        for (version, headers) in [
            (HTTPVersion.http1_0, [("Host", "127.0.0.1")]),
            (.http1_1, [("Connection", "Close")]),
            (.http1_1, [("Connection", "TE, close")]),
        ] {
            let head = try #require(try passed(version, headers))
            #expect(head.headers["connection"] == ["close"], "\(version) \(headers)")
        }
    }

    @Test func connectionsThatStayAliveAreLeftAsTheyCame() throws {
        for (version, headers) in [
            (HTTPVersion.http1_1, [("Host", "127.0.0.1")]),
            (.http1_0, [("Connection", "keep-alive")]),
        ] {
            let head = try #require(try passed(version, headers))
            #expect(head.headers["connection"] == headers.filter { $0.0 == "Connection" }.map(\.1), "\(version) \(headers)")
        }
    }
}
