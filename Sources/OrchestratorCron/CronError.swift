/// Why a cron expression, a zone name or a timestamp was refused. `description` is the one-line message
/// the command prints after `error: `, naming the field and the text, e.g.
/// `cron expression "5-1 * * * *": minute: range 5-1 is reversed`.
public enum CronError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `field` is `minute`, `hour`, `day of month`, `month` or `day of week`; nil for whole-expression problems.
    case invalidExpression(expression: String, field: String?, reason: String)
    case unknownZone(String)
    case invalidTimestamp(String, reason: String)

    public var description: String {
        switch self {
        case let .invalidExpression(expression, field, reason):
            let prefix = "cron expression \(quoted(expression)): "
            return prefix + (field.map { "\($0): " } ?? "") + reason
        case let .unknownZone(name):
            return "unknown time zone \(quoted(name)) (expected an IANA name such as Europe/Berlin or UTC)"
        case let .invalidTimestamp(text, reason):
            return "timestamp \(quoted(text)): \(reason)"
        }
    }
}

/// Double-quotes `text`, escaping what would break a one-line message.
func quoted(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\t": result += "\\t"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result + "\""
}
