#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import OrchestratorCore

/// Checks that depend on this machine's file system, not only on the file's text: made by `config check`
/// and by the commands that act on the folders, not by every command that merely loads the config (so
/// `status` still works while a worker script is being replaced).
extension Config {
    /// Every problem `config check` and `watch` refuse: overlapping folders, then commands that cannot start.
    public func hostProblems(searchPath: String? = Config.processSearchPath()) -> [ConfigProblem] {
        folderProblems() + commandProblems(searchPath: searchPath)
    }

    /// SPEC §5 guarantee 18: Inbox, Done, Failed, processing and state are distinct after resolving symlinks.
    ///
    /// Distinct means none is the same directory as another and none lies inside another, with one exception:
    /// the processing area may lie inside Inbox when the config writes it there (the default
    /// `Inbox/.processing`), because then scans and the watch know to skip it. Anything else nested is an
    /// endless loop or a trap: Done inside Inbox feeds results back in (with `recursive = true`), Inbox
    /// inside Done or Failed puts input where `replay` and the user expect results, state inside any of them
    /// mixes the database with files.
    ///
    /// Folders are compared by device and inode, of themselves and of each ancestor, so a symlink or a bind
    /// mount that makes two paths one folder is caught. A folder that does not exist yet (`watch` creates
    /// it) is placed under its nearest existing ancestor.
    public func folderProblems() -> [ConfigProblem] {
        let roles: [(key: String, path: String)] = [
            ("inbox", paths.inbox), ("done", paths.done), ("failed", paths.failed), ("state", paths.state),
            ("processing", paths.processing),
        ]
        var problems: [ConfigProblem] = []
        // A folder that cannot be reached (a symlink loop, a file where a folder should be) is said first, at its key:
        // `watch` would only fail to create it.
        for role in roles {
            var status = stat()
            let found = stat(role.path, &status) == 0
            let error = errno
            if found {
                guard (status.st_mode & S_IFMT) != S_IFDIR else { continue }
                problems.append(ConfigProblem(
                    file: file, line: line(ofKey: "paths.\(role.key)"), message: "paths: \(role.key) (\(role.path)) is not a folder"))
            } else if error != ENOENT {
                problems.append(ConfigProblem(
                    file: file, line: line(ofKey: "paths.\(role.key)"),
                    message: "paths: \(role.key) (\(role.path)) cannot be reached: \(String(cString: strerror(error)))"))
            }
        }
        guard problems.isEmpty else { return problems }
        let locations = roles.map { FolderLocation(resolving: $0.path) }
        for first in roles.indices {
            for second in roles.indices where second != first {
                let (a, b) = (roles[first], roles[second])
                let line = max(line(ofKey: "paths.\(a.key)"), line(ofKey: "paths.\(b.key)"))
                switch locations[first].relation(to: locations[second]) {
                case .same where first < second:
                    problems.append(ConfigProblem(
                        file: file, line: line,
                        message: "paths: \(a.key) (\(a.path)) and \(b.key) (\(b.path)) are the same directory after resolving symlinks"))
                case .inside:
                    let writtenUnderInbox = a.key == "processing" && paths.processing.hasPrefix(paths.inbox + "/")
                    // Inside a folder that Inbox is or lies inside: Inbox's place is the problem, reported on its own.
                    if writtenUnderInbox && locations[0].relation(to: locations[second]) != .apart { continue }
                    if a.key == "processing" && b.key == "inbox" {
                        problems.append(ConfigProblem(
                            file: file, line: line,
                            message: "paths: processing (\(a.path)) lies inside inbox (\(b.path)) through a symlink or bind mount; write it as a path under inbox (like \(paths.inbox)/.processing) or move it out"))
                    } else {
                        problems.append(ConfigProblem(
                            file: file, line: line,
                            message: "paths: \(a.key) (\(a.path)) lies inside \(b.key) (\(b.path)); the five folders must not overlap (only processing may lie inside inbox)"))
                    }
                default:
                    continue
                }
            }
        }
        // The claim is a rename from Inbox into the processing area: atomic only within one filesystem.
        if problems.isEmpty, let inbox = locations[0].device, let processing = locations[4].device, inbox != processing {
            problems.append(ConfigProblem(
                file: file, line: line(ofKey: "paths.processing"),
                message: "processing area \(paths.processing) is not on the same filesystem as Inbox \(paths.inbox)"))
        }
        return problems
    }

    /// SPEC §5 guarantee 14: each handler's and task's `command`, and each `upload`, names an executable file.
    ///
    /// argv[0] is already absolute when it contains `/` (resolved against the config's folder at load); a bare
    /// name is looked up in `searchPath` as the daemon's spawn will. A program named by a placeholder
    /// (`{file}`) is only known per file and is not checked.
    public func commandProblems(searchPath: String?) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func check(_ command: CommandTemplate?, key: String, subject: String) {
            guard let program = command?.arguments.first, program.placeholders.isEmpty else { return }
            let name = String(decoding: program.expand(PlaceholderValues(file: [], name: RelativePath([]), job: 0, attempt: 0)),
                              as: UTF8.self)
            guard let reason = Executable.problem(name, searchPath: searchPath, baseDirectory: baseDirectory) else { return }
            problems.append(ConfigProblem(file: file, line: line(ofKey: key + "[0]"),
                                          message: "\(subject): \(key.split(separator: ".").last ?? ""): \(reason)"))
        }
        for (position, handler) in handlers.enumerated() {
            let index = sourceIndex("handler", at: handler.line) ?? position
            check(handler.command, key: "handler[\(index)].command", subject: "handler \"\(handler.name)\"")
            check(handler.upload, key: "handler[\(index)].upload", subject: "handler \"\(handler.name)\"")
        }
        for (position, task) in tasks.enumerated() {
            check(task.command, key: "task[\(sourceIndex("task", at: task.line) ?? position)].command", subject: "task \"\(task.name)\"")
        }
        return problems.sorted { $0.line < $1.line }
    }

    /// Which `[[table]]` of the file starts at `line`. Not the position among the loaded ones: a table refused for
    /// another problem (a bad cron) is not loaded, and the next one's command error was placed at its line.
    private func sourceIndex(_ table: String, at line: Int) -> Int? {
        guard line > 0 else { return nil }
        var index = 0
        while case let start = self.line(ofKey: "\(table)[\(index)]"), start > 0 {
            if start == line { return index }
            index += 1
        }
        return nil
    }

    /// The `PATH` a worker's bare argv[0] is looked up in: the daemon's own, as `posix_spawnp` uses it.
    public static func processSearchPath() -> String? {
        getenv("PATH").map { String(cString: $0) }
    }
}

/// Whether a program can be started, said the way a config message needs it.
enum Executable {
    /// glibc's `posix_spawnp` searches this when `PATH` is unset.
    static let defaultSearchPath = "/bin:/usr/bin"

    /// nil when `program` resolves to an executable regular file; otherwise why not.
    static func problem(_ program: String, searchPath: String?, baseDirectory: String) -> String? {
        if program.contains("/") {
            return fileProblem(program).map { "\(program) \($0)" }
        }
        // An empty PATH entry means the working directory, which for a worker is the config's folder.
        let directories = (searchPath ?? defaultSearchPath).split(separator: ":", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? baseDirectory : String($0) }
        if directories.contains(where: { fileProblem($0 + "/" + program) == nil }) { return nil }
        return "\"\(program)\" is not found in PATH (no executable file of that name in any of its folders)"
    }

    private static func fileProblem(_ path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            return errno == ENOENT || errno == ENOTDIR ? "does not exist" : "cannot be read: \(String(cString: strerror(errno)))"
        }
        if (status.st_mode & S_IFMT) == S_IFDIR { return "is a folder, not a program" }
        if (status.st_mode & S_IFMT) != S_IFREG { return "is not a regular file" }
        if access(path, X_OK) != 0 { return "is not executable (chmod +x it)" }
        return nil
    }
}

/// Where a folder is, as the kernel sees it: the components of its real path, and for each existing
/// ancestor (from `/`) and for itself if it exists, its device and inode.
public struct FolderLocation: Equatable {
    struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    /// The real path of the nearest existing ancestor, then the names below it that do not exist yet.
    var components: [String]
    /// `identities[k]` is the folder made of the first k components; nil where it does not exist.
    var identities: [Identity?]

    enum Relation { case same, inside, apart }

    init(components: [String], identities: [Identity?]) {
        self.components = components
        self.identities = identities
    }

    /// The filesystem the folder is on, or will be made on: its nearest existing ancestor's.
    var device: UInt64? { identities.last { $0 != nil }??.device }

    /// The folder's real path: symlinks and `..` in the part that exists resolved, the rest as written.
    public var realPath: String { "/" + components.joined(separator: "/") }

    public init(resolving path: String) {
        var missing: [String] = []
        var existing = path
        var real: String?
        while true {
            if let resolved = realpath(existing, nil) {
                real = String(cString: resolved)
                free(resolved)
                break
            }
            guard existing != "/", let slash = existing.lastIndex(of: "/") else { break }
            missing.insert(String(existing[existing.index(after: slash)...]), at: 0)
            existing = slash == existing.startIndex ? "/" : String(existing[..<slash])
        }
        let found = (real ?? existing).split(separator: "/").map(String.init)
        var identities: [Identity?] = []
        var prefix = ""
        for index in 0...found.count {
            if index > 0 { prefix += "/" + found[index - 1] }
            var status = stat()
            identities.append(stat(prefix.isEmpty ? "/" : prefix, &status) == 0
                ? Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)) : nil)
        }
        self.init(components: found + missing, identities: identities + missing.map { _ in nil })
    }

    /// Whether this folder is `other`, lies inside it, or neither.
    ///
    /// `other` is found among this folder's ancestors by identity at its nearest existing ancestor, then by
    /// the names below that which do not exist yet.
    func relation(to other: FolderLocation) -> Relation {
        guard let anchor = other.identities.lastIndex(where: { $0 != nil }), let anchorIdentity = other.identities[anchor] else {
            return components == other.components ? .same : .apart
        }
        let tail = other.components[anchor...]
        for index in identities.indices where identities[index] == anchorIdentity {
            let below = components[index...]
            guard below.count >= tail.count, below.prefix(tail.count).elementsEqual(tail) else { continue }
            return below.count == tail.count ? .same : .inside
        }
        return .apart
    }
}
