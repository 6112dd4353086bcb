@testable import OrchestratorCron

/// A zone with a given offset and a list of changes, for rules no real zone has (a change of exactly 3 hours).
struct FakeZone: ZoneRules {
    let identifier = "Fake"
    let initial: Int32
    /// (instant, offset from then on), sorted by instant.
    let changes: [(at: Int64, offset: Int32)]

    func offset(at instant: Int64) -> Int32 {
        changes.last(where: { $0.at <= instant })?.offset ?? initial
    }

    func nextTransition(after instant: Int64) -> Int64? {
        changes.first(where: { $0.at > instant })?.at
    }
}
