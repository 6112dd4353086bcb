import OrchestratorCore

/// What a move of a finished job's file out of the processing area came to, and so what the dispatcher does next.
enum MoveOutcome: Equatable {
    /// In Done/ or Failed/ under this name: its final path is recorded, and that commit frees the name.
    case moved(RelativePath)
    /// No longer in the processing area (its worker moved or deleted it): recorded with a note, nothing to move.
    case inputGone
    /// It stays in the processing area with its name taken and no final path recorded (so it never runs again): the
    /// watchdog sweep or the next start moves it. Out of space, or a disk that fails writes, also pauses the daemon.
    case stuck(reason: String, outOfSpace: Bool)

    init(finalName: RelativePath?, error: String?, errorCode: Int32?) {
        if let error {
            self = .stuck(reason: error, outOfSpace: errorCode.map(DiskTrouble.isOutOfSpace(errno:)) ?? false)
        } else if let finalName {
            self = .moved(finalName)
        } else {
            self = .inputGone
        }
    }
}
