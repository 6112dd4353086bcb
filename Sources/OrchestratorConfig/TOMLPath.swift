/// Where a value sits in the document, e.g. `handler[1].breaker.cooldown`.
///
/// The validator names problems by path and the source map turns paths into lines, so both
/// sides must spell a path the same way; `description` is that single spelling.
struct TOMLPath: Hashable, Sendable, CustomStringConvertible {
    enum Component: Hashable, Sendable {
        case key(String)
        case index(Int)
    }

    var components: [Component] = []

    static let root = TOMLPath()

    func key(_ name: String) -> TOMLPath {
        TOMLPath(components: components + [.key(name)])
    }

    func index(_ position: Int) -> TOMLPath {
        TOMLPath(components: components + [.index(position)])
    }

    var parent: TOMLPath? {
        components.isEmpty ? nil : TOMLPath(components: Array(components.dropLast()))
    }

    /// The last key, which is what a message names (`timeout`, not `handler[0].timeout`).
    var lastKey: String? {
        for component in components.reversed() {
            if case .key(let name) = component { return name }
        }
        return nil
    }

    var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let name):
                if !text.isEmpty { text += "." }
                text += Self.isBare(name) ? name : "\"" + Self.escaped(name) + "\""
            case .index(let position):
                text += "[\(position)]"
            }
        }
        return text
    }

    private static func isBare(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }

    private static func escaped(_ name: String) -> String {
        var out = ""
        for character in name {
            switch character {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}
