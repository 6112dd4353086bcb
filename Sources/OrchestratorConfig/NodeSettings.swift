#if canImport(Glibc)
import Glibc
#endif

/// What one daemon of a shared store does.
public enum NodeRole: String, Sendable, Hashable, CaseIterable {
    /// Watches Inbox and registers the files that arrive.
    case lister
    /// Runs workers: files, task runs, uploads.
    case worker
    /// Fires task slots and sweeps.
    case scheduler
}

/// `[node]`: which daemon this is among those sharing a store.
public struct NodeSettings: Sendable, Hashable {
    /// Unique among the daemons of one store: the owner of the jobs this daemon claims. The host name unless set.
    public var name: String
    public var roles: Set<NodeRole>

    public init(name: String = NodeSettings.hostName(), roles: Set<NodeRole> = Set(NodeRole.allCases)) {
        self.name = name
        self.roles = roles
    }

    public static let defaults = NodeSettings()

    /// The roles in a fixed order, for `status` and logs.
    public var roleList: [String] { NodeRole.allCases.filter(roles.contains).map(\.rawValue) }

    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return problem(withName: name) == nil ? name : "localhost"
    }

    /// Why `name` cannot name a node, or nil. Names go into logs, `status` and the store: printable and short.
    public static func problem(withName name: String) -> String? {
        if name.isEmpty { return "a node name cannot be empty" }
        if name.utf8.count > 64 { return "\"\(name)\" is longer than 64 bytes" }
        let allowed = name.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil)) || "._-".unicodeScalars.contains($0)
        }
        return allowed ? nil : "\"\(name)\" may hold only letters, digits, '.', '_' and '-'"
    }
}

extension Config {
    /// Roles given to a daemon alone on SQLite, where one without all of them would leave that work to no one. A
    /// check of the config with its store settled (`--store` and `$ORCHESTRATOR_STORE` override the file).
    public func roleProblem() -> ConfigProblem? {
        guard store.url == nil, node.roles != NodeSettings.defaults.roles else { return nil }
        return ConfigProblem(
            file: file, line: line(ofKey: "node.roles"),
            message: "[node] roles: a daemon on SQLite does all the work; roles divide it among daemons sharing a [store] url")
    }
}

extension ConfigValidator {
    mutating func readNode(_ root: [String: TOMLNode]) -> NodeSettings {
        guard root["node"] != nil else { return .defaults }
        let section = section("node", in: root)
        checkKeys(section, allowed: ["name", "roles"])
        var settings = NodeSettings.defaults
        if let name = string(section, "name") {
            if let problem = NodeSettings.problem(withName: name) {
                report(section.path.key("name"), "[node] name: \(problem)")
            } else {
                settings.name = name
            }
        }
        if let given = strings(section, "roles", expectation: "an array of roles") {
            var roles: Set<NodeRole> = []
            for (text, path) in given {
                guard let role = NodeRole(rawValue: text) else {
                    let known = NodeRole.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                    report(path, "[node] roles: unknown role \"\(text)\"; the roles are \(known)")
                    continue
                }
                if roles.contains(role) { report(path, "[node] roles: \"\(text)\" is listed twice") }
                roles.insert(role)
            }
            if given.isEmpty { report(section.path.key("roles"), "[node] roles: a daemon needs at least one role") }
            // A task's runs stay with the daemon whose scheduler queued them (its run book, overlap and `after`
            // rules are that daemon's): a scheduler runs them.
            if roles.contains(.scheduler), !roles.contains(.worker) {
                report(section.path.key("roles"), "[node] roles: \"scheduler\" needs \"worker\" too: a daemon runs the task runs it queues")
            }
            settings.roles = roles
        }
        return settings
    }
}

/// What must agree among the daemons of one store, as a short hash for `status` (river#658: daemons that disagree
/// on a task run it differently depending on which one claims it). Per-node settings are left out: paths, `[node]`,
/// `[store]`, `[http]` and the admission limits, which are each daemon's own.
enum SharedConfigHash {
    static let perNodeSections: Set<String> = ["paths", "node", "store", "http"]
    static let perNodeLimits: Set<String> = ["max_concurrent", "max_cpu_percent", "max_memory_percent"]

    static func of(_ root: [String: TOMLNode]) -> String {
        var shared = root.filter { !perNodeSections.contains($0.key) }
        if case .table(var limits)? = shared["limits"] {
            for key in perNodeLimits { limits[key] = nil }
            shared["limits"] = .table(limits)
        }
        // FNV-1a, 64 bits: it only has to tell configs apart, with no adversary choosing them.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in TOMLNode.table(shared).canonicalText.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

extension TOMLNode {
    /// The same text for the same values however the file writes them: keys sorted, one spelling per type.
    var canonicalText: String {
        switch self {
        case .table(let entries):
            return "{" + entries.sorted { $0.key < $1.key }.map { "\($0.key.debugDescription)=\($0.value.canonicalText)" }
                .joined(separator: ",") + "}"
        case .array(let elements): return "[" + elements.map(\.canonicalText).joined(separator: ",") + "]"
        case .string(let text): return text.debugDescription
        case .integer(let value): return "i\(value)"
        case .float(let value): return "f\(value)"
        case .boolean(let value): return value ? "true" : "false"
        case .other(let typeName): return "<\(typeName)>"
        }
    }
}
