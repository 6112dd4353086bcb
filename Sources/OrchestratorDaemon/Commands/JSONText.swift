import Foundation

/// JSON text of the `[String: Any]` trees the reports build, as `JSONSerialization` writes them with
/// `.sortedKeys` and `.withoutEscapingSlashes`, at a fraction of its cost: its key sorting goes through
/// `AnyHashable` and locale-aware comparison, three quarters of an API status request. Keys are sorted by
/// code point (the reports' keys are ASCII words, which both orders put alike). Nil for a value of another
/// type, so that the caller can fall back to `JSONSerialization`.
enum JSONText {
    static func render(_ value: Any) -> String? {
        var text = ""
        text.reserveCapacity(1024)
        return write(value, into: &text) ? text : nil
    }

    private static func write(_ value: Any, into text: inout String) -> Bool {
        switch value {
        case let string as String: writeString(string, into: &text)
        case let flag as Bool: text += flag ? "true" : "false"
        case let number as Int: text += String(number)
        case let number as Int64: text += String(number)
        case let number as Int32: text += String(number)
        case let number as UInt64: text += String(number)
        case let number as Double:
            guard number.isFinite else { return false }
            // As JSONSerialization: a whole number without ".0" (2, -0), others in Swift's shortest form.
            let description = number.description
            text += description.hasSuffix(".0") ? String(description.dropLast(2)) : description
        case is NSNull: text += "null"
        case let object as [String: Any]:
            text += "{"
            var first = true
            for key in object.keys.sorted() {
                if !first { text += "," }
                first = false
                writeString(key, into: &text)
                text += ":"
                guard write(object[key]!, into: &text) else { return false }
            }
            text += "}"
        case let array as [Any]:
            text += "["
            for (index, element) in array.enumerated() {
                if index > 0 { text += "," }
                guard write(element, into: &text) else { return false }
            }
            text += "]"
        default:
            return false
        }
        return true
    }

    private static func writeString(_ string: String, into text: inout String) {
        text += "\""
        var plainStart = string.unicodeScalars.startIndex
        let scalars = string.unicodeScalars
        var index = scalars.startIndex
        while index != scalars.endIndex {
            let scalar = scalars[index]
            let escaped: String? = switch scalar {
            case "\"": "\\\""
            case "\\": "\\\\"
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            case "\u{8}": "\\b"
            case "\u{c}": "\\f"
            default: scalar.value < 0x20 ? "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16) : nil
            }
            if let escaped {
                text.unicodeScalars.append(contentsOf: scalars[plainStart..<index])
                text += escaped
                plainStart = scalars.index(after: index)
            }
            index = scalars.index(after: index)
        }
        text.unicodeScalars.append(contentsOf: scalars[plainStart..<scalars.endIndex])
        text += "\""
    }
}
