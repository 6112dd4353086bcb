/// Whether a job taken from the ready queue runs now, decided from facts about it and the config in force, so that
/// what a reload or a hand in the processing area did to a waiting job is tested without a worker or a folder. The
/// dispatcher gathers the facts and carries the verdict out.
enum StartReview: Equatable {
    /// Its handler, task or upload command is gone (a reload): matched again or failed (`ownerRemoved`).
    case ownerRemoved
    /// It does not run; it fails for good with this reason. `couldNotStart`: it could not be started at all (not a
    /// run out of attempts). `recordBudget` as for `run`.
    case fail(reason: String, couldNotStart: Bool, recordBudget: Int?)
    /// It runs as attempt `number`. `recordBudget`: the attempt budget to record first, when a reload changed it since
    /// it was recorded (`show` says the one it runs under).
    case run(number: Int, recordBudget: Int?)

    struct Facts: Equatable {
        /// Whether the config in force still has what it runs (`Dispatcher.spec(of:)`).
        var ownerExists: Bool
        /// nil for a job without a file (a task, an upload); else whether its file is still in the processing area.
        var fileInPlace: Bool?
        /// Attempts made so far.
        var attempts: Int
        /// The budget recorded with the job.
        var recordedBudget: Int
        /// The budget of its owner in the config in force.
        var budget: Int
    }

    static func decide(_ facts: Facts) -> StartReview {
        guard facts.ownerExists else { return .ownerRemoved }
        if facts.fileInPlace == false {
            // Moved away by hand while it waited (Inbox renamed, the processing area emptied): a worker would get a path to
            // nothing, and "done" would be recorded for a file that never ran.
            return .fail(
                reason: "its file is no longer in the processing area (moved or removed while it waited)", couldNotStart: true,
                recordBudget: nil)
        }
        let changed = facts.budget != facts.recordedBudget ? facts.budget : nil
        // Lowered by a reload to what it has used already (while it waited to retry): no attempt is left.
        if facts.attempts >= facts.budget {
            return .fail(
                reason: "its attempts are used up (max_attempts = \(facts.budget) since a reload)", couldNotStart: false,
                recordBudget: changed)
        }
        return .run(number: facts.attempts + 1, recordBudget: changed)
    }
}
