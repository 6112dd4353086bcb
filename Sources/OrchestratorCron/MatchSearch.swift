/// `CronExpression.firstMatch` with a memory of the last answer: one `nextFire` call asks for the next
/// matching wall-clock minute once per constant-offset stretch, and a far-away match (years ahead) is found
/// once, not rescanned for every daylight-saving stretch in between.
struct MatchSearch {
    let expression: CronExpression
    /// No wall-clock minute in `from..<match` matches, and `match` does.
    private var known: (from: Int64, match: Int64)?

    init(expression: CronExpression) {
        self.expression = expression
    }

    /// The first matching local minute at or after `start` (local seconds); nil if there is none at all.
    mutating func first(atOrAfter start: Int64) -> Int64? {
        if let known, known.from <= start, start <= known.match { return known.match }
        guard let match = expression.firstMatch(atOrAfter: start) else { return nil }
        known = (start, match)
        return match
    }
}
