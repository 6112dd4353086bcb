import Foundation
import OrchestratorConfig
import OrchestratorCore
import OrchestratorDaemon
import OrchestratorStore

/// The opaque `next` of a job page: where the next page starts. Clients pass it back unchanged; its text
/// is versioned so that its content can change without old cursors being misread.
public enum JobCursor {
    public static func encode(beforeID id: Int64) -> String {
        Data("v1:\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// nil for anything `encode` did not make.
    public static func decode(_ text: String) -> Int64? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let plain = String(data: data, encoding: .utf8), plain.hasPrefix("v1:"),
            let id = Int64(plain.dropFirst(3)), id > 0
        else { return nil }
        return id
    }
}

/// An answer other than 2xx: its status and the `{"error": ...}` text.
public struct APIError: Error, Equatable, Sendable {
    public let status: Int
    public let message: String

    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    /// The CLI's exit codes as HTTP statuses: 64 → 400, 65 → 400 (404 unknown, 409 conflict), 78 → 400,
    /// 69 → 503, 1 → 500. The message is the command's error line without its `error: ` prefix.
    public init(_ error: CommandError) {
        let text = error.lines.map { $0.hasPrefix("error: ") ? String($0.dropFirst(7)) : $0 }.joined(separator: "\n")
        switch (error.status, error.subject) {
        case (.badInput, .unknown?): self.init(404, text)
        case (.badInput, .conflict?): self.init(409, text)
        case (.usage, _), (.badInput, _), (.config, _): self.init(400, text)
        case (.unavailable, _): self.init(503, text)
        case (.ok, _), (.failure, _): self.init(500, text)
        }
    }
}

/// `GET /api/v1/jobs` query parameters, checked.
public struct JobQuery: Equatable, Sendable {
    public static let defaultLimit = 50
    public static let maximumLimit = 500

    public var filter = JobFilter()
    public var limit = JobQuery.defaultLimit

    /// `since`: an ISO-8601 instant (`2026-01-02T03:04:05Z`, fractional seconds allowed) or Unix seconds.
    public static func parse(_ parameters: [(String, String)]) -> Result<JobQuery, APIError> {
        var query = JobQuery()
        for (key, value) in parameters {
            switch key {
            case "state":
                guard let state = JobState(rawValue: value) else {
                    return .failure(APIError(400, "state: \"\(value)\" is not one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))"))
                }
                query.filter.state = state
            case "handler":
                guard !value.isEmpty else { return .failure(APIError(400, "handler: must not be empty")) }
                query.filter.handler = value
            case "task":
                guard !value.isEmpty else { return .failure(APIError(400, "task: must not be empty")) }
                query.filter.task = value
            case "since":
                guard let since = parseInstant(value) else {
                    return .failure(APIError(400, "since: \"\(value)\" is neither an ISO-8601 time nor Unix seconds"))
                }
                query.filter.since = since
            case "limit":
                guard let limit = Int(value), (1...maximumLimit).contains(limit) else {
                    return .failure(APIError(400, "limit: must be a whole number from 1 to \(maximumLimit)"))
                }
                query.limit = limit
            case "cursor":
                guard let id = JobCursor.decode(value) else { return .failure(APIError(400, "cursor: not a cursor this API gave out")) }
                query.filter.beforeID = id
            default:
                return .failure(APIError(400, "unknown parameter \"\(key)\""))
            }
        }
        return .success(query)
    }

    static func parseInstant(_ text: String) -> Double? {
        if let seconds = Double(text), seconds.isFinite, !text.contains("e"), !text.contains("E") { return seconds }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)?.timeIntervalSince1970
    }
}

/// `Authorization: Bearer TOKEN`.
public enum BearerAuth {
    /// Whether the header carries the token. Compared in time that depends on the lengths only, never on
    /// where the first difference is.
    public static func accepts(_ header: String?, token: String) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        let given = Array(header.dropFirst(7).utf8)
        let expected = Array(token.utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in 0..<expected.count {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}

/// The methods each documented route answers, read from the OpenAPI document the server publishes: a known path asked
/// with another method is answered 405 with `Allow`, not "no route" (404).
public enum AllowedMethods {
    static let routes: [(segments: [Substring], methods: [String])] = {
        guard let document = try? JSONSerialization.jsonObject(with: Data(OpenAPIDocument.text.utf8)) as? [String: Any],
            let paths = document["paths"] as? [String: Any]
        else { return [] }
        let verbs = ["get", "put", "post", "delete", "patch", "head", "options"]
        return paths.compactMap { path, item in
            guard let operations = item as? [String: Any] else { return nil }
            return (path.split(separator: "/"), verbs.filter { operations[$0] != nil }.map { $0.uppercased() })
        }
    }()

    /// The methods `path` answers; empty when no documented route has that shape (a `{name}` segment takes any one).
    public static func methods(forPath path: String) -> [String] {
        let segments = path.split(separator: "?", maxSplits: 1).first.map { $0.split(separator: "/") } ?? []
        let matching = routes.filter { route in
            route.segments.count == segments.count
                && zip(route.segments, segments).allSatisfy { template, given in template.hasPrefix("{") || template == given }
        }
        var methods: [String] = []
        for route in matching { for method in route.methods where !methods.contains(method) { methods.append(method) } }
        return methods
    }
}

/// What keeps another web site from using the API through a browser on this machine. Without a token the API
/// trusts whoever reaches its loopback address, and a page from anywhere could reach it: a cross-site form or
/// `fetch(..., {mode: "no-cors"})` sends a POST that needs no preflight, and a name the attacker controls that
/// resolves to 127.0.0.1 (DNS rebinding) makes the page's requests same-origin.
public enum CrossSiteGuard {
    /// Why the request is refused (403), or nil. `host`, `origin` and `fetchSite` are the request's `Host`,
    /// `Origin` and `Sec-Fetch-Site` headers. Clients other than browsers (curl, the CLI, scripts) send neither
    /// `Origin` nor `Sec-Fetch-Site`, and name the address they connect to. With a token nothing is refused here:
    /// a page cannot send it without the server's consent (a preflight this server never grants), and a proxy in
    /// front of the dashboard may name the server otherwise than its origin.
    public static func refusal(method: String, host: String?, origin: String?, fetchSite: String?, tokenless: Bool) -> String? {
        guard tokenless else { return nil }
        if let host, !isLocalName(hostName(host)) {
            return "the Host \(host) is not this machine's loopback name or address (without a token only those are answered)"
        }
        guard !["GET", "HEAD", "OPTIONS"].contains(method) else { return nil }
        if let fetchSite, fetchSite.lowercased() == "cross-site" || fetchSite.lowercased() == "same-site" {
            return "a request another site's page sent is refused (Sec-Fetch-Site: \(fetchSite))"
        }
        if let origin {
            let given = origin.lowercased()
            guard let host, given == "http://\(host.lowercased())" || given == "https://\(host.lowercased())" else {
                return "a request from another origin (\(origin)) is refused"
            }
        }
        return nil
    }

    /// The host name of a `Host` header (`127.0.0.1:8765`, `[::1]:8765`, `localhost`), lowercased.
    static func hostName(_ header: String) -> String {
        let text = header.lowercased()
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            return String(text[text.index(after: text.startIndex)..<close])
        }
        if let colon = text.lastIndex(of: ":") { return String(text[..<colon]) }
        return text
    }

    /// Loopback names and addresses: `localhost` (and names under it), 127.0.0.0/8, ::1.
    static func isLocalName(_ name: String) -> Bool {
        let name = name.hasSuffix(".") ? String(name.dropLast()) : name
        if name == "localhost" || name.hasSuffix(".localhost") || name == "::1" { return true }
        return ListenAddress(host: name, port: 0).isLoopback
    }
}

/// Which connection makes room when the server holds as many as it serves: the one waiting longest for a request,
/// never one with a request in progress. Without it, connections that send nothing (or keep-alives left open) held
/// every place until their idle timeout, and anyone who kept reopening them locked every client out.
public struct IdleConnections<ID: Hashable> {
    /// Per connection: since when it has waited for a request (monotonic ns), or nil while it has one in progress.
    private var waiting: [ID: UInt64?] = [:]
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    public var count: Int { waiting.count }

    /// Records a new connection at `now`; returns the one to close so that one place stays free for the next, if the
    /// server is that full and one of its connections is idle.
    public mutating func opened(_ id: ID, at now: UInt64) -> ID? {
        waiting[id] = .some(now)
        guard waiting.count >= limit else { return nil }
        return waiting.filter { $0.key != id }.compactMap { entry in entry.value.map { (entry.key, $0) } }
            .min { $0.1 < $1.1 }?.0
    }

    public mutating func requestBegan(_ id: ID) {
        if waiting[id] != nil { waiting[id] = .some(nil) }
    }

    public mutating func requestAnswered(_ id: ID, at now: UInt64) {
        if waiting[id] != nil { waiting[id] = .some(now) }
    }

    public mutating func closed(_ id: ID) { waiting[id] = nil }
}
