import OrchestratorConfig
import OrchestratorCore

/// Which paths under Inbox are work, shared by the daemon, its dry run and `status`.
extension Config {
    /// Hidden names never are; then the include/exclude globs and the managed folders decide.
    func isInput(_ name: RelativePath) -> Bool {
        !name.hasHiddenComponent && accepts(name)
    }

    /// Folders a scan or a recursive watch does not enter: hidden ones, and the processing area.
    func skipsFolder(_ name: RelativePath) -> Bool {
        if name.hasHiddenComponent { return true }
        let folder = Array(paths.inbox.utf8) + [UInt8(ascii: "/")] + name.bytes
        let processing = Array(paths.processing.utf8)
        return folder == processing || folder.starts(with: processing + [UInt8(ascii: "/")])
    }
}
