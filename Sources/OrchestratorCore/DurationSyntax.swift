extension Duration {
    /// Parses `500ms`, `30s`, `10m`, `1h30m`, `2d`: a positive whole number and a unit from `ms s m h d`,
    /// optionally compound with units in decreasing size.
    public init(parsing text: String) throws(PatternError) {
        let units: [(name: String, milliseconds: Int64)] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]
        func fail(_ why: String) -> PatternError { PatternError("invalid duration \"\(text)\": \(why)") }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw fail("empty (write e.g. \"30s\", \"10m\", \"1h30m\")") }
        var index = 0
        var total: Int64 = 0
        var lastRank = -1
        while index < bytes.count {
            let digitsStart = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            guard index > digitsStart else {
                throw fail("expected a number at \"\(String(decoding: bytes[index...], as: UTF8.self))\"")
            }
            guard let value = Int64(String(decoding: bytes[digitsStart..<index], as: UTF8.self)) else { throw fail(Self.tooLarge) }
            let unitStart = index
            while index < bytes.count, bytes[index] >= 97, bytes[index] <= 122 { index += 1 }
            let unit = String(decoding: bytes[unitStart..<index], as: UTF8.self)
            guard !unit.isEmpty else {
                throw fail(index < bytes.count ? "unexpected \"\(String(decoding: bytes[index...], as: UTF8.self))\"" : "missing unit (use ms, s, m, h, d)")
            }
            guard let rank = units.firstIndex(where: { $0.name == unit }) else {
                throw fail("unknown unit \"\(unit)\" (use ms, s, m, h, d)")
            }
            guard rank > lastRank else { throw fail("units must go from largest to smallest, each once") }
            lastRank = rank
            let (product, overflow1) = value.multipliedReportingOverflow(by: units[rank].milliseconds)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow1, !overflow2 else { throw fail(Self.tooLarge) }
            total = sum
        }
        guard total > 0 else { throw fail("must be positive") }
        // Far beyond any timeout or retention anyone means, and small enough that a date that far off, or the
        // same in nanoseconds, still fits in 64 bits.
        guard total <= Self.longestConfigured else { throw fail(Self.tooLarge) }
        self = .milliseconds(total)
    }

    /// The longest duration a config may name, in milliseconds: 36,500 days.
    public static let longestConfigured: Int64 = 36_500 * 86_400_000
    static let tooLarge = "too large (at most 36500d, a hundred years)"

    /// Whole milliseconds, rounding down.
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The duration in the config's own syntax, largest units first: `1h30m`, `500ms`.
    public var configText: String {
        var rest = wholeMilliseconds
        guard rest > 0 else { return "0ms" }
        var text = ""
        for (name, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] where rest >= size {
            text += "\(rest / size)\(name)"
            rest %= size
        }
        return text
    }
}
