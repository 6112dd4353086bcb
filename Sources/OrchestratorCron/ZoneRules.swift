/// The rules of one time zone, as the evaluator needs them: the UTC offset at an instant and when it next
/// changes. Instants are Unix seconds. Implementations must be pure (same answer for the same instant), so a
/// schedule's answers depend only on the expression, the zone and the instant; tests use fake zones.
public protocol ZoneRules: Sendable {
    /// The name the zone was loaded by (an IANA name such as `Europe/Berlin`).
    var identifier: String { get }
    /// Seconds east of UTC in force at `instant`.
    func offset(at instant: Int64) -> Int32
    /// The first instant `T > instant` at which the offset differs from the one in force just before `T`;
    /// nil if the offset never changes again.
    func nextTransition(after instant: Int64) -> Int64?
}
