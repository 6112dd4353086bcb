import GRDB

/// The one error policy for the store: a write that failed for lack of space (or an I/O error, which is
/// how a full disk often surfaces) is worth retrying once space returns; anything else means the ledger
/// cannot be trusted and the daemon must stop.
public enum StoreFailure: Sendable, Equatable {
    case outOfSpace
    case fatal

    public static func classify(_ error: any Error) -> StoreFailure {
        guard let error = error as? DatabaseError else { return .fatal }
        switch error.resultCode {
        case .SQLITE_FULL, .SQLITE_IOERR: return .outOfSpace
        default: return .fatal
        }
    }
}
