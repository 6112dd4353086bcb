import OrchestratorConfig

/// Exit statuses of the command-line interface (SPEC section 3).
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case failure = 1
    case usage = 64
    case badInput = 65
    case unavailable = 69
    case config = 78
}

/// An error that ends a command: printed as lines on stderr, never as a stack trace.
public struct CommandError: Error, Sendable, CustomStringConvertible {
    public let status: ExitStatus
    public let lines: [String]
    /// Which bad input, where a caller tells them apart (the HTTP API: 404 or 409); nil: plain bad input.
    public var subject: Subject?

    public enum Subject: Sendable, Equatable {
        /// No such job, handler or task.
        case unknown
        /// It exists, but its state does not allow this (cancel a finished job).
        case conflict
    }

    public init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.lines = [Self.oneLine(message)]
    }

    /// Each error is one line on stderr (SPEC section 3), also one that carries a store's error: SQLite's tells the
    /// statement it ran (`- while executing `SELECT ...``, over many lines, backticks in its comments), which says
    /// nothing to an operator. The statement ends the error's text: cut to its last backtick.
    static func oneLine(_ message: String) -> String {
        var text = message
        if let start = text.range(of: " - while executing `"), let end = text[start.upperBound...].lastIndex(of: "`") {
            text.removeSubrange(start.lowerBound...end)
        }
        guard text.contains(where: \.isNewline) else { return text }
        var line = ""
        var pendingSpace = false
        for character in text {
            if character.isNewline {
                pendingSpace = true
            } else if pendingSpace, character == " " || character == "\t" {
                continue
            } else {
                if pendingSpace, !line.isEmpty { line.append(" ") }
                pendingSpace = false
                line.append(character)
            }
        }
        return line
    }

    public init(configErrors: ConfigErrors) {
        self.init(configProblems: configErrors.problems)
    }

    public init(configProblems: [ConfigProblem]) {
        self.status = .config
        self.lines = configProblems.map(\.description)
    }

    public var description: String { lines.joined(separator: "\n") }

    public func about(_ subject: Subject) -> CommandError {
        var error = self
        error.subject = subject
        return error
    }
}

/// Loads the config for a command; every problem becomes a `FILE:LINE: error:` line and exit 78.
public func loadConfig(_ path: String) throws(CommandError) -> Config {
    do {
        return try Config.load(file: path)
    } catch {
        throw CommandError(configErrors: error)
    }
}

/// `Config.loadForReading`: the config, its problems handed to `warn` (none: not called); what it cannot read is the
/// same error as `loadConfig`'s.
public func loadConfigForReading(_ path: String, warn: ([ConfigProblem]) -> Void) throws(CommandError) -> Config {
    do {
        let (config, problems) = try Config.loadForReading(file: path)
        if !problems.isEmpty { warn(problems) }
        return config
    } catch {
        throw CommandError(configErrors: error)
    }
}

/// Refuses, with every problem and exit 78, a config whose folders overlap on this machine (and, with
/// `commands`, one whose programs cannot be started): the checks `config check` makes beyond the text.
func refuseHostProblems(_ config: Config, commands: Bool) throws(CommandError) {
    let problems = commands ? config.hostProblems() : config.folderProblems()
    if !problems.isEmpty { throw CommandError(configProblems: problems) }
}
