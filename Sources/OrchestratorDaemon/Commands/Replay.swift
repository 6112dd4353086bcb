import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform

/// `orchestrator replay`: moves files from Failed/ back into Inbox/, where they arrive as new jobs with a
/// fresh retry budget. Works with or without a running daemon: the rename into Inbox is what a daemon
/// sees, and what the next start finds otherwise.
public enum Replay {
    public struct Outcome: Sendable {
        public var lines: [String] = []
        public var problems: [String] = []
    }

    public static func run(config: Config, paths: [String], all: Bool, dryRun: Bool, workingDirectory: String) throws(CommandError) -> Outcome {
        try refuseHostProblems(config, commands: false)
        let failedRoot = PathBytes(config.paths.failed)
        guard let failedReal = FileSystem.realPath(failedRoot) else {
            throw CommandError(.badInput, "error: Failed folder \(failedRoot) does not exist")
        }
        var names: [RelativePath] = []
        var outcome = Outcome()
        if all {
            // Hidden entries are never the orchestrator's results: a `.gitkeep`, an editor's swap file, a move's
            // temporary copy. Replaying them would feed them in as input, so `--all` leaves them where they are.
            let cursor = DirectoryCursor(root: failedRoot, recursive: true) { $0.hasHiddenComponent }
            while case let slice = cursor.next(limit: 1024), !slice.isEmpty {
                for entry in slice where !entry.path.hasHiddenComponent {
                    // Links, FIFOs and sockets are never handed to a worker: they would only fail again.
                    guard entry.status.isRegular else {
                        outcome.lines.append("left \(entry.path): a \(entry.status.kind.rawValue), which would fail again")
                        continue
                    }
                    names.append(entry.path)
                }
            }
        } else {
            for argument in paths {
                names.append(try resolve(argument, failedReal: failedReal, failedRoot: failedRoot, workingDirectory: workingDirectory))
            }
        }
        if all, names.isEmpty {
            outcome.lines.append("nothing to replay: \(failedRoot) holds no files")
            return outcome
        }
        let inbox = PathBytes(config.paths.inbox)
        for name in names {
            // In Inbox it would wait for good: no daemon of this config takes it, and `status` does not count it.
            if let why = notTaken(name, config) {
                if all {
                    outcome.lines.append("left \(Reports.printable(name)): \(why)")
                } else {
                    outcome.problems.append("error: \(Reports.printable(name)) stays in Failed/: \(why)")
                }
                continue
            }
            if dryRun {
                outcome.lines.append("would replay \(name)")
                continue
            }
            do {
                if let finalName = try FileSystem.moveAvoidingCollisions(
                    failedRoot.appending(name), into: inbox, as: name, tag: "replay")
                {
                    outcome.lines.append("replayed \(name) -> Inbox/\(finalName)")
                } else {
                    outcome.problems.append("error: \(name) is no longer in Failed/")
                }
            } catch {
                outcome.problems.append("error: cannot replay \(name): \(error)")
            }
        }
        FileSystem.syncDirectory(inbox)
        return outcome
    }

    /// Why a file of this name in Inbox would never be taken as input; nil if it would.
    static func notTaken(_ name: RelativePath, _ config: Config) -> String? {
        if !config.inbox.recursive, name.bytes.contains(UInt8(ascii: "/")) {
            return "it is in a folder, and [inbox] recursive = false takes only the files at Inbox's top"
        }
        if name.hasHiddenComponent { return "a hidden name, which Inbox ignores" }
        if !config.accepts(name) { return "[inbox] include/exclude would not take it from Inbox" }
        return nil
    }

    /// Accepts a path to a file inside Failed/ (absolute, relative to the current directory, or relative to
    /// Failed/). Anything that resolves elsewhere, through `..` or a symlink, is refused with exit 65.
    static func resolve(_ argument: String, failedReal: PathBytes, failedRoot: PathBytes, workingDirectory: String) throws(CommandError) -> RelativePath {
        let bytes = ArgumentBytes.of(argument)
        // A name given back in a message as a terminal can show it: an escape or a newline in it stays text.
        let shown = Reports.terminalSafe(argument)
        let given = argument.hasPrefix("/") ? PathBytes(bytes) : PathBytes(Array(workingDirectory.utf8) + [UInt8(ascii: "/")] + bytes)
        let prefix = failedReal.bytes + [UInt8(ascii: "/")]
        // Also from the folder holding Failed/ (`Failed/x` run anywhere, as `POST /api/v1/replay` takes it).
        let besideFailed = PathBytes(failedRoot.parent.bytes + [UInt8(ascii: "/")] + bytes)
        let candidates = argument.hasPrefix("/") ? [given, failedRoot.appending(RelativePath(bytes))]
            : [given, failedRoot.appending(RelativePath(bytes)), besideFailed]
        // A link the daemon put in Failed/ (one renamed into Inbox: never handed to a worker) names its target, which
        // is elsewhere: say what it is rather than "not inside".
        for candidate in candidates where FileSystem.status(candidate)?.kind == .symlink {
            guard let folder = FileSystem.realPath(candidate.parent),
                folder == failedReal || folder.bytes.starts(with: prefix)
            else { continue }
            throw CommandError(
                .badInput,
                "error: \(shown) is a symbolic link; the daemon never hands links to a worker, so it would fail again: copy the file it points to into Inbox instead")
        }
        let resolved = candidates.compactMap(FileSystem.realPath)
        if let inside = resolved.first(where: { $0.bytes.starts(with: prefix) }) {
            guard FileSystem.status(inside)?.isRegular == true else {
                throw CommandError(.badInput, "error: \(shown) is not a file")
            }
            return RelativePath(Array(inside.bytes.dropFirst(prefix.count)))
        }
        if !resolved.isEmpty || argument.split(separator: "/").contains("..") {
            throw CommandError(.badInput, "error: \(shown) is not inside the Failed folder \(failedRoot); refusing to move it")
        }
        // Say where it looked: a path relative to the current directory is taken from there, not from Failed/.
        throw CommandError(
            .badInput,
            "error: \(shown) does not exist in the Failed folder \(failedRoot) (looked for \(Reports.terminalSafe(given.description)) and \(Reports.terminalSafe(failedRoot.appending(RelativePath(bytes)).description)))")
    }
}
