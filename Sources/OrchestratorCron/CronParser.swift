/// Turns the text of a cron expression into one bit set per field (spec/cron.md §2).
struct CronParser {
    struct Fields {
        var masks: [UInt64] = Array(repeating: 0, count: 5)
        var starred: [Bool] = Array(repeating: false, count: 5)
        var isReboot = false
    }

    /// Macros (lowercase only) and the five fields they stand for; `@reboot` has none.
    static let macros: [String: String?] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *", "@reboot": nil,
    ]

    let source: String

    func parse() throws(CronError) -> Fields {
        let words = source.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard let first = words.first else { throw failure(nil, "the expression is empty") }
        if first.hasPrefix("@") {
            return try parseMacro(String(first), alone: words.count == 1)
        }
        guard words.count == 5 else {
            throw failure(
                nil, "expected 5 fields (minute hour day-of-month month day-of-week), found \(words.count)")
        }
        return try parseFields(words)
    }

    private func parseMacro(_ word: String, alone: Bool) throws(CronError) -> Fields {
        guard let expansion = Self.macros[word] else {
            if Self.macros[word.lowercased()] != nil {
                throw failure(nil, "macros are lowercase: write \(word.lowercased()), not \(word)")
            }
            throw failure(
                nil, "unknown macro \(quoted(word)) (known: @yearly @annually @monthly @weekly @daily @midnight "
                    + "@hourly @reboot)")
        }
        guard alone else { throw failure(nil, "the macro \(word) must stand alone, without other fields") }
        guard let expansion else {
            var fields = Fields()
            fields.isReboot = true
            return fields
        }
        return try parseFields(expansion.split(separator: " "))
    }

    private func parseFields(_ words: [Substring]) throws(CronError) -> Fields {
        var fields = Fields()
        for field in CronField.allCases {
            let text = words[field.rawValue]
            fields.starred[field.rawValue] = text.hasPrefix("*")
            var mask: UInt64 = 0
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                mask |= try parseItem(item, of: field, in: text)
            }
            fields.masks[field.rawValue] = mask
        }
        return fields
    }

    /// One list item: `*`, `*/S`, `N`, `A-B` or `A-B/S`.
    private func parseItem(_ item: Substring, of field: CronField, in text: Substring) throws(CronError) -> UInt64 {
        guard !item.isEmpty else { throw failure(field, "empty list item in \(quoted(String(text)))") }
        try rejectForeignExtensions(item, of: field)
        let parts = item.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw failure(field, "more than one step in \(quoted(String(item)))") }
        let base = parts[0]
        var low: Int
        var high: Int
        if base == "*" {
            (low, high) = (field.bounds.lowerBound, field.bounds.upperBound)
        } else if base.hasPrefix("*") {
            throw failure(field, "\(quoted(String(item))): * stands alone or is followed by /STEP")
        } else if let dash = base.firstIndex(of: "-") {
            let first = base[..<dash]
            let last = base[base.index(after: dash)...]
            guard !first.isEmpty, !last.isEmpty, !last.contains("-") else {
                throw failure(field, "malformed range \(quoted(String(base)))")
            }
            low = try value(first, of: field)
            high = try value(last, of: field)
            if field == .dayOfWeek && high == 0 { high = 7 }  // FRI-SUN ends at 7 (cronie)
            guard low <= high else { throw failure(field, "range \(base) is reversed") }
        } else {
            low = try value(base, of: field)
            high = low
            if parts.count == 2 {
                let hint = "\(base)-\(field.bounds.upperBound)/\(parts[1]) or */\(parts[1])"
                throw failure(field, "\(quoted(String(item))): a step may follow only * or a range (write \(hint))")
            }
        }
        var step = 1
        if parts.count == 2 {
            step = try stepValue(parts[1], of: field, in: item)
        }
        var mask: UInt64 = 0
        var current = low
        while current <= high {
            mask |= 1 << UInt64(current)
            current += step
        }
        return mask
    }

    private func stepValue(_ text: Substring, of field: CronField, in item: Substring) throws(CronError) -> Int {
        guard !text.isEmpty else { throw failure(field, "\(quoted(String(item))): missing step after /") }
        guard let step = Self.decimal(text) else {
            throw failure(field, "\(quoted(String(item))): step \(quoted(String(text))) is not a number")
        }
        guard step >= 1 else { throw failure(field, "\(quoted(String(item))): step must be at least 1") }
        let maximum = field.bounds.upperBound
        guard step <= maximum else {
            throw failure(field, "\(quoted(String(item))): step \(text) is larger than the field's maximum \(maximum)")
        }
        return step
    }

    /// A number or (month and day of week only) a three-letter name, within the field's bounds.
    private func value(_ text: Substring, of field: CronField) throws(CronError) -> Int {
        if let number = Self.decimal(text) {
            guard field.bounds.contains(number) else {
                throw failure(
                    field, "value \(text) is out of range \(field.bounds.lowerBound)-\(field.bounds.upperBound)")
            }
            return number
        }
        if let named = field.value(ofName: text) { return named }
        let isMonthName = CronField.month.value(ofName: text) != nil
        let isDayName = CronField.dayOfWeek.value(ofName: text) != nil
        switch field {
        case .month where isDayName:
            throw failure(field, "\(quoted(String(text))) is a day-of-week name, not a month")
        case .dayOfWeek where isMonthName:
            throw failure(field, "\(quoted(String(text))) is a month name, not a day of week")
        case .month, .dayOfWeek:
            if text.allSatisfy({ $0.isASCII && $0.isLetter }) {
                let kind = field == .month ? "JAN-DEC" : "SUN-SAT"
                throw failure(field, "unknown name \(quoted(String(text))) (names are three letters, \(kind))")
            }
        default:
            if isMonthName || isDayName {
                throw failure(
                    field, "\(quoted(String(text))): names are allowed only in the month and day-of-week fields")
            }
        }
        throw failure(field, "invalid value \(quoted(String(text)))")
    }

    /// `L`, `W`, `#`, `?`, `H` and `~` from other cron dialects get a message that says so.
    private func rejectForeignExtensions(_ item: Substring, of field: CronField) throws(CronError) {
        let upper = item.uppercased()
        var foreign: String?
        if let symbol = upper.first(where: { "#?~".contains($0) }) {
            foreign = String(symbol)
        } else if upper == "L" || upper == "LW" || upper.hasPrefix("L-") {
            foreign = "L"
        } else if upper == "W" {
            foreign = "W"
        } else if upper == "H" || upper.hasPrefix("H/") || upper.hasPrefix("H(") {
            foreign = "H"
        } else if let last = upper.last, last == "L" || last == "W",
            upper.dropLast().allSatisfy({ $0.isASCII && $0.isNumber }), upper.count > 1
        {
            foreign = String(last)
        }
        if let foreign {
            throw failure(
                field, "\(quoted(String(item))): \(foreign) is an extension of other cron dialects and is not supported")
        }
    }

    /// ASCII digits only (leading zeros fine); nil for anything else. Huge numbers saturate (they are out of range).
    static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty else { return nil }
        var value = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = min(value * 10 + Int(byte - UInt8(ascii: "0")), 1_000_000)
        }
        return value
    }

    private func failure(_ field: CronField?, _ reason: String) -> CronError {
        .invalidExpression(expression: source, field: field?.label, reason: reason)
    }
}
