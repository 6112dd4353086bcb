import TOMLKit

/// A parsed TOML value, copied out of TOMLKit's C++ tree.
///
/// TOMLKit's tables are non-Sendable class wrappers around pointers; copying once into a plain
/// enum lets the validator pattern-match values and keeps TOMLKit out of every other file.
indirect enum TOMLNode {
    case table([String: TOMLNode])
    case array([TOMLNode])
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    /// Dates and times: never valid in this config, kept only to name their type in messages.
    case other(typeName: String)

    /// The word a message uses for this value's type.
    var typeName: String {
        switch self {
        case .table: "table"
        case .array: "array"
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .boolean: "boolean"
        case .other(let typeName): typeName
        }
    }

    /// Parses `text`, or returns the syntax error's line, column and message.
    static func parse(_ text: String) -> Result<[String: TOMLNode], SyntaxError> {
        do {
            let table = try TOMLTable(string: text)
            return .success(entries(of: table))
        } catch let error as TOMLParseError {
            return .failure(SyntaxError(line: error.source.begin.line, column: error.source.begin.column,
                                        message: error.description))
        } catch {
            return .failure(SyntaxError(line: 0, column: 0, message: "\(error)"))
        }
    }

    struct SyntaxError: Error {
        var line: Int
        var column: Int
        var message: String
    }

    private static func entries(of table: TOMLTable) -> [String: TOMLNode] {
        var result: [String: TOMLNode] = [:]
        for key in table.keys {
            if let value = table[key] { result[key] = node(value) }
        }
        return result
    }

    private static func node(_ value: any TOMLValueConvertible) -> TOMLNode {
        switch value.type {
        case .table:
            return value.table.map { .table(entries(of: $0)) } ?? .table([:])
        case .array:
            guard let array = value.array else { return .array([]) }
            return .array(array.map { node($0) })
        case .string:
            return .string(value.string ?? "")
        case .int:
            return .integer(value.int ?? 0)
        case .double:
            return .float(value.double ?? 0)
        case .bool:
            return .boolean(value.bool ?? false)
        case .date:
            return .other(typeName: "date")
        case .time:
            return .other(typeName: "time")
        case .dateTime:
            return .other(typeName: "date-time")
        }
    }
}
