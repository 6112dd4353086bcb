import Foundation
import OrchestratorConfig
import OrchestratorDaemon
import OrchestratorStore
import Testing
@testable import OrchestratorHTTP

struct JobCursorTests {
    @Test func aCursorRoundTripsAndIsOpaque() {
        for id: Int64 in [1, 42, 1_000_000, Int64.max] {
            let cursor = JobCursor.encode(beforeID: id)
            #expect(JobCursor.decode(cursor) == id)
            #expect(!cursor.contains(String(id)) || id < 10)
            #expect(cursor.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        }
    }

    @Test func anythingElseIsRefused() {
        for text in ["", "42", "djE6", "v1:5", JobCursor.encode(beforeID: 5) + "x", "djI6NQ", "djE6LTU", "djE6MA"] {
            #expect(JobCursor.decode(text) == nil, "\(text)")
        }
    }
}

struct APIErrorTests {
    @Test func exitCodesMapToStatuses() {
        #expect(APIError(CommandError(.usage, "error: bad")).status == 400)
        #expect(APIError(CommandError(.badInput, "error: outside Failed/")).status == 400)
        #expect(APIError(CommandError(.badInput, "error: no job").about(.unknown)).status == 404)
        #expect(APIError(CommandError(.badInput, "error: finished").about(.conflict)).status == 409)
        #expect(APIError(CommandError(.config, "f:1: error: x")).status == 400)
        #expect(APIError(CommandError(.unavailable, "error: busy")).status == 503)
        #expect(APIError(CommandError(.failure, "error: disk")).status == 500)
    }

    @Test func theMessageLosesItsPrefixOnly() {
        #expect(APIError(CommandError(.usage, "error: bad thing")).message == "bad thing")
        #expect(APIError(CommandError(.config, "/c.toml:3: error: x")).message == "/c.toml:3: error: x")
    }
}

struct JobQueryTests {
    @Test func everyParameterIsRead() throws {
        let cursor = JobCursor.encode(beforeID: 77)
        let query = try JobQuery.parse([
            ("state", "failed"), ("handler", "h"), ("task", "t"), ("since", "2026-01-02T03:04:05Z"), ("limit", "7"), ("cursor", cursor),
        ]).get()
        #expect(query.filter == JobFilter(state: .failed, handler: "h", task: "t", since: 1_767_323_045, beforeID: 77))
        #expect(query.limit == 7)
        #expect(try JobQuery.parse([("since", "1767323045.5")]).get().filter.since == 1_767_323_045.5)
        #expect(try JobQuery.parse([("since", "2026-01-02T03:04:05.250Z")]).get().filter.since == 1_767_323_045.25)
        #expect(try JobQuery.parse([]).get() == JobQuery())
    }

    @Test func badParametersAre400() {
        for parameters in [[("state", "bogus")], [("limit", "0")], [("limit", "501")], [("limit", "x")], [("since", "yesterday")],
                           [("cursor", "nope")], [("colour", "red")], [("handler", "")]] {
            guard case .failure(let error) = JobQuery.parse(parameters) else {
                Issue.record("accepted \(parameters)")
                continue
            }
            #expect(error.status == 400)
        }
    }
}

struct BearerAuthTests {
    @Test func onlyTheExactTokenPasses() {
        #expect(BearerAuth.accepts("Bearer s3cret", token: "s3cret"))
        #expect(BearerAuth.accepts("bearer s3cret", token: "s3cret"))
        #expect(!BearerAuth.accepts(nil, token: "s3cret"))
        #expect(!BearerAuth.accepts("Bearer ", token: "s3cret"))
        #expect(!BearerAuth.accepts("Bearer s3cre", token: "s3cret"))
        #expect(!BearerAuth.accepts("Bearer s3cretX", token: "s3cret"))
        #expect(!BearerAuth.accepts("Bearer S3cret", token: "s3cret"))
        #expect(!BearerAuth.accepts("Basic s3cret", token: "s3cret"))
        #expect(!BearerAuth.accepts("s3cret", token: "s3cret"))
    }
}

struct ListenAddressTests {
    @Test func addressesParse() throws {
        #expect(try ListenAddress.parse("127.0.0.1:8765").get() == ListenAddress(host: "127.0.0.1", port: 8765))
        #expect(try ListenAddress.parse("[::1]:80").get() == ListenAddress(host: "::1", port: 80))
        #expect(try ListenAddress.parse("localhost:0").get().port == 0)
        #expect(try ListenAddress.parse("0.0.0.0:8765").get().isLoopback == false)
        #expect(try ListenAddress.parse("127.1.2.3:1").get().isLoopback)
        #expect(try ListenAddress.parse("[::1]:1").get().isLoopback)
        #expect(try ListenAddress.parse("[::]:1").get().isLoopback == false)
        #expect(try ListenAddress.parse("[::1]:8765").get().description == "[::1]:8765")
    }

    @Test func badAddressesAreRefused() {
        for text in ["", "8765", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:http", "example.com:80",
                     "::1:80", "[::1]80", "[nope]:80", "256.0.0.1:80", "127.0.0.1:+80"] {
            if case .success = ListenAddress.parse(text) { Issue.record("accepted \(text)") }
        }
    }
}

struct OpenAPIDocumentTests {
    @Test func theEmbeddedDocumentIsTheFileInTheRepository() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/OrchestratorHTTP/openapi.json")
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(OpenAPIDocument.text + "\n" == text, "run scripts/embed-openapi")
        let object = try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text.utf8)) as? [String: Any]
        #expect(object?["openapi"] as? String == "3.1.0")
    }
}

/// The methods a path answers, from the published OpenAPI document.
struct AllowedMethodsTests {
    @Test func aDocumentedPathSaysItsMethods() {
        #expect(AllowedMethods.methods(forPath: "/api/v1/status") == ["GET"])
        #expect(AllowedMethods.methods(forPath: "/api/v1/jobs/12/cancel") == ["POST"])
        #expect(AllowedMethods.methods(forPath: "/api/v1/tasks/my%20task/enable") == ["POST"])
        #expect(AllowedMethods.methods(forPath: "/api/v1/jobs/12?x=1") == ["GET"])
    }

    @Test func anUnknownPathHasNone() {
        #expect(AllowedMethods.methods(forPath: "/api/v1/nope").isEmpty)
        #expect(AllowedMethods.methods(forPath: "/api/v1/jobs/12/cancel/more").isEmpty)
    }
}

@Suite struct CrossSiteGuardTests {
    @Test func hostNamesAreReadFromTheHostHeader() {
        #expect(CrossSiteGuard.hostName("127.0.0.1:8765") == "127.0.0.1")
        #expect(CrossSiteGuard.hostName("[::1]:8765") == "::1")
        #expect(CrossSiteGuard.hostName("LocalHost") == "localhost")
        #expect(CrossSiteGuard.isLocalName("localhost.") && CrossSiteGuard.isLocalName("app.localhost"))
        #expect(CrossSiteGuard.isLocalName("127.3.4.5") && CrossSiteGuard.isLocalName("::1"))
        #expect(!CrossSiteGuard.isLocalName("localhost.attacker.example") && !CrossSiteGuard.isLocalName("10.0.0.1"))
    }

    @Test func anOriginMustBeTheAddressTheRequestNames() {
        #expect(CrossSiteGuard.refusal(method: "POST", host: "127.0.0.1:8765", origin: "HTTP://127.0.0.1:8765", fetchSite: nil, tokenless: true) == nil)
        #expect(CrossSiteGuard.refusal(method: "DELETE", host: "127.0.0.1:8765", origin: "http://127.0.0.1:8766", fetchSite: nil, tokenless: true) != nil)
        #expect(CrossSiteGuard.refusal(method: "POST", host: nil, origin: "http://127.0.0.1:8765", fetchSite: nil, tokenless: true) != nil)
        #expect(CrossSiteGuard.refusal(method: "POST", host: "x.example", origin: "http://y.example", fetchSite: "cross-site", tokenless: false) == nil)
        #expect(CrossSiteGuard.refusal(method: "POST", host: "127.0.0.1:8765", origin: nil, fetchSite: "same-site", tokenless: true) != nil)
        #expect(CrossSiteGuard.refusal(method: "HEAD", host: "127.0.0.1:8765", origin: "http://evil.example", fetchSite: "cross-site", tokenless: true) == nil)
    }
}

/// JSON's booleans and numbers read apart: `1` is a priority, not `true`; `true` is no priority.
@Suite struct JSONObjectTests {
    func object(_ text: String) throws -> JSONObject {
        JSONObject(values: try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]))
    }

    @Test func numbersAndBooleansAreNotTakenForEachOther() throws {
        let body = try object(#"{"one": 1, "zero": 0, "ten": 10, "yes": true, "no": false, "half": 1.5}"#)
        #expect(body.wholeNumber("one") == 1 && body.wholeNumber("zero") == 0 && body.wholeNumber("ten") == 10)
        #expect(body.wholeNumber("yes") == nil && body.wholeNumber("no") == nil && body.wholeNumber("half") == nil)
        #expect(try body.bool("yes") == true && body.bool("no") == false)
        #expect(throws: APIError.self) { try body.bool("one") }
        #expect(throws: APIError.self) { try body.bool("zero") }
    }

    /// A NUL would cut the text short where it is stored (a cancel's reason kept "disk A" of "disk A\0 and B").
    @Test func textWithANulIsRefused() throws {
        let body = try object(#"{"reason": "disk A\u0000 and disk B", "paths": ["a", "b\u0000c"], "fine": "ok"}"#)
        #expect(throws: APIError.self) { try body.string("reason") }
        #expect(throws: APIError.self) { try body.strings("paths") }
        #expect(try body.string("fine") == "ok")
    }
}

@Suite struct IdleConnectionsTests {
    /// Full, the longest-waiting idle connection makes room; one with a request in progress never does.
    @Test func theLongestIdleMakesRoomAndABusyOneNever() {
        var connections = IdleConnections<Int>(limit: 3)
        #expect(connections.opened(1, at: 10) == nil)
        #expect(connections.opened(2, at: 20) == nil)
        connections.requestBegan(1)
        #expect(connections.opened(3, at: 30) == 2)  // 1 is answering a request.
        connections.closed(2)
        connections.requestAnswered(1, at: 40)
        #expect(connections.opened(4, at: 50) == 3)  // 3 has waited since 30, 1 since 40.
        connections.closed(3)
        connections.requestBegan(1)
        connections.requestBegan(4)
        #expect(connections.opened(5, at: 60) == nil)  // Every other one is busy: nothing is closed.
        #expect(connections.count == 3)
    }
}
