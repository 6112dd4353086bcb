/// One thing wrong with a config file, located at a line.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    /// A name a message quotes: its first 60 characters, then "..." (a refused name may be long).
    public static func shortened(_ name: String) -> String { name.count > 60 ? String(name.prefix(60)) + "..." : name }

    /// The config file as the caller named it.
    public var file: String
    /// 1-based; 0 when the problem has no line (the file could not be read, or a default value is at fault).
    public var line: Int
    /// What is wrong, without location.
    public var message: String

    /// A valid setting that is likely not what was meant (see `Config.warnings`): said, not refused.
    public var isWarning: Bool

    /// A problem as given; the daemon uses it for checks it can only make at start.
    public init(file: String, line: Int, message: String, isWarning: Bool = false) {
        self.file = file
        self.line = line
        self.message = message
        self.isWarning = isWarning
    }

    /// The problems the text has, and those a check against the machine found on other lines (a line the text
    /// already faults is not faulted twice), in line order; on one line, in the order found.
    public static func merged(text: [ConfigProblem], machine: [ConfigProblem]) -> [ConfigProblem] {
        let lines = Set(text.map(\.line))
        return (text + machine.filter { !lines.contains($0.line) }).enumerated()
            .sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element)
    }

    /// `FILE:LINE: error: MESSAGE`, the form editors and CI logs recognise (`FILE: error: ...` without a line).
    public var description: String {
        let kind = isWarning ? "warning" : "error"
        return line > 0 ? "\(file):\(line): \(kind): \(message)" : "\(file): \(kind): \(message)"
    }
}

/// Every problem found in a config file; loading throws this instead of stopping at the first.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// In line order.
    public var problems: [ConfigProblem]

    /// Problems as given, expected in line order.
    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    /// One line per problem.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
