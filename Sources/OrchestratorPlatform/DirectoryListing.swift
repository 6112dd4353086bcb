#if canImport(Glibc)
import Glibc
#endif

public enum DirectoryListing {
    /// Names of the subdirectories of `path` (not recursive, symlinks not followed).
    public static func subdirectories(of path: PathBytes) -> [[UInt8]] { entries(of: path, directories: true) }

    /// Names of the entries of `path` that are not directories (not recursive, symlinks not followed).
    public static func files(of path: PathBytes) -> [[UInt8]] { entries(of: path, directories: false) }

    private static func entries(of path: PathBytes, directories: Bool) -> [[UInt8]] {
        guard let handle = path.withCString({ opendir($0) }) else { return [] }
        defer { closedir(handle) }
        var names: [[UInt8]] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name == [46] || name == [46, 46] { continue }
            let isDirectory = FileSystem.status(path.appending(.init(name)))?.isDirectory == true
            if isDirectory == directories { names.append(name) }
        }
        return names
    }
}
