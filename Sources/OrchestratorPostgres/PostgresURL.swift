import CLibPQ

/// A `postgres://` or `postgresql://` URL taken apart into libpq's connection keywords.
///
/// The URL forms are libpq's (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING):
/// `postgres://user:password@host:port/database?keyword=value&...`, where every part is optional, an IPv6
/// host is in brackets, and a Unix-socket directory is given as `?host=/dir` (or percent-encoded as the host).
/// We parse it ourselves rather than hand the text to libpq so that a mistake is reported as one sentence naming
/// the part that is wrong (libpq's messages name the URL, not the part), and so that the parts reach libpq as
/// separate keyword/value pairs with no quoting to get wrong.
public struct PostgresURL: Sendable, Equatable {
    public var user: String?
    public var password: String?
    /// A host name, an IP address, or (starting with `/`) the directory of the server's Unix socket.
    public var host: String?
    public var port: Int?
    public var database: String?
    /// The other libpq keywords from the query string (`sslmode`, `connect_timeout`, `application_name`, ...).
    public var parameters: [String: String]

    public init(_ text: String) throws(PostgresURLError) {
        guard !text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            throw PostgresURLError("the URL contains a space or a control character (percent-encode it, e.g. %20)")
        }
        let rest: Substring
        if text.hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else if text.hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else {
            throw PostgresURLError("the URL must start with postgres:// or postgresql://")
        }
        let beforeQuery = rest.prefix { $0 != "?" }
        let query = rest.dropFirst(beforeQuery.count).dropFirst()
        let authority = beforeQuery.prefix { $0 != "/" }
        // An @ in the path, or in the query before its first =, is that of a user name or password with a raw / or ?
        // in it: the parts this parser would see are pieces of the password, which the messages below would quote.
        let firstQueryName = query.prefix { $0 != "&" && $0 != "=" }
        guard authority.contains("@") || !(beforeQuery.contains("@") || firstQueryName.contains("@")) else {
            throw PostgresURLError(
                "the URL has an @ after its host part: percent-encode / ? # @ in a user name or password (%2F %3F %23 %40)")
        }
        guard !rest.contains("#") else { throw PostgresURLError("the URL has a fragment (#...), which means nothing here") }
        let path = beforeQuery.dropFirst(authority.count).dropFirst()

        user = nil
        password = nil
        host = nil
        port = nil
        database = nil
        parameters = [:]

        var hostAndPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostAndPort = authority[authority.index(after: at)...]
            let userPart = userInfo.prefix { $0 != ":" }
            user = try Self.nonEmpty(Self.decode(userPart, "the user name"))
            if userPart.count < userInfo.count {
                password = try Self.decode(userInfo.dropFirst(userPart.count + 1), "the password")
            }
        }
        try parseHostAndPort(hostAndPort)
        database = try Self.nonEmpty(Self.decode(path, "the database name"))

        if !query.isEmpty {
            var afterSecret = false
            for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
                guard let equals = pair.firstIndex(of: "=") else {
                    // After a password, a pair without = is most likely the rest of a password with a raw & in it.
                    throw PostgresURLError(
                        afterSecret
                            ? "a query parameter after a password has no value (percent-encode & in a value as %26)"
                            : "the query parameter \"\(pair)\" has no value (write \(pair)=VALUE)")
                }
                let keyword = try Self.decode(pair[..<equals], "a query parameter's name")
                afterSecret = afterSecret || Self.secretKeywords.contains(keyword)
                let value = try Self.decode(pair[pair.index(after: equals)...], "the value of \(keyword)")
                try setParameter(keyword, value)
            }
        }
    }

    /// The keyword/value pairs for `PQconnectdbParams`, main parts first.
    public var connectionParameters: [(keyword: String, value: String)] {
        var pairs: [(keyword: String, value: String)] = []
        if let host { pairs.append(("host", host)) }
        if let port { pairs.append(("port", String(port))) }
        if let user { pairs.append(("user", user)) }
        if let password { pairs.append(("password", password)) }
        if let database { pairs.append(("dbname", database)) }
        for keyword in parameters.keys.sorted() { pairs.append((keyword, parameters[keyword]!)) }
        return pairs
    }

    /// What a connection is opened with: `connectionParameters` and, where the URL does not set them, defaults that
    /// keep a statement from waiting on a dead server for minutes:
    /// - `connect_timeout=10`: a connection attempt gives up after 10 s (libpq's default is to wait forever);
    /// - TCP keepalives after 10 s idle, every 5 s, 3 missed: a peer gone without a word (a host powered off, a
    ///   partition, a NAT that forgot the connection) is noticed within 25 s while waiting for an answer;
    /// - `tcp_user_timeout=30000`: data sent and unacknowledged for 30 s ends the connection (keepalives do not
    ///   probe while data is outstanding; the kernel would retransmit for some 15 minutes);
    /// - `fallback_application_name=orchestrator`, its name in `pg_stat_activity`.
    ///
    /// A keyword this libpq does not know (`tcp_user_timeout` is libpq 12's) is left out rather than refused.
    public var sessionParameters: [(keyword: String, value: String)] {
        var pairs = connectionParameters
        let known = Self.libpqKeywords
        for (keyword, value) in Self.sessionDefaults
        where !pairs.contains(where: { $0.keyword == keyword }) && known?.contains(keyword) ?? true {
            pairs.append((keyword, value))
        }
        // Before any statement, so that a database's own timeouts (see `sessionTimeoutsOff`) cannot cancel the first.
        // What the URL's own `options` set comes after, and wins.
        if let index = pairs.firstIndex(where: { $0.keyword == "options" }) {
            pairs[index].value = Self.sessionTimeoutsOff + " " + pairs[index].value
        } else {
            pairs.append(("options", Self.sessionTimeoutsOff))
        }
        pairs.append(("fallback_application_name", "orchestrator"))
        return pairs
    }

    /// Every session of this client lives as long as its process (a daemon's hold is a session advisory lock, its
    /// listener waits for notifications, its writer and reader are kept between uses), and a write the server
    /// cancels stops a daemon. Timeouts a server, a database or a role may set for every session would undo that:
    /// a statement cancelled by `statement_timeout` or `lock_timeout`, a session ended idle in a transaction.
    /// They are off for these sessions; a statement that needs a bound sets its own (`SET LOCAL`). PostgreSQL 14's
    /// `idle_session_timeout` is turned off once connected (`PostgresConnection.longLivedSession`): older servers
    /// refuse a start-up option they do not know.
    static let sessionTimeoutsOff = "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"

    static let sessionDefaults: [(keyword: String, value: String)] = [
        ("connect_timeout", "10"), ("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"),
        ("keepalives_count", "3"), ("tcp_user_timeout", "30000"),
    ]

    /// The URL with the password replaced, for logs and `status`.
    public var redacted: String {
        var text = "postgres://"
        if let user {
            text += Self.encode(user)
            if password != nil { text += ":***" }
            text += "@"
        }
        if let host, !host.hasPrefix("/") { text += host.contains(":") ? "[\(host)]" : host }
        if let port { text += ":\(port)" }
        text += "/" + (database.map(Self.encode) ?? "")
        var query = parameters.keys.sorted().map {
            "\($0)=" + (Self.secretKeywords.contains($0) ? "***" : Self.encode(parameters[$0]!))
        }
        if let host, host.hasPrefix("/") { query.insert("host=\(Self.encode(host))", at: 0) }
        if !query.isEmpty { text += "?" + query.joined(separator: "&") }
        return text
    }

    private mutating func parseHostAndPort(_ text: Substring) throws(PostgresURLError) {
        guard !text.contains(",") else {
            throw PostgresURLError("the URL names several hosts (\(text)); name one server")
        }
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw PostgresURLError("the IPv6 address \"\(text)\" has no closing ]")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw PostgresURLError("unexpected \"\(after)\" after the IPv6 address (expected :PORT)")
                }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = try Self.nonEmpty(Self.decode(text[..<colon], "the host"))
            portText = text[text.index(after: colon)...]
        } else {
            host = try Self.nonEmpty(Self.decode(text, "the host"))
        }
        if let portText { port = try Self.port(portText) }
    }

    private mutating func setParameter(_ keyword: String, _ value: String) throws(PostgresURLError) {
        switch keyword {
        case "host": host = Self.nonEmpty(value)
        case "port": port = try Self.port(Substring(value))
        case "user": user = Self.nonEmpty(value)
        case "password": password = value
        case "dbname": database = Self.nonEmpty(value)
        default:
            guard Self.libpqKeywords?.contains(keyword) ?? true else {
                throw PostgresURLError("unknown connection parameter \"\(keyword)\" in the query string")
            }
            try Self.checkValue(keyword, value)
            parameters[keyword] = value
        }
    }

    /// libpq takes these values only, but says so only as it connects: a daemon would wait for a store it can never
    /// reach, retrying, where the URL is simply wrong (`sslmode=requir`).
    static let allowedValues: [String: [String]] = [
        "sslmode": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        "gssencmode": ["disable", "prefer", "require"],
        "channel_binding": ["disable", "prefer", "require"],
        "sslnegotiation": ["postgres", "direct"],
        "target_session_attrs": ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"],
        "load_balance_hosts": ["disable", "random"],
    ]
    /// Whole numbers in libpq, which refuses anything else as it connects.
    static let numericKeywords: Set<String> = [
        "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
        "tcp_user_timeout", "sslcompression",
    ]

    private static func checkValue(_ keyword: String, _ value: String) throws(PostgresURLError) {
        if let allowed = allowedValues[keyword], !allowed.contains(value) {
            throw PostgresURLError(
                "\(keyword)=\(value) is not a value libpq takes (one of: \(allowed.joined(separator: ", ")))")
        }
        if numericKeywords.contains(keyword), value.isEmpty || !value.utf8.allSatisfy({ (0x30...0x39).contains($0) }) || Int(value) == nil {
            throw PostgresURLError("\(keyword)=\(value) is not a whole number of 0 or more")
        }
    }

    private static func port(_ text: Substring) throws(PostgresURLError) -> Int {
        guard !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber), let port = Int(text), (1...65535).contains(port)
        else {
            throw PostgresURLError("the port \"\(text)\" is not a number from 1 to 65535")
        }
        return port
    }

    private static func nonEmpty(_ text: String) -> String? { text.isEmpty ? nil : text }

    private static func decode(_ text: Substring, _ what: String) throws(PostgresURLError) -> String {
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            let hex = utf8.prefix(2)
            utf8 = utf8.dropFirst(2)
            guard hex.count == 2, let value = UInt8(String(decoding: hex, as: UTF8.self), radix: 16) else {
                throw PostgresURLError("\(what) has an invalid percent-encoding \"%\(String(decoding: hex, as: UTF8.self))\"")
            }
            bytes.append(value)
        }
        guard !bytes.contains(0) else { throw PostgresURLError("\(what) contains a NUL byte (%00)") }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw PostgresURLError("\(what) is not valid UTF-8 once percent-decoded")
        }
        return decoded
    }

    private static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let safe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || "-._~/".utf8.contains(byte)
            if safe {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// The keywords whose values are secrets, never printed (`password` itself is kept apart from `parameters`).
    static let secretKeywords: Set<String> = ["password", "sslpassword"]

    /// `text` with what could be a password (after the first `:` of the part before the last `@`) replaced, for a
    /// message about text that is not a URL this parser accepts.
    public static func masked(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        let start = text.firstRange(of: "://")?.upperBound ?? text.startIndex
        guard start < at, let colon = text[start..<at].firstIndex(of: ":") else { return text }
        return String(text[...colon]) + "***" + String(text[at...])
    }

    /// Every keyword this libpq understands, so a misspelt one is reported here rather than at the first connect;
    /// nil when libpq cannot be loaded (then the connect says so).
    static let libpqKeywords: Set<String>? = {
        var keywords: Set<String> = []
        guard orch_pq_load_error() == nil, let options = orch_PQconndefaults() else { return nil }
        defer { orch_PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            keywords.insert(String(cString: keyword))
            option += 1
        }
        return keywords
    }()
}

/// What is wrong with a store URL, as one sentence (the config layer adds FILE:LINE).
public struct PostgresURLError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
