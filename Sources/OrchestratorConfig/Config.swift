import OrchestratorCore

/// A loaded and validated `orchestrator.toml`.
///
/// Every value is checked and every relative path resolved at load, so the rest of the daemon
/// never sees a malformed setting or depends on the current directory.
public struct Config: Sendable {
    /// Absolute path of the config file.
    public var file: String
    /// The config file's directory; relative paths in the file resolve against it, never the cwd.
    public var baseDirectory: String
    /// `[paths]`, resolved.
    public var paths: Paths
    /// `[inbox]`: which files are input.
    public var inbox: InboxSettings
    /// `[limits]`: admission and shutdown.
    public var limits: Limits
    /// In file order; the first one that matches a file takes it.
    public var handlers: [Handler]
    /// In file order.
    public var tasks: [TaskDefinition]
    /// `[sweeps]`: the built-in sweeps' intervals.
    public var sweeps: Sweeps
    /// `[retention]`: what the prune sweep deletes.
    public var retention: Retention
    /// `[http]`: the API server; nil when the table is absent.
    public var http: HTTPSettings?
    /// `[store]` (or `--store`, `$ORCHESTRATOR_STORE`): where the ledger is.
    public var store: StoreSettings
    /// `[node]`: this daemon among those sharing a store.
    public var node: NodeSettings
    /// A hash of the settings every daemon of a shared store must agree on (see `SharedConfigHash`); empty for a
    /// config built in code.
    public var sharedHash: String
    /// Present when loaded from text; lets the daemon place its own start-up checks on lines.
    private var sourceMap: SourceMap?

    /// A config built in code (tests, tools); it has no source text, so `line(ofKey:)` is 0.
    public init(file: String, baseDirectory: String, paths: Paths, inbox: InboxSettings = .defaults,
                limits: Limits = .defaults, handlers: [Handler] = [], tasks: [TaskDefinition] = [],
                sweeps: Sweeps = .defaults, retention: Retention = .defaults, http: HTTPSettings? = nil,
                store: StoreSettings = .sqlite, node: NodeSettings = .defaults, sharedHash: String = "") {
        self.file = file
        self.baseDirectory = baseDirectory
        self.paths = paths
        self.inbox = inbox
        self.limits = limits
        self.handlers = handlers
        self.tasks = tasks
        self.sweeps = sweeps
        self.retention = retention
        self.http = http
        self.store = store
        self.node = node
        self.sharedHash = sharedHash
    }

    /// Reads and validates `file` (relative to the current directory if not absolute).
    ///
    /// Throws every problem found, each with its line, not just the first: a user fixing a
    /// config should not have to run the check once per typo.
    public static func load(file: String) throws(ConfigErrors) -> Config {
        try parse(text: try readText(file), file: file)
    }

    /// For commands that only read the state (`status`, `history`, `show`, `tasks`): a config whose errors all lie
    /// outside `[paths]`, `[store]` and `[node]` still says where the state is, so they can show it (a daemon keeps
    /// the config it loaded when an edit breaks the file). Returns the config, defaults standing in for the values
    /// with problems, and the problems, for the command to print. Anything else throws as `load` does.
    public static func loadForReading(file: String) throws(ConfigErrors) -> (Config, [ConfigProblem]) {
        let text = try readText(file)
        do {
            return (try parse(text: text, file: file), [])
        } catch {
            guard let (config, problems) = parseKeepingProblems(text: text, file: file) else { throw error }
            return (config, problems)
        }
    }

    /// For `config check`: as `loadForReading`, also when `[paths]`, `[store]` or `[node]` have problems
    /// (`locationTrouble`), so that the checks that do not depend on where things are (the commands) still run
    /// alongside: before, one unknown key in `[paths]` hid every missing command until it was fixed.
    public static func loadForChecking(file: String) throws(ConfigErrors) -> (config: Config, problems: [ConfigProblem], locationTrouble: Bool) {
        let text = try readText(file)
        do {
            return (try parse(text: text, file: file), [], false)
        } catch {
            guard let (config, problems, locationTrouble) = parseKeepingProblems(text: text, file: file, evenOfLocation: true) else { throw error }
            return (config, problems, locationTrouble)
        }
    }

    private static func parseKeepingProblems(text: String, file: String) -> (Config, [ConfigProblem])? {
        parseKeepingProblems(text: text, file: file, evenOfLocation: false).map { ($0.0, $0.1) }
    }

    private static func parseKeepingProblems(
        text: String, file: String, evenOfLocation: Bool
    ) -> (Config, [ConfigProblem], Bool)? {
        let absoluteFile = FileSystem.absolute(file, relativeTo: FileSystem.currentDirectory())
        let sourceMap = SourceMap(scanning: text)
        guard sourceMap.parserHazard == nil, case .success(let root) = TOMLNode.parse(text) else { return nil }
        var validator = ConfigValidator(file: file, baseDirectory: FileSystem.directory(of: absoluteFile), sourceMap: sourceMap)
        var config = validator.assemble(root, absoluteFile: absoluteFile)
        guard evenOfLocation || validator.locationProblems == 0 else { return nil }
        config.sourceMap = sourceMap
        return (config, validator.sortedProblems, validator.locationProblems > 0)
    }

    private static func readText(_ file: String) throws(ConfigErrors) -> String {
        let bytes: [UInt8]
        switch FileSystem.readFile(file) {
        case .success(let contents):
            bytes = contents
        case .failure(let reason):
            let verdict = if case .system = reason { "cannot read config file" } else { "config file refused" }
            throw ConfigErrors(problems: [ConfigProblem(file: file, line: 0, message: "\(verdict): \(reason)")])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigErrors(problems: [ConfigProblem(file: file, line: firstInvalidUTF8Line(bytes),
                                                        message: "the file is not valid UTF-8")])
        }
        return text
    }

    /// Validates `text` as if it were the contents of `file`.
    ///
    /// `file` names the file in messages and its directory is the base for relative paths; the
    /// file itself is not read.
    public static func parse(text: String, file: String) throws(ConfigErrors) -> Config {
        let absoluteFile = FileSystem.absolute(file, relativeTo: FileSystem.currentDirectory())
        let baseDirectory = FileSystem.directory(of: absoluteFile)
        let sourceMap = SourceMap(scanning: text)
        // Input that would make toml++ abort instead of failing never reaches it.
        if let hazard = sourceMap.parserHazard {
            throw ConfigErrors(problems: [ConfigProblem(
                file: file, line: hazard.line, message: "TOML syntax error: \(hazard.message) (column \(hazard.column))")])
        }
        let root: [String: TOMLNode]
        switch TOMLNode.parse(text) {
        case .success(let table):
            root = table
        case .failure(let error):
            // After a syntax error the tree is unknown, so nothing else can be checked reliably.
            let column = error.column > 0 ? " (column \(error.column))" : ""
            // toml++ words its messages "Error while parsing value: ..."; fold that into ours.
            let detail = error.message.hasPrefix("Error while parsing ")
                ? " while parsing " + error.message.dropFirst("Error while parsing ".count)
                : ": " + error.message
            throw ConfigErrors(problems: [ConfigProblem(file: file, line: error.line,
                                                        message: "TOML syntax error\(detail)\(column)")])
        }
        var validator = ConfigValidator(file: file, baseDirectory: baseDirectory, sourceMap: sourceMap)
        guard var config = validator.validate(root, absoluteFile: absoluteFile) else {
            throw ConfigErrors(problems: validator.sortedProblems)
        }
        config.sourceMap = sourceMap
        return config
    }

    /// The first handler whose `match` takes `path`, or nil: the file fails with "no handler".
    public func handler(for path: RelativePath) -> Handler? {
        handlers.first { $0.matches(path) }
    }

    /// Whether the inbox file at `path` (relative to Inbox) is input at all.
    ///
    /// Exclude wins over include. An exclude pattern without `/` also rejects a path when it
    /// matches any one component, so the default `.*` and `*.tmp` keep hidden folders and
    /// partial files out of subfolders too when `recursive = true`. Paths inside the processing,
    /// Done, Failed or state directories are never input, should those lie inside Inbox.
    public func accepts(_ path: RelativePath) -> Bool {
        guard !path.bytes.isEmpty, !isInsideManagedDirectory(path) else { return false }
        let nested = path.bytes.contains(UInt8(ascii: "/"))
        var components: [RelativePath]?
        for glob in inbox.exclude {
            if glob.matches(path) { return false }
            guard nested, !glob.containsSlash else { continue }
            if components == nil { components = path.components.map { RelativePath(Array($0)) } }
            if components?.contains(where: glob.matches) == true { return false }
        }
        return inbox.include.contains { $0.matches(path) }
    }

    /// The line of a key in the file, by the path a message would use: `paths.processing`,
    /// `handler[0].command`, `task[2]` (its header). Falls back to the enclosing table; 0 when
    /// neither is written in the file (the value is a default).
    ///
    /// For checks that only the daemon can make at start (e.g. that the processing area is on
    /// Inbox's filesystem) but must still be reported as `FILE:LINE`.
    /// Settings that are valid but likely not what was meant: `config check` lists them (exit 0 all the same) and the
    /// daemon logs them when it loads the config.
    public func warnings() -> [ConfigProblem] {
        var found: [ConfigProblem] = []
        if inbox.recursive, !handlers.isEmpty, !handlers.contains(where: { $0.match.contains(where: \.crossesFolders) }) {
            found.append(ConfigProblem(
                file: file, line: line(ofKey: "inbox.recursive"),
                message: "[inbox] recursive = true, but no handler's match reaches into subfolders (\"*\" stops at \"/\"; \"**\" does not): files in subfolders would go to Failed/ with no handler",
                isWarning: true))
        }
        return found
    }

    public func line(ofKey keyPath: String) -> Int {
        guard let sourceMap else { return 0 }
        return sourceMap.line(of: KeyPathSyntax.parse(keyPath))
    }

    private func isInsideManagedDirectory(_ path: RelativePath) -> Bool {
        let inbox = paths.inbox.utf8
        let separator = inbox.last == UInt8(ascii: "/") ? 0 : 1  // Inbox "/" (tests) ends in its separator
        for directory in [paths.processing, paths.done, paths.failed, paths.state] {
            let absolute = directory.utf8
            guard absolute.count > inbox.count + separator, absolute.starts(with: inbox),
                separator == 0 || absolute[absolute.index(absolute.startIndex, offsetBy: inbox.count)] == UInt8(ascii: "/")
            else { continue }
            let relative = absolute.dropFirst(inbox.count + separator)
            guard path.bytes.starts(with: relative) else { continue }
            if path.bytes.count == relative.count || path.bytes[relative.count] == UInt8(ascii: "/") { return true }
        }
        return false
    }

    private static func firstInvalidUTF8Line(_ bytes: [UInt8]) -> Int {
        for (index, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
        where String(validating: line, as: UTF8.self) == nil {
            return index + 1
        }
        return 0
    }
}

/// Reads the `handler[0].breaker.cooldown` spelling back into a path.
enum KeyPathSyntax {
    static func parse(_ text: String) -> TOMLPath {
        var path = TOMLPath.root
        var name = ""
        var characters = text[...]
        while let character = characters.popFirst() {
            switch character {
            case ".":
                if !name.isEmpty { path = path.key(name) }
                name = ""
            case "[":
                if !name.isEmpty { path = path.key(name) }
                name = ""
                let digits = characters.prefix { $0 != "]" }
                characters = characters.dropFirst(digits.count + 1)
                if let index = Int(digits) { path = path.index(index) }
            case "\"":
                let quoted = characters.prefix { $0 != "\"" }
                characters = characters.dropFirst(quoted.count + 1)
                name += quoted
            default:
                name.append(character)
            }
        }
        if !name.isEmpty { path = path.key(name) }
        return path
    }
}
