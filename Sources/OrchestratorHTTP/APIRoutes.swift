import Dispatch
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import OrchestratorConfig
import OrchestratorDaemon
import OrchestratorDashboard
import OrchestratorStore

/// The routes of SPEC section 9 onto the command library.
struct APIRoutes: Sendable {
    let handle: DaemonHandle
    let metrics: (@Sendable () -> String)?

    /// Commands read and write files and the store, and may wait for the dispatcher's answer: never on the
    /// event loop or Swift's few cooperative threads.
    private static let work = DispatchQueue(label: "orchestrator.http.work", attributes: .concurrent)
    /// One per process, as the server is.
    static let statusMemo = StatusMemo()

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let api = router.group("api/v1")
        api.get("openapi.json") { _, _ in Self.json(200, OpenAPIDocument.text) }
        api.get("status") { _, _ in
            try await run { config in
                try Self.statusMemo.answer(now: DispatchTime.now().uptimeNanoseconds) { try Reports.status(config: config, json: true) }
            }
        }
        api.get("tasks") { _, _ in try await run { config in try TaskCommands.list(config: config, json: true) } }
        api.get("jobs") { request, _ in
            let parameters = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
            let query: JobQuery
            switch JobQuery.parse(parameters) {
            case .success(let parsed): query = parsed
            case .failure(let error): return Self.error(error)
            }
            return try await run { config in
                try APICommands.jobs(config: config, filter: query.filter, limit: query.limit) { JobCursor.encode(beforeID: $0) }
            }
        }
        api.get("jobs/:id") { _, context in
            let id = try jobID(context)
            return try await run { config in
                try APICommands.requireJob(config: config, id: id)
                return try Reports.show(config: config, target: "id:\(id)", json: true, workingDirectory: "/")
            }
        }
        api.post("jobs/:id/cancel") { request, context in
            let id = try jobID(context)
            let body = try await object(request, allowed: ["reason"])
            let reason = try body.string("reason")
            return try await run { config in
                try APICommands.requireJob(config: config, id: id)
                let message = try InterventionCommands.cancel(config: config, target: "id:\(id)", reason: reason, workingDirectory: "/")
                return try APICommands.render(["job": id, "message": message])
            }
        }
        api.post("jobs/:id/priority") { request, context in
            let id = try jobID(context)
            let body = try await object(request, allowed: ["priority"], required: ["priority"])
            guard let priority = body.wholeNumber("priority"), (1...10).contains(priority) else {
                throw APIError(400, "priority: must be a whole number from 1 to 10")
            }
            return try await run { config in
                try APICommands.requireJob(config: config, id: id)
                let message = try InterventionCommands.setPriority(config: config, target: "id:\(id)", priority: priority, workingDirectory: "/")
                return try APICommands.render(["job": id, "priority": priority, "message": message])
            }
        }
        api.post("reload") { request, _ in
            _ = try await object(request, allowed: [])
            let outcome = await withCheckedContinuation { continuation in handle.reload { continuation.resume(returning: $0) } }
            switch outcome {
            case .applied(let loadedAt): return Self.json(200, try APICommands.render(["config_loaded_at": loadedAt]))
            case .refused(let problems):
                return Self.json(400, try APICommands.render(["error": "config reload refused; the config in force is unchanged", "problems": problems]))
            case .stopping: throw APIError(503, "the daemon is stopping")
            }
        }
        api.post("replay") { request, _ in
            let body = try await object(request, allowed: ["paths", "all"])
            let all = try body.bool("all") ?? false
            let paths = try body.strings("paths") ?? []
            guard all != !paths.isEmpty else { throw APIError(400, "give either \"paths\" (a non-empty list) or \"all\": true") }
            return try await run { config in
                let failedParent = (config.paths.failed as NSString).deletingLastPathComponent
                let outcome = try Replay.run(config: config, paths: paths, all: all, dryRun: false, workingDirectory: failedParent)
                return try APICommands.render(["replayed": outcome.lines, "errors": outcome.problems.map(Self.withoutPrefix)])
            }
        }
        for (verb, paused) in [("pause", true), ("resume", false)] {
            api.post("handlers/:name/\(verb)") { request, context in
                let name = try decodedName(context)
                _ = try await object(request, allowed: [])
                return try await run { config in
                    let message = try InterventionCommands.setHandlerPaused(config: config, handler: name, paused: paused)
                    return try APICommands.render(["handler": name, "paused": paused, "message": message])
                }
            }
        }
        api.post("tasks/:name/run") { request, context in
            let name = try decodedName(context)
            _ = try await object(request, allowed: [])
            return try await run { config in
                let (_, lines) = try Batch.taskRun(config: config, task: name, logFormat: .human)
                return try APICommands.render(["task": name, "message": lines.joined(separator: "\n")])
            }
        }
        for (verb, enabled) in [("enable", true), ("disable", false)] {
            api.post("tasks/:name/\(verb)") { request, context in
                let name = try decodedName(context)
                _ = try await object(request, allowed: [])
                return try await run { config in
                    let message = try TaskCommands.setEnabled(config: config, task: name, enabled: enabled)
                    return try APICommands.render(["task": name, "enabled": enabled, "message": message])
                }
            }
        }
        // The dashboard's chart: jobs ended per minute over the last `window` seconds (default an hour).
        api.get("activity") { request, _ in
            let text = request.uri.queryParameters["window"].map(String.init) ?? "3600"
            guard let window = Int(text), (60...86_400).contains(window) else {
                throw APIError(400, "window: must be whole seconds from 60 to 86400")
            }
            return try await run { config in try Reports.activity(config: config, window: window) }
        }
        api.post("events/:name") { request, context in
            let name = try decodedName(context)
            let body = try await Self.body(request, limit: EventBodies.maximumSize)
            let text = try await run(status: 202) { config in
                let id = try APICommands.fireEvent(config: config, name: name, body: body.map { Array($0.readableBytesView) })
                return try APICommands.render(["event": id])
            }
            return text
        }
        Self.addMetrics(to: router, metrics)
        return router
    }

    /// `GET /metrics`: the renderer's Prometheus text, or 404 without one. Rendered off the event loop: it counts
    /// the gauges on the dispatcher's queue and may wait for it.
    static func addMetrics(to router: Router<BasicRequestContext>, _ metrics: (@Sendable () -> String)?) {
        router.get("metrics") { _, _ in
            guard let metrics else { throw APIError(404, "metrics are not available in this build") }
            let text = await withCheckedContinuation { continuation in work.async { continuation.resume(returning: metrics()) } }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }

    /// The dashboard's files: they carry no data (the page reads it from the API with the token), so they load
    /// without one, and a browser without the token gets the page's login form.
    static func dashboardFile(_ request: Request) -> Response? {
        guard request.method == .get || request.method == .head,
            let asset = DashboardAssets.asset(forPath: request.uri.path)
        else { return nil }
        return Response(
            status: .ok,
            headers: [.contentType: asset.contentType, .cacheControl: "no-cache", .init("X-Content-Type-Options")!: "nosniff"],
            body: .init(byteBuffer: ByteBuffer(string: asset.text)))
    }

    // MARK: Answering

    /// Every answer goes through here: another site's requests are refused, then the token, then the route; errors
    /// become `{"error": ...}`.
    static func answer(
        _ request: Request, context: BasicRequestContext, token: String?, responder: some HTTPResponder<BasicRequestContext>
    ) async -> Response {
        if let refusal = CrossSiteGuard.refusal(
            method: request.method.rawValue, host: request.head.authority, origin: request.headers[.origin],
            fetchSite: request.headers[.init("Sec-Fetch-Site")!], tokenless: token == nil)
        {
            return error(APIError(403, refusal))
        }
        if let file = dashboardFile(request) { return file }
        if let token, !BearerAuth.accepts(request.headers[.authorization], token: token) {
            var response = error(APIError(401, "missing or wrong bearer token"))
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        // HEAD is answered as GET, without the body (the router knows GET routes only).
        guard request.method != .head else {
            var head = request.head
            head.method = .get
            var response = await answer(Request(head: head, body: request.body), context: context, token: token, responder: responder)
            response.body = ResponseBody()
            return response
        }
        // A change made through the API is seen by the next status answer.
        defer { if request.method != .get { statusMemo.invalidate() } }
        do {
            let response = try await responder.respond(to: request, context: context)
            // The router answers an unknown route with an empty 404; every error here has a JSON body.
            if response.status == .notFound, response.headers[.contentType] == nil {
                let allowed = AllowedMethods.methods(forPath: request.uri.path)
                // A documented path asked with its method names something that is not there (a dashboard file).
                guard !allowed.isEmpty, !allowed.contains(request.method.rawValue) else {
                    return error(APIError(404, "no route \(request.method) \(request.uri.path)"))
                }
                var refused = error(APIError(405, "\(request.method) is not allowed on \(request.uri.path) (allowed: \(allowed.joined(separator: ", ")))"))
                refused.headers[.allow] = allowed.joined(separator: ", ")
                return refused
            }
            return response
        } catch let failure as APIError {
            return error(failure)
        } catch let failure as HTTPError {
            return error(APIError(Int(failure.status.code), failure.body ?? failure.status.reasonPhrase))
        } catch let failure as HTTPParserError {
            // A body the client framed wrongly (a bad chunk size, an encoding it does not declare): its fault.
            return error(APIError(400, "malformed request: \(failure)"))
        } catch {
            return Self.error(APIError(500, "\(error)"))
        }
    }

    static func json(_ status: Int, _ text: String) -> Response {
        Response(
            status: .init(code: status), headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    static func error(_ failure: APIError) -> Response {
        json(failure.status, (try? APICommands.render(["error": failure.message])) ?? "{\"error\": \"internal error\"}")
    }

    static func withoutPrefix(_ line: String) -> String { line.hasPrefix("error: ") ? String(line.dropFirst(7)) : line }

    /// Runs a command with the config in force, off the event loop; its errors as HTTP statuses.
    private func run(status: Int = 200, _ body: @escaping @Sendable (Config) throws -> String) async throws -> Response {
        let config = handle.config
        let result: Result<String, APIError> = await withCheckedContinuation { continuation in
            Self.work.async {
                do {
                    continuation.resume(returning: .success(try body(config)))
                } catch let error as CommandError {
                    continuation.resume(returning: .failure(APIError(error)))
                } catch let error as APIError {
                    continuation.resume(returning: .failure(error))
                } catch {
                    continuation.resume(returning: .failure(APIError(500, "\(error)")))
                }
            }
        }
        switch result {
        case .success(let text): return Self.json(status, text)
        case .failure(let error): throw error
        }
    }

    /// A handler's, task's or event's name from the path, percent-decoded as clients encode it (`my%20task`,
    /// `web%3Ahook`); the router hands the segment over as it came.
    private func decodedName(_ context: BasicRequestContext) throws -> String {
        let raw = try context.parameters.require("name")
        guard let name = raw.removingPercentEncoding else { throw APIError(400, "name \"\(raw)\" is not valid percent-encoding") }
        return name
    }

    private func jobID(_ context: BasicRequestContext) throws -> Int64 {
        let text = try context.parameters.require("id")
        guard let id = Int64(text), id > 0 else { throw APIError(400, "job id \"\(text)\" is not a positive whole number") }
        return id
    }

    // MARK: Request bodies

    /// The body, nil when empty; 413 above `limit`.
    static func body(_ request: Request, limit: Int) async throws -> ByteBuffer? {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError(413, "the body is larger than \(limit) bytes")
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return buffer.readableBytes == 0 ? nil : buffer
        } catch is NIOTooManyBytesError {
            throw APIError(413, "the body is larger than \(limit) bytes")
        }
    }

    /// A JSON object body (an empty body is an empty object) with no keys but `allowed`.
    private func object(_ request: Request, allowed: Set<String>, required: Set<String> = []) async throws -> JSONObject {
        guard let buffer = try await Self.body(request, limit: 64 * 1024) else {
            if let missing = required.sorted().first { throw APIError(400, "the body must be a JSON object with \"\(missing)\"") }
            return JSONObject(values: [:])
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])
        } catch {
            throw APIError(400, "the body is not valid JSON")
        }
        guard let values = parsed as? [String: Any] else { throw APIError(400, "the body must be a JSON object") }
        if let unknown = values.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError(400, "unknown key \"\(unknown)\" in the body")
        }
        if let missing = required.sorted().first(where: { values[$0] == nil }) {
            throw APIError(400, "the body must have \"\(missing)\"")
        }
        return JSONObject(values: values)
    }
}

/// A request's JSON object, read with type checks that answer 400.
struct JSONObject {
    let values: [String: Any]

    func string(_ key: String) throws -> String? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw APIError(400, "\(key): must be a string") }
        // Stored and passed on as C strings, which a NUL would cut short (a cancel's reason lost its end).
        guard !text.utf8.contains(0) else { throw APIError(400, "\(key): must not contain a NUL character") }
        return text
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        guard Self.isBoolean(value), let flag = value as? Bool else {
            throw APIError(400, "\(key): must be true or false")
        }
        return flag
    }

    /// A JSON number without a fraction; `true` and `false` are not numbers.
    func wholeNumber(_ key: String) -> Int? {
        guard let value = values[key], !Self.isBoolean(value) else { return nil }
        return value as? Int
    }

    /// Foundation reads JSON's `true`, `false`, `1` and `0` into numbers that each bridge to both `Bool` and `Int`
    /// (`1 is Bool`): `{"priority": 1}` was refused as a boolean and `{"all": 1}` taken for `true`. Booleans are the
    /// numbers of type `char`.
    static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    func strings(_ key: String) throws -> [String]? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        guard let list = value as? [Any], let texts = list as? [String] else { throw APIError(400, "\(key): must be a list of strings") }
        guard !texts.contains(where: { $0.utf8.contains(0) }) else { throw APIError(400, "\(key): must not contain a NUL character") }
        return texts
    }
}
