#if canImport(Glibc)
import Glibc
#endif
import OrchestratorCore

/// Moves a finished file out of the processing area into Done/ or Failed/ (guarantee 16): never over
/// another file, whatever the name's length, whatever already sits in the way of its folders, and across
/// filesystems as a copy that is never visible half-written.
public enum FileMover {
    /// Moves `source` to `root/relative` or, when that is taken, to a collision-safe name; returns the
    /// name used, or nil when the source is gone (its worker removed it). Only the entry is moved: a
    /// symlink stays a link and is never followed.
    public static func move(
        _ source: PathBytes, into root: PathBytes, as relative: RelativePath, tag: String
    ) throws(SystemError) -> RelativePath? {
        guard let status = FileSystem.status(source) else {
            return try finishInterruptedCopy(into: root, as: relative, tag: tag)
        }
        let placed = try placeParents(of: relative, in: root, tag: tag, create: true)
        var attempt = 1
        while true {
            let candidate = CollisionName.candidate(for: placed, tag: tag, attempt: attempt)
            do {
                switch try FileSystem.renameNoReplace(source, root.appending(candidate)) {
                case .moved: return candidate
                case .sourceMissing: return nil
                case .destinationExists: attempt += 1
                }
            } catch where error.code == EXDEV {
                return try copyAcross(source, status, into: root, as: placed, tag: tag)
            }
        }
    }

    /// Where `move` may have put `relative` under `root` with this tag, most likely first: its folders as they
    /// are placed now (a folder name taken by a file gives way to `a~TAG`), then the file's own collision names.
    /// Recovery looks there for a file whose move was done but not recorded.
    public static func possiblePlaces(of relative: RelativePath, in root: PathBytes, tag: String, attempts: Int = 20) -> [RelativePath] {
        let placed = (try? placeParents(of: relative, in: root, tag: tag, create: false)) ?? relative
        var places: [RelativePath] = []
        for base in placed == relative ? [relative] : [placed, relative] {
            for attempt in 1...max(1, attempts) {
                let candidate = CollisionName.candidate(for: base, tag: tag, attempt: attempt)
                if !places.contains(candidate) { places.append(candidate) }
            }
        }
        return places
    }

    /// The hidden name a cross-filesystem copy is written under, in its destination folder.
    static func temporaryName(tag: String) -> [UInt8] { Array(".orchestrator-move-\(tag)".utf8) }

    // MARK: Folders

    /// `relative` with every parent folder usable: a folder component taken by a file (Done/a, then a/b
    /// arrives) becomes `a~TAG` (then `a~TAG-2` ...). With `create`, the folders are made.
    static func placeParents(of relative: RelativePath, in root: PathBytes, tag: String, create: Bool) throws(SystemError) -> RelativePath {
        let components = relative.components.map { Array($0) }
        guard components.count > 1 else { return relative }
        var placed = RelativePath([])
        for component in components.dropLast() {
            var attempt = 1
            while true {
                let candidate = attempt == 1 ? component : CollisionName.withSuffix(
                    component, Array("~\(tag)".utf8) + (attempt > 2 ? Array("-\(attempt - 1)".utf8) : []))
                let path = root.appending(placed.appending(candidate))
                if let existing = FileSystem.status(path) {
                    if existing.isDirectory {
                        placed = placed.appending(candidate)
                        break
                    }
                    attempt += 1
                    continue
                }
                if create {
                    let result = path.withCString { mkdir($0, 0o755) }
                    if result != 0 && errno != EEXIST { throw SystemError("mkdir", path.description) }
                    if FileSystem.status(path)?.isDirectory != true {
                        attempt += 1
                        continue
                    }
                }
                placed = placed.appending(candidate)
                break
            }
        }
        return placed.appending(components[components.count - 1])
    }

    // MARK: Across filesystems

    /// Copy under a hidden name, fsync, remove the source, rename into place. A crash leaves either the
    /// source (the copy starts over) or a complete hidden copy (`finishInterruptedCopy` puts it in place).
    static func copyAcross(
        _ source: PathBytes, _ status: FileStatus, into root: PathBytes, as placed: RelativePath, tag: String
    ) throws(SystemError) -> RelativePath? {
        let folder = root.appending(RelativePath(placed.parent))
        let temporary = folder.appending(RelativePath(temporaryName(tag: tag)))
        // Left by a crash while the source still existed: incomplete, so it is made again.
        _ = temporary.withCString { unlink($0) }
        try copyEntry(source, status, to: temporary)
        FileSystem.syncDirectory(folder)
        if source.withCString({ unlink($0) }) != 0 && errno != ENOENT {
            let error = SystemError("unlink", source.description)
            _ = temporary.withCString { unlink($0) }
            throw error
        }
        FileSystem.syncDirectory(source.parent)
        return try putInPlace(temporary, into: root, as: placed, tag: tag)
    }

    /// A source gone and a complete hidden copy in its folder: the crash came between unlink and rename.
    static func finishInterruptedCopy(into root: PathBytes, as relative: RelativePath, tag: String) throws(SystemError) -> RelativePath? {
        let placed = try placeParents(of: relative, in: root, tag: tag, create: false)
        let temporary = root.appending(RelativePath(placed.parent)).appending(RelativePath(temporaryName(tag: tag)))
        guard FileSystem.exists(temporary) else { return nil }
        return try putInPlace(temporary, into: root, as: placed, tag: tag)
    }

    private static func putInPlace(_ temporary: PathBytes, into root: PathBytes, as placed: RelativePath, tag: String) throws(SystemError) -> RelativePath? {
        var attempt = 1
        while true {
            let candidate = CollisionName.candidate(for: placed, tag: tag, attempt: attempt)
            switch try FileSystem.renameNoReplace(temporary, root.appending(candidate)) {
            case .moved: return candidate
            case .destinationExists: attempt += 1
            case .sourceMissing: throw SystemError("rename", temporary.description, ENOENT)
            }
        }
    }

    /// A copy of the entry itself: a regular file's bytes (fsynced, mode and mtime kept), a symlink's
    /// target text, a FIFO or socket as a new one. Devices are refused (EPERM) rather than opened.
    static func copyEntry(_ source: PathBytes, _ status: FileStatus, to destination: PathBytes) throws(SystemError) {
        switch status.kind {
        case .regular:
            try copyFile(source, to: destination)
        case .symlink:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = source.withCString { readlink($0, &buffer, buffer.count - 1) }
            guard length >= 0 else { throw SystemError("readlink", source.description) }
            let target = Array(buffer[..<length]).map { UInt8(bitPattern: $0) }
            let result = PathBytes(target).withCString { to in destination.withCString { symlink(to, $0) } }
            if result != 0 { throw SystemError("symlink", destination.description) }
        case .fifo, .socket:
            var info = stat()
            guard source.withCString({ lstat($0, &info) }) == 0 else { throw SystemError("lstat", source.description) }
            if destination.withCString({ mknod($0, info.st_mode, 0) }) != 0 { throw SystemError("mknod", destination.description) }
        case .directory, .characterDevice, .blockDevice, .unknown:
            throw SystemError("copy", source.description, EPERM)
        }
    }

    private static func copyFile(_ source: PathBytes, to destination: PathBytes) throws(SystemError) {
        // O_NOFOLLOW and O_NONBLOCK: an entry swapped for a link or a FIFO is neither followed nor waited on.
        let input = source.withCString { open($0, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
        guard input >= 0 else { throw SystemError("open", source.description) }
        defer { close(input) }
        var info = stat()
        guard fstat(input, &info) == 0 else { throw SystemError("fstat", source.description) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw SystemError("copy", source.description, EINVAL) }
        let output = destination.withCString { open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, info.st_mode & 0o7777) }
        guard output >= 0 else { throw SystemError("create", destination.description) }
        var failure: SystemError?
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        copying: while true {
            let count = read(input, buffer, chunk)
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                failure = SystemError("read", source.description)
                break
            }
            var written = 0
            while written < count {
                let n = write(output, buffer + written, count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = SystemError("write", destination.description)
                    break copying
                }
                written += n
            }
        }
        if failure == nil {
            var times = [info.st_atim, info.st_mtim]
            _ = futimens(output, &times)
            if fsync(output) != 0 { failure = SystemError("fsync", destination.description) }
        }
        if close(output) != 0 && failure == nil { failure = SystemError("close", destination.description) }
        if let failure {
            _ = destination.withCString { unlink($0) }
            throw failure
        }
    }
}
