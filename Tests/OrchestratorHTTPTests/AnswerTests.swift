import Foundation
import Hummingbird
import Logging
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import OrchestratorHTTP

/// What every request goes through (`APIRoutes.answer`): the token, the route, errors as JSON; and the
/// `/metrics` seam.
struct AnswerTests {
    func call(_ path: String, authorization: String? = nil, token: String? = nil, metrics: (@Sendable () -> String)?) async throws
        -> (Int, String, String)
    {
        let router = Router(context: BasicRequestContext.self)
        APIRoutes.addMetrics(to: router, metrics)
        router.get("boom") { _, _ -> Response in throw APIError(409, "it has already finished") }
        var head = HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: path)
        if let authorization { head.headerFields[.authorization] = authorization }
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
        let context = BasicRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let response = await APIRoutes.answer(request, context: context, token: token, responder: router.buildResponder())
        var text = ""
        let writer = CollectingWriter()
        try await response.body.write(writer)
        text = writer.text
        return (Int(response.status.code), response.headers[.contentType] ?? "", text)
    }

    @Test func metricsAreServedByTheRendererOr404() async throws {
        let (status, type, body) = try await call("/metrics", metrics: { "orchestrator_jobs_total 3\n" })
        #expect(status == 200)
        #expect(type == "text/plain; version=0.0.4; charset=utf-8")
        #expect(body == "orchestrator_jobs_total 3\n")
        let (missing, missingType, missingBody) = try await call("/metrics", metrics: nil)
        #expect(missing == 404)
        #expect(missingType.hasPrefix("application/json"))
        #expect(missingBody.contains("\"error\""))
    }

    @Test func theTokenGuardsEveryRouteAndErrorsAreJSON() async throws {
        let render: @Sendable () -> String = { "x 1\n" }
        #expect(try await call("/metrics", token: "s3cret", metrics: render).0 == 401)
        #expect(try await call("/metrics", authorization: "Bearer nope", token: "s3cret", metrics: render).0 == 401)
        #expect(try await call("/nowhere", authorization: "Bearer nope", token: "s3cret", metrics: render).0 == 401)
        #expect(try await call("/metrics", authorization: "Bearer s3cret", token: "s3cret", metrics: render).0 == 200)
        let (status, type, body) = try await call("/boom", metrics: render)
        #expect(status == 409 && type.hasPrefix("application/json") && body == "{\"error\":\"it has already finished\"}\n")
        let (unknown, _, unknownBody) = try await call("/nowhere", metrics: render)
        #expect(unknown == 404 && unknownBody.contains("no route GET /nowhere"))
    }

    /// Without a token, a browser page from another site must not act on the API (a `no-cors` POST needs no
    /// preflight), nor read it through a name it controls that resolves to 127.0.0.1 (DNS rebinding). Clients that
    /// are not browsers send no `Origin` and are answered as before.
    @Test func anotherSitesPageIsRefusedWithoutAToken() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.post("act") { _, _ in Response(status: .ok) }
        router.get("read") { _, _ in Response(status: .ok) }
        func status(_ method: HTTPRequest.Method, _ path: String, host: String = "127.0.0.1:8765", token: String? = nil, _ headers: [String: String] = [:]) async -> Int {
            var head = HTTPRequest(method: method, scheme: "http", authority: host, path: path)
            for (name, value) in headers { head.headerFields[.init(name)!] = value }
            if let token { head.headerFields[.authorization] = "Bearer \(token)" }
            let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
            let context = BasicRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
            return Int(await APIRoutes.answer(request, context: context, token: token, responder: router.buildResponder()).status.code)
        }
        #expect(await status(.post, "/act") == 200)
        #expect(await status(.post, "/act", ["Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"]) == 200)
        #expect(await status(.post, "/act", ["Origin": "http://localhost:18900"]) == 403)
        #expect(await status(.post, "/act", ["Origin": "null"]) == 403)
        #expect(await status(.post, "/act", ["Sec-Fetch-Site": "cross-site"]) == 403)
        #expect(await status(.get, "/read", ["Origin": "http://evil.example"]) == 200)  // Its answer stays opaque to the page.
        #expect(await status(.get, "/read", host: "attacker.example:8765") == 403)
        #expect(await status(.post, "/act", host: "attacker.example:8765", ["Origin": "http://attacker.example:8765"]) == 403)
        #expect(await status(.get, "/read", host: "localhost:8765") == 200)
        #expect(await status(.get, "/read", host: "[::1]:8765") == 200)
        // With a token a page cannot send it: any name the server is reached by is answered, from any origin (a
        // proxy in front of the dashboard), and a request without it is refused by the token.
        #expect(await status(.get, "/read", host: "myserver.lan:8765", token: "s3cret") == 200)
        #expect(await status(.post, "/act", host: "127.0.0.1:8765", token: "s3cret", ["Origin": "https://orch.example.com"]) == 200)
    }
}

extension AnswerTests {
    func answer(_ method: HTTPRequest.Method, _ path: String, router: Router<BasicRequestContext>) async throws -> (Int, String, String?) {
        let head = HTTPRequest(method: method, scheme: "http", authority: "127.0.0.1:8765", path: path)
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
        let context = BasicRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let response = await APIRoutes.answer(request, context: context, token: nil, responder: router.buildResponder())
        let writer = CollectingWriter()
        try await response.body.write(writer)
        return (Int(response.status.code), writer.text, response.headers[.allow])
    }

    /// HEAD is GET without the body (it was 405 on every API route); a documented path asked with its own method
    /// for something not there is 404, not "GET is not allowed (allowed: GET)"; a body framed wrongly is the
    /// client's fault (400), not the server's (500).
    @Test func headUnknownFilesAndBadFramingAreAnsweredAsHTTPSays() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.get("api/v1/status") { _, _ in APIRoutes.json(200, "{}") }
        router.post("api/v1/events/:name") { _, _ -> Response in throw HTTPParserError.invalidChunkSize }
        let head = try await answer(.head, "/api/v1/status", router: router)
        #expect(head.0 == 200 && head.1.isEmpty)
        let missing = try await answer(.get, "/dashboard/nope.js", router: router)
        #expect(missing.0 == 404 && missing.1.contains("no route GET /dashboard/nope.js") && missing.2 == nil)
        let wrongMethod = try await answer(.delete, "/api/v1/status", router: router)
        #expect(wrongMethod.0 == 405 && wrongMethod.2 == "GET")
        let framing = try await answer(.post, "/api/v1/events/x", router: router)
        #expect(framing.0 == 400 && framing.1.contains("malformed request"), "\(framing)")
    }
}

/// Collects a response body.
final class CollectingWriter: ResponseBodyWriter, @unchecked Sendable {
    var bytes: [UInt8] = []
    var text: String { String(decoding: bytes, as: UTF8.self) }
    func write(_ buffer: ByteBuffer) async throws { bytes += buffer.readableBytesView }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
