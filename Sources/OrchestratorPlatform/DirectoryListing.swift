#if canImport(Glibc)
import Glibc
#endif

public enum DirectoryListing {
    /// Names of the subdirectories of `path` (not recursive, symlinks not followed).
    public static func subdirectories(of path: PathBytes) -> [[UInt8]] {
        guard let handle = path.withCString({ opendir($0) }) else { return [] }
        defer { closedir(handle) }
        var names: [[UInt8]] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == [46] || name == [46, 46] { continue }
            if FileSystem.status(path.appending(.init(name)))?.isDirectory == true { names.append(name) }
        }
        return names
    }

    /// Names of the entries of `path` that are not directories (not recursive, symlinks not followed).
    public static func files(of path: PathBytes) -> [[UInt8]] {
        guard let handle = path.withCString({ opendir($0) }) else { return [] }
        defer { closedir(handle) }
        var names: [[UInt8]] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == [46] || name == [46, 46] { continue }
            if FileSystem.status(path.appending(.init(name)))?.isDirectory != true { names.append(name) }
        }
        return names
    }
}
