import OrchestratorCore
import OrchestratorCron

/// Walks the parsed document against SPEC §4's schema, building a `Config` and collecting
/// every problem on the way instead of stopping at the first.
///
/// Each reader returns nil for an absent or invalid value and records why it was invalid;
/// callers substitute the default so the walk can go on, and `validate` returns a `Config`
/// only if nothing was recorded.
struct ConfigValidator {
    let file: String
    let baseDirectory: String
    let sourceMap: SourceMap
    private(set) var problems: [ConfigProblem] = []

    init(file: String, baseDirectory: String, sourceMap: SourceMap) {
        self.file = file
        self.baseDirectory = baseDirectory
        self.sourceMap = sourceMap
    }

    /// In line order, so the report reads top to bottom like the file.
    var sortedProblems: [ConfigProblem] {
        problems.enumerated()
            .sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
            .map(\.element)
    }

    mutating func validate(_ root: [String: TOMLNode], absoluteFile: String) -> Config? {
        let config = assemble(root, absoluteFile: absoluteFile)
        return problems.isEmpty ? config : nil
    }

    /// Problems found in `[paths]`, `[store]`, `[node]` and the top level: what says where the state is.
    private(set) var locationProblems = 0

    /// Every section read, with defaults standing in for values that have problems (`problems` says which).
    mutating func assemble(_ root: [String: TOMLNode], absoluteFile: String) -> Config {
        // An unknown entry that may be a misspelt [paths], [store] or [node] (or one of their keys out of place)
        // counts among their problems: the folders are then not known.
        let doubtful = checkTopLevel(root)
        let before = problems.count
        let paths = readPaths(section("paths", in: root))
        let store = readStore(root)
        let node = readNode(root)
        locationProblems = doubtful + problems.count - before
        let inbox = readInbox(section("inbox", in: root))
        let limits = readLimits(section("limits", in: root))
        let sweeps = readSweeps(section("sweeps", in: root))
        let retention = readRetention(section("retention", in: root))
        let handlers = readHandlers(arrayOfTables("handler", in: root))
        let tasks = readTasks(arrayOfTables("task", in: root))
        let http = readHTTP(root)
        return Config(file: absoluteFile, baseDirectory: baseDirectory, paths: paths, inbox: inbox,
                      limits: limits, handlers: handlers, tasks: tasks, sweeps: sweeps, retention: retention, http: http,
                      store: store, node: node, sharedHash: SharedConfigHash.of(root))
    }

    // MARK: - Reporting

    mutating func report(_ path: TOMLPath, _ message: String) {
        report(line: sourceMap.line(of: path), message)
    }

    mutating func report(line: Int, _ message: String) {
        problems.append(ConfigProblem(file: file, line: line, message: message))
    }

    // MARK: - Top level and sections

    private static let sectionNames: Set<String> = ["paths", "inbox", "limits", "sweeps", "retention", "http", "store", "node"]
    private static let arrayNames: Set<String> = ["handler", "task"]

    /// Reports every unknown top-level entry; returns how many may stand for where the folders are.
    private mutating func checkTopLevel(_ root: [String: TOMLNode]) -> Int {
        var doubtful = 0
        for (key, node) in root.sorted(by: { $0.key < $1.key })
        where !Self.sectionNames.contains(key) && !Self.arrayNames.contains(key) {
            if Self.mayStandForLocation(key) { doubtful += 1 }
            let path = TOMLPath.root.key(key)
            switch node {
            case .table:
                report(path, "unknown table [\(path)]")
            case .array(let elements) where !elements.isEmpty && elements.allSatisfy(\.isTable):
                report(path, "unknown table [[\(path)]]")
            default:
                report(path, "unknown key \"\(key)\" at top level")
            }
        }
        return doubtful
    }

    /// The names that say where the folders and the state are: the sections and their keys.
    private static let locationNames = ["paths", "store", "node", "inbox", "done", "failed", "state", "processing", "url", "lease", "name", "roles"]

    /// A name within two edits of one of `locationNames` (`[path]`, `[Paths]`, `[stor]`, a top-level `done = ...`).
    static func mayStandForLocation(_ name: String) -> Bool {
        let name = Array(name.lowercased().unicodeScalars)
        guard name.count < 24 else { return false }
        return locationNames.contains { editDistance(name, Array($0.unicodeScalars)) <= 2 }
    }

    private static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// The named table, or an empty one when it is absent (every key then takes its default).
    mutating func section(_ name: String, in root: [String: TOMLNode]) -> Section {
        let path = TOMLPath.root.key(name)
        let empty = Section(entries: [:], path: path, title: "[\(name)]")
        guard let node = root[name] else { return empty }
        guard case .table(let entries) = node else {
            report(path, "\(name): expected a table [\(name)], got \(node.typeName)")
            return empty
        }
        return Section(entries: entries, path: path, title: "[\(name)]")
    }

    private mutating func arrayOfTables(_ name: String, in root: [String: TOMLNode]) -> [(Int, [String: TOMLNode])] {
        guard let node = root[name] else { return [] }
        let path = TOMLPath.root.key(name)
        guard case .array(let elements) = node else {
            report(path, "\(name): expected [[\(name)]] entries (an array of tables), got \(node.typeName)")
            return []
        }
        var tables: [(Int, [String: TOMLNode])] = []
        for (index, element) in elements.enumerated() {
            guard case .table(let entries) = element else {
                report(path.index(index), "\(name)[\(index)]: expected a table, got \(element.typeName)")
                continue
            }
            tables.append((index, entries))
        }
        return tables
    }

    mutating func checkKeys(_ section: Section, allowed: Set<String>) {
        for key in section.entries.keys.sorted() where !allowed.contains(key) {
            report(section.path.key(key), "unknown key \"\(key)\" in \(section.title)")
        }
    }

    // MARK: - [paths] [inbox] [limits] [sweeps] [retention]

    private mutating func readPaths(_ section: Section) -> Paths {
        checkKeys(section, allowed: ["inbox", "done", "failed", "state", "processing"])
        func resolved(_ key: String, default fallback: String, validator: inout ConfigValidator) -> String {
            let text = validator.nonEmptyString(section, key) ?? fallback
            return FileSystem.absolute(text, relativeTo: validator.baseDirectory)
        }
        let inbox = resolved("inbox", default: "../Inbox", validator: &self)
        let paths = Paths(
            inbox: inbox,
            done: resolved("done", default: "../Done", validator: &self),
            failed: resolved("failed", default: "../Failed", validator: &self),
            state: resolved("state", default: "../.orchestrator", validator: &self),
            processing: resolved("processing", default: inbox + "/.processing", validator: &self))

        // Two roles sharing one directory would feed results back in as input or mix state with files.
        let roles = [("inbox", paths.inbox), ("done", paths.done), ("failed", paths.failed),
                     ("state", paths.state), ("processing", paths.processing)]
        for later in roles.indices {
            for earlier in roles.indices where earlier < later && roles[earlier].1 == roles[later].1 {
                let line = max(sourceMap.line(of: section.path.key(roles[earlier].0)),
                               sourceMap.line(of: section.path.key(roles[later].0)))
                report(line: line, "paths: \(roles[earlier].0) and \(roles[later].0) are the same directory (\(roles[later].1))")
            }
        }
        return paths
    }

    private mutating func readInbox(_ section: Section) -> InboxSettings {
        checkKeys(section, allowed: ["include", "exclude", "recursive", "settle"])
        let defaults = InboxSettings.defaults
        return InboxSettings(
            include: globs(section, "include", allowEmpty: false) ?? defaults.include,
            exclude: globs(section, "exclude", allowEmpty: true) ?? defaults.exclude,
            recursive: bool(section, "recursive") ?? defaults.recursive,
            settle: duration(section, "settle") ?? defaults.settle)
    }

    private mutating func readLimits(_ section: Section) -> Limits {
        checkKeys(section, allowed: ["max_concurrent", "max_cpu_percent", "max_memory_percent",
                                     "starvation_after", "shutdown_grace"])
        let defaults = Limits.defaults
        return Limits(
            maxConcurrent: integer(section, "max_concurrent", in: 1...Limits.mostConcurrent) ?? defaults.maxConcurrent,
            maxCPUPercent: percent(section, "max_cpu_percent") ?? defaults.maxCPUPercent,
            maxMemoryPercent: percent(section, "max_memory_percent") ?? defaults.maxMemoryPercent,
            starvationAfter: duration(section, "starvation_after") ?? defaults.starvationAfter,
            shutdownGrace: duration(section, "shutdown_grace") ?? defaults.shutdownGrace)
    }

    private mutating func readSweeps(_ section: Section) -> Sweeps {
        checkKeys(section, allowed: ["retry", "ingest", "upload", "watchdog", "prune"])
        let defaults = Sweeps.defaults
        return Sweeps(
            retry: duration(section, "retry") ?? defaults.retry,
            ingest: duration(section, "ingest") ?? defaults.ingest,
            upload: duration(section, "upload") ?? defaults.upload,
            watchdog: duration(section, "watchdog") ?? defaults.watchdog,
            prune: duration(section, "prune") ?? defaults.prune)
    }

    private mutating func readRetention(_ section: Section) -> Retention {
        checkKeys(section, allowed: ["jobs", "logs"])
        let defaults = Retention.defaults
        return Retention(
            jobs: duration(section, "jobs") ?? defaults.jobs,
            logs: duration(section, "logs") ?? defaults.logs)
    }

    // MARK: - [[handler]]

    private static let handlerKeys: Set<String> = [
        "name", "match", "command", "priority", "timeout", "max_attempts", "backoff", "breaker", "upload",
        "cpu_percent", "memory_percent",
    ]

    private mutating func readHandlers(_ tables: [(Int, [String: TOMLNode])]) -> [Handler] {
        var handlers: [Handler] = []
        var firstLines: [String: Int] = [:]
        for (index, entries) in tables {
            let path = TOMLPath.root.key("handler").index(index)
            let declaredName = Self.usableName(entries)
            let section = Section(entries: entries, path: path,
                                  title: declaredName.map { "[[handler]] \"\($0)\"" } ?? "[[handler]] #\(index + 1)")
            let subject = declaredName.map { "handler \"\($0)\"" } ?? "[[handler]] #\(index + 1)"
            checkKeys(section, allowed: Self.handlerKeys)

            let name = requiredName(section, subject: subject, kind: "handler", firstLines: &firstLines)
            let match = globs(section, "match", allowEmpty: false) ?? InboxSettings.defaultInclude
            let command = requiredCommand(section, subject: subject, forTask: false)
            let upload = section.entries["upload"] == nil ? nil : self.command(section, "upload", forTask: false)
            let handler = Handler(
                name: name ?? "", match: match, command: command ?? CommandTemplate(arguments: []),
                priority: integer(section, "priority", in: 1...10) ?? 5,
                timeout: duration(section, "timeout") ?? .seconds(600),
                maxAttempts: integer(section, "max_attempts", atLeast: 1) ?? 3,
                backoff: duration(section, "backoff") ?? .seconds(30),
                breaker: breaker(section),
                upload: upload,
                cpuPercent: percent(section, "cpu_percent"),
                memoryPercent: percent(section, "memory_percent"),
                line: sourceMap.line(of: path))
            if name != nil && command != nil { handlers.append(handler) }
        }
        return handlers
    }

    // MARK: - [[task]]

    private static let taskKeys: Set<String> = [
        "name", "every", "cron", "tz", "on", "command", "after", "priority", "timeout", "max_attempts", "backoff",
        "breaker", "enabled", "catch_up", "overlap", "cpu_percent", "memory_percent",
    ]

    /// What the dependency check needs from a task whose name is usable, even if the task has other problems.
    private struct TaskNode {
        var name: String
        var path: TOMLPath
        var after: [(name: String, path: TOMLPath)]
    }

    private mutating func readTasks(_ tables: [(Int, [String: TOMLNode])]) -> [TaskDefinition] {
        var tasks: [TaskDefinition] = []
        var nodes: [TaskNode] = []
        var firstLines: [String: Int] = [:]
        for (index, entries) in tables {
            let path = TOMLPath.root.key("task").index(index)
            let declaredName = Self.usableName(entries)
            let section = Section(entries: entries, path: path,
                                  title: declaredName.map { "[[task]] \"\($0)\"" } ?? "[[task]] #\(index + 1)")
            let subject = declaredName.map { "task \"\($0)\"" } ?? "[[task]] #\(index + 1)"
            checkKeys(section, allowed: Self.taskKeys)

            let name = requiredName(section, subject: subject, kind: "task", firstLines: &firstLines)
            let trigger = readTrigger(section, subject: subject)
            let command = requiredCommand(section, subject: subject, forTask: true)
            let after = strings(section, "after", expectation: "an array of task names like [\"fetch\"]") ?? []
            if let name {
                nodes.append(TaskNode(name: name, path: path, after: after.map { (name: $0.text, path: $0.path) }))
            }
            let task = TaskDefinition(
                name: name ?? "", trigger: trigger ?? .event(""), command: command ?? CommandTemplate(arguments: []),
                after: after.map(\.text),
                priority: integer(section, "priority", in: 1...10) ?? 5,
                timeout: duration(section, "timeout") ?? .seconds(600),
                maxAttempts: integer(section, "max_attempts", atLeast: 1) ?? 1,
                backoff: duration(section, "backoff") ?? .seconds(30),
                breaker: breaker(section),
                enabled: bool(section, "enabled") ?? true,
                catchUp: choice(section, "catch_up", as: CatchUp.self) ?? .once,
                overlap: choice(section, "overlap", as: Overlap.self) ?? .skip,
                cpuPercent: percent(section, "cpu_percent"),
                memoryPercent: percent(section, "memory_percent"),
                line: sourceMap.line(of: path))
            if name != nil && trigger != nil && command != nil { tasks.append(task) }
        }
        checkDependencies(nodes)
        return tasks
    }

    private mutating func readTrigger(_ section: Section, subject: String) -> Trigger? {
        let present = ["every", "cron", "on"].filter { section.entries[$0] != nil }
        let tzPath = section.path.key("tz")
        if section.entries["tz"] != nil && !present.contains("cron") {
            report(tzPath, "\(subject): tz is only allowed with cron")
        }
        let timeZone = string(section, "tz")
        // Without cron, "tz is only allowed with cron" is all there is to say about it.
        // The scheduler's own rule (`loadZone`): a file under /usr/share/zoneinfo that it cannot use (`right/UTC`,
        // `posix/...`, `localtime`) passed here, and the task then never ran.
        let zoneKnown = timeZone.map { !present.contains("cron") || (try? loadZone($0)) != nil } ?? true
        if let timeZone, !zoneKnown {
            report(tzPath, "tz: unknown time zone \"\(timeZone)\" (expected an IANA name such as Europe/Berlin or UTC)")
        }
        // Each value is checked even when more than one is given, so that one run of `config check` names every
        // problem, not one per edit.
        let triggers = present.map { readTriggerValue($0, section, timeZone: zoneKnown ? timeZone : nil) }
        switch present.count {
        case 0:
            report(section.path, "\(subject): has none of every, cron, on")
            return nil
        case 1:
            return zoneKnown ? triggers[0] : nil
        default:
            let line = present.map { sourceMap.line(of: section.path.key($0)) }.max() ?? 0
            let listed = present.count == 2
                ? "both \(present[0]) and \(present[1])"
                : present.dropLast().joined(separator: ", ") + " and " + present[present.count - 1]
            report(line: line, "\(subject): has \(listed); choose one")
            return nil
        }
    }

    private mutating func readTriggerValue(_ key: String, _ section: Section, timeZone: String?) -> Trigger? {
        switch key {
        case "every":
            return duration(section, "every").map(Trigger.every)
        case "cron":
            guard let expression = nonEmptyString(section, "cron") else { return nil }
            do {
                let parsed = try CronExpression(parsing: expression)
                if !parsed.canEverFire {
                    report(section.path.key("cron"), "cron: \"\(expression)\" can never fire (it names only dates that do not exist)")
                    return nil
                }
            } catch {
                report(section.path.key("cron"), "cron: \(error)")
                return nil
            }
            return .cron(expression: expression, timeZone: timeZone)
        default:
            guard let name = nonEmptyString(section, "on") else { return nil }
            // `trigger` and the API refuse any other name: a task listening to one would never run.
            guard EventName.isValid(name) else {
                let shown = ConfigProblem.shortened(name)
                report(section.path.key("on"), "on: \(String(reflecting: shown)) is not an event name (\(EventName.rule)); no event could ever fire it")
                return nil
            }
            return .event(name)
        }
    }

    private mutating func checkDependencies(_ nodes: [TaskNode]) {
        let known = Set(nodes.map(\.name))
        var edges: [String: [String]] = [:]
        for node in nodes {
            for dependency in node.after {
                if known.contains(dependency.name) {
                    if edges[node.name, default: []].contains(dependency.name) == false {
                        edges[node.name, default: []].append(dependency.name)
                    }
                } else {
                    report(dependency.path, "unknown task \"\(dependency.name)\" in after")
                }
            }
        }
        let afterLines = Dictionary(nodes.map { ($0.name, sourceMap.line(of: $0.path.key("after"))) },
                                    uniquingKeysWith: { first, _ in first })
        for cycle in DependencyGraph.cycles(order: nodes.map(\.name), edges: edges) {
            report(line: afterLines[cycle[0]] ?? 0, "dependency cycle: " + cycle.joined(separator: " -> "))
        }
    }

    // MARK: - Shared by handlers and tasks

    /// The name if it is a non-empty string, used to title messages before it is validated.
    private static func usableName(_ entries: [String: TOMLNode]) -> String? {
        if case .string(let name)? = entries["name"], !name.isEmpty { return name }
        return nil
    }

    private mutating func requiredName(_ section: Section, subject: String, kind: String,
                                       firstLines: inout [String: Int]) -> String? {
        guard section.entries["name"] != nil else {
            report(section.path, "\(subject): missing required key \"name\"")
            return nil
        }
        guard let name = nonEmptyString(section, "name") else { return nil }
        let line = sourceMap.line(of: section.path.key("name"))
        // A name goes into log lines, `show`, metrics labels and the worker's environment (as a C string, where a
        // NUL would cut it short): a control character would garble or forge each of them.
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            let shown = ConfigProblem.shortened(name)
            report(line: line, "name: \(String(reflecting: shown)) contains a control character; a \(kind) name must not")
            return nil
        }
        if let first = firstLines[name] {
            report(line: line, "duplicate \(kind) name \"\(name)\" (first defined at line \(first))")
            return nil
        }
        firstLines[name] = line
        return name
    }

    private mutating func requiredCommand(_ section: Section, subject: String, forTask: Bool) -> CommandTemplate? {
        guard section.entries["command"] != nil else {
            report(section.path, "\(subject): missing required key \"command\"")
            return nil
        }
        return command(section, "command", forTask: forTask)
    }

    private mutating func breaker(_ section: Section) -> Breaker? {
        guard let node = section.entries["breaker"] else { return nil }
        guard case .table(let entries) = node else {
            mismatch(section, "breaker", expected: "an inline table like { failures = 5, cooldown = \"5m\" }", got: node)
            return nil
        }
        let inner = Section(entries: entries, path: section.path.key("breaker"),
                            title: "breaker of \(section.title)", keyPrefix: "breaker.")
        checkKeys(inner, allowed: ["failures", "cooldown"])
        // SPEC's example values stand in for a half-written breaker, as they do everywhere else.
        return Breaker(failures: integer(inner, "failures", atLeast: 1) ?? 5,
                       cooldown: duration(inner, "cooldown") ?? .seconds(300))
    }
}

/// A table being read, with how messages name it.
struct Section {
    var entries: [String: TOMLNode]
    var path: TOMLPath
    /// How an unknown-key message names the table: `[paths]`, `[[handler]] "default"`.
    var title: String
    /// Put before key names in messages, so a breaker's key reads `breaker.cooldown`.
    var keyPrefix = ""
}

extension TOMLNode {
    var isTable: Bool {
        if case .table = self { return true }
        return false
    }
}
