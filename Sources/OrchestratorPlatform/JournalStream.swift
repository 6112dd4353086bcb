#if canImport(Glibc)
import Glibc
#endif

/// Whether stderr is systemd's journal stream, so log lines may carry `<N>` priority prefixes.
///
/// systemd sets `JOURNAL_STREAM=DEVICE:INODE` for a unit whose stderr goes to the journal. The variable is
/// inherited by everything the unit starts, including a process whose stderr was redirected elsewhere (a
/// file, a pipe, a terminal); only when fd 2 is that very stream does the prefix reach journald rather
/// than a reader who sees `<6>` noise. (systemd.exec(5), "JOURNAL_STREAM")
public enum JournalStream {
    /// Whether `value` (the variable's text) names the file with `device` and `inode`.
    public static func names(_ value: String, device: UInt64, inode: UInt64) -> Bool {
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let named = UInt64(parts[0]), let namedInode = UInt64(parts[1]) else { return false }
        return named == device && namedInode == inode
    }

    /// Whether this process's stderr is the journal stream the environment names.
    public static func isStandardError(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return names(value, device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }
}
