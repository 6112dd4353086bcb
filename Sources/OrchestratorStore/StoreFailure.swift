import Foundation
import GRDB

/// The one error policy for the store: a write that failed for lack of space (or an I/O error, which is
/// how a full disk often surfaces) is worth retrying once space returns; anything else means the ledger
/// cannot be trusted and the daemon must stop.
public enum StoreFailure: Sendable, Equatable {
    case outOfSpace
    /// Another process holds the write lock past the busy timeout (a one-shot prune's VACUUM): try again soon.
    case busy
    /// The store's server cannot be reached (down, restarting, the network cut): try again with backoff.
    case unreachable
    case fatal

    public static func classify(_ error: any Error) -> StoreFailure {
        if let error = error as? any StoreFailureClassifying { return error.storeFailure }
        // Opening the store also creates its folder, which fails the same ways without SQLite.
        if let error = error as? POSIXError { return [.ENOSPC, .EDQUOT, .EIO].contains(error.code) ? .outOfSpace : .fatal }
        if let error = error as? CocoaError {
            if error.code == .fileWriteOutOfSpace { return .outOfSpace }
            return (error.underlying as? POSIXError).map(classify) ?? .fatal
        }
        guard let error = error as? DatabaseError else { return .fatal }
        switch error.resultCode {
        case .SQLITE_FULL, .SQLITE_IOERR: return .outOfSpace
        case .SQLITE_BUSY, .SQLITE_LOCKED: return .busy
        default: return .fatal
        }
    }
}

/// An error of an engine whose failures are not SQLite's or the system's, saying which kind it is.
public protocol StoreFailureClassifying: Error {
    var storeFailure: StoreFailure { get }
}
