#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `[http]`: the API server inside the daemon. Absent table: no server.
public struct HTTPSettings: Sendable, Hashable {
    public var listen: ListenAddress
    /// Absolute path of `token_file`, if set.
    public var tokenFile: String?
    /// The token file's trimmed content, read when the config was loaded.
    public var token: String?

    public init(listen: ListenAddress, tokenFile: String? = nil, token: String? = nil) {
        self.listen = listen
        self.tokenFile = tokenFile
        self.token = token
    }
}

/// `listen = "HOST:PORT"`: an IPv4 literal, `[IPv6]` or `localhost`, and a port (0: any free one).
///
/// Host names other than `localhost` are refused: what a name resolves to can change, and whether the
/// address is loopback decides whether a token is required.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Only loopback addresses may go without a token.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return false }
        return UInt32(bigEndian: address.s_addr) >> 24 == 127
    }

    public var isIPv6: Bool { host.contains(":") }

    /// As in a URL: `127.0.0.1:8765`, `[::1]:8765`.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The address, or why the text is not one.
    public static func parse(_ text: String) -> Result<ListenAddress, ListenAddressError> {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(.malformed(text))
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            var address = in6_addr()
            guard inet_pton(AF_INET6, String(host), &address) == 1 else { return .failure(.badHost(text, String(host))) }
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return .failure(.malformed(text)) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            var address = in_addr()
            guard host == "localhost" || inet_pton(AF_INET, String(host), &address) == 1 else {
                return .failure(.badHost(text, String(host)))
            }
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber), portText.count <= 5,
            let port = Int(portText), port <= 65_535
        else {
            return .failure(.badPort(text, String(portText)))
        }
        return .success(ListenAddress(host: String(host), port: port))
    }
}

public enum ListenAddressError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case badHost(String, String)
    case badPort(String, String)

    public var description: String {
        switch self {
        case .malformed(let text):
            "\"\(text)\" is not HOST:PORT (an IPv4 address, [IPv6] or localhost, then a port)"
        case .badHost(let text, let host):
            "\"\(text)\": \"\(host)\" is not an IP address or localhost"
        case .badPort(let text, let port):
            "\"\(text)\": port \"\(port)\" is not a number from 0 to 65535"
        }
    }
}

extension ConfigValidator {
    /// A token longer than this is not a token but the wrong file.
    static let maximumTokenSize = 4096

    mutating func readHTTP(_ root: [String: TOMLNode]) -> HTTPSettings? {
        guard root["http"] != nil else { return nil }
        let section = section("http", in: root)
        guard case .table = root["http"] else { return nil }
        checkKeys(section, allowed: ["listen", "token_file"])
        guard let text = nonEmptyString(section, "listen") else {
            if section.entries["listen"] == nil { report(section.path, "[http]: listen is required, e.g. listen = \"127.0.0.1:8765\"") }
            return nil
        }
        let listen: ListenAddress
        switch ListenAddress.parse(text) {
        case .success(let address): listen = address
        case .failure(let error):
            report(section.path.key("listen"), "[http] listen: \(error)")
            return nil
        }
        var settings = HTTPSettings(listen: listen)
        if let given = nonEmptyString(section, "token_file") {
            let path = FileSystem.absolute(given, relativeTo: baseDirectory)
            settings.tokenFile = path
            switch FileSystem.readFile(path, limit: Self.maximumTokenSize) {
            case .failure(let reason):
                let why = if case .tooLarge = reason { "it is larger than \(Self.maximumTokenSize) bytes" } else { "\(reason)" }
                report(section.path.key("token_file"), "[http] token_file: cannot read \(path): \(why)")
                return nil
            case .success(let bytes):
                let token = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
                guard !token.isEmpty else {
                    report(section.path.key("token_file"), "[http] token_file: \(path) is empty")
                    return nil
                }
                settings.token = token
            }
        } else if section.entries["token_file"] == nil, !listen.isLoopback {
            report(section.path.key("listen"), "[http] listen: \(listen) is not a loopback address; set token_file so that callers must authenticate")
            return nil
        }
        return settings
    }
}

extension String {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        let isSpace: (Unicode.Scalar) -> Bool = { $0.properties.isWhitespace }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }), let last = scalars.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}
