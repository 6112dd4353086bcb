import Foundation
import Hummingbird
import Logging
import NIOEmbedded
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
}

/// Collects a response body.
final class CollectingWriter: ResponseBodyWriter, @unchecked Sendable {
    var bytes: [UInt8] = []
    var text: String { String(decoding: bytes, as: UTF8.self) }
    func write(_ buffer: ByteBuffer) async throws { bytes += buffer.readableBytesView }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
