/// The claims a daemon of a shared store holds on running jobs, and the jobs whose claim it found lost.
///
/// A job runs on a shared store only under a claim: its number, given by the store with the job, guards every later
/// step of the job (its attempt's end, its end state). A claim ends one of two ways:
/// - **handed in** with the job's end, which the store then accepts or refuses;
/// - **lost**: the daemon stalled past its lease and another daemon took the job back. The store says so at a lease
///   renewal, or by refusing the end.
///
/// Nothing of a job whose claim is lost is written or moved by this daemon: its worker is ended, and its file stays
/// in the processing area for the daemon that has the job now. The mark stays until that is done (`settleLost`), so
/// that a worker's exit or a finished file that comes later is told apart from one of a job still held.
public struct ClaimLedger: Sendable {
    public struct Claim: Equatable, Sendable {
        public let number: Int
        /// A task run's end is announced to the other daemons: its task's next run may start on any of them.
        public let isTaskRun: Bool

        public init(number: Int, isTaskRun: Bool) {
            self.number = number
            self.isTaskRun = isTaskRun
        }
    }

    private var heldClaims: [Int64: Claim] = [:]
    private var lostJobs: Set<Int64> = []

    public init() {}

    // MARK: Held

    /// The store gave this daemon the job under claim `number`. A job claimed again after its claim was lost (the
    /// store queued it again, and this daemon won it) is held afresh.
    public mutating func took(_ job: Int64, claim number: Int, isTaskRun: Bool) {
        heldClaims[job] = Claim(number: number, isTaskRun: isTaskRun)
        lostJobs.remove(job)
    }

    public func claim(of job: Int64) -> Claim? { heldClaims[job] }

    public func holds(_ job: Int64) -> Bool { heldClaims[job] != nil }

    /// Every held claim's number, for the renewal that checks them.
    public var held: [Int64: Int] { heldClaims.mapValues(\.number) }

    public var holdsAny: Bool { !heldClaims.isEmpty }

    // MARK: Ending

    /// The job's end goes to the store under its claim, which is handed in here. nil when the claim was found lost
    /// before: then nothing of the end may be written.
    public mutating func handIn(_ job: Int64) -> Claim? {
        guard let claim = heldClaims.removeValue(forKey: job) else {
            lostJobs.insert(job)
            return nil
        }
        return claim
    }

    /// The store refused the end of a handed-in claim: another daemon has the job. A claim taken on the job since
    /// is a new one, which the refusal of the old one does not touch.
    public mutating func endRefused(_ job: Int64) {
        guard heldClaims[job] == nil else { return }
        lostJobs.insert(job)
    }

    /// A renewal found the claim lost while the job runs here. True if it was held (its worker must be ended now);
    /// false if it was not (already handed in or lost: nothing more to do).
    public mutating func renewalFoundLost(_ job: Int64) -> Bool {
        guard heldClaims.removeValue(forKey: job) != nil else { return false }
        lostJobs.insert(job)
        return true
    }

    // MARK: Lost

    public func isLost(_ job: Int64) -> Bool { lostJobs.contains(job) }

    public var anyLost: Bool { !lostJobs.isEmpty }

    /// What remained of a lost job here (its worker's exit, its finished file) has been dealt with: the mark goes.
    /// True if the job was marked lost.
    public mutating func settleLost(_ job: Int64) -> Bool {
        lostJobs.remove(job) != nil
    }
}
