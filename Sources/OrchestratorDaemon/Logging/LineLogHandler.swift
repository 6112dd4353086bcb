import Foundation
import Logging
import OrchestratorPlatform

public enum LogFormat: String, Sendable, CaseIterable {
    case human
    case json
}

/// Writes one line per record to stderr: readable text, or JSON lines for log shippers.
/// When stderr is the journal stream (`$JOURNAL_STREAM` names fd 2, not just set) human lines carry a
/// `<N>` priority prefix so journald keeps the level.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let format: LogFormat
    private let label: String
    private let journald: Bool

    public init(label: String, format: LogFormat, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.label = label
        self.format = format
        self.journald = JournalStream.isStandardError(environment: environment)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line: String
        switch format {
        case .human:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quoteIfNeeded("\($0.value)"))" }
            let prefix = journald ? "<\(Self.syslogPriority(event.level))>" : Self.timestamp() + " "
            line = prefix + "\(event.level.rawValue.uppercased()) \(event.message)"
                + (fields.isEmpty ? "" : " " + fields.joined(separator: " "))
        case .json:
            line = Self.jsonLine(time: Self.timestamp(), level: event.level, message: "\(event.message)", fields: merged)
        }
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        Self.writeToStandardError(bytes)
    }

    /// Fields that always hold a count or an id: JSON numbers, so that a log shipper can compare and sum them
    /// (`jq 'select(.ms > 1000)'`). Every other field stays a string, whatever it looks like: a file named `42` is
    /// still a name.
    static let numericFields: Set<String> = [
        "job", "pid", "attempt", "attempts", "ms", "processed", "running", "max_concurrent", "max_running", "priority",
        "failures", "handlers", "tasks", "jobs",
    ]

    static func jsonLine(time: String, level: Logger.Level, message: String, fields: Logger.Metadata) -> String {
        var object: [String: Any] = ["time": time, "level": level.rawValue, "message": message]
        for (key, value) in fields {
            let text = "\(value)"
            object[key] = numericFields.contains(key) ? Int64(text).map { NSNumber(value: $0) } ?? text : text
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// One write(2) per line (a short write goes on); straight to the fd, which under load is many times
    /// cheaper than going through FileHandle and Data.
    static func writeToStandardError(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0, errno == EINTR {
                    continue
                } else {
                    return  // stderr is gone or full: nothing better to do with a log line
                }
            }
        }
    }

    /// Values with spaces, quotes or control characters (file names can hold any of them) are quoted and
    /// escaped so one record stays one line.
    static func quoteIfNeeded(_ value: String) -> String {
        let needsQuoting = value.isEmpty || value.unicodeScalars.contains {
            $0 == " " || $0 == "\"" || $0 == "=" || $0.value < 0x20 || $0.value == 0x7f
        }
        guard needsQuoting else { return value }
        var escaped = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            case "\r": escaped += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    escaped += String(format: "\\x%02x", scalar.value)
                } else {
                    escaped.unicodeScalars.append(scalar)
                }
            }
        }
        return escaped + "\""
    }

    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// ISO-8601 in UTC with milliseconds, now or at `unixTime`. Without Foundation's date formatters, which
    /// load ICU's data into a daemon that otherwise never needs it.
    static func timestamp(at unixTime: Double? = nil) -> String {
        var now = timespec()
        if let unixTime {
            now.tv_sec = Int(unixTime.rounded(.down))
            now.tv_nsec = Int((unixTime - unixTime.rounded(.down)) * 1e9)
        } else {
            clock_gettime(CLOCK_REALTIME, &now)
        }
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // By hand rather than String(format:), which costs more than the rest of a log line.
        var text: [UInt8] = []
        text.reserveCapacity(24)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                text.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        text.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        text.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        text.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        text.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        text.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        text.append(UInt8(ascii: "."))
        digits(now.tv_nsec / 1_000_000, 3)
        text.append(UInt8(ascii: "Z"))
        return String(decoding: text, as: UTF8.self)
    }
}
