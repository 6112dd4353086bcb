import TestSupport
/// A random valid cron expression together with what it means, computed independently of the parser:
/// the test oracle for the property tests.
struct RandomCron: CustomStringConvertible {
    var text: String
    /// Per field: the selected values (day of week 0-6, Sunday 0).
    var sets: [Set<Int>]
    var starred: [Bool]

    var description: String { text }
    var isWildcardJob: Bool { starred[0] || starred[1] }
    var dayFieldsMustBothMatch: Bool { starred[2] || starred[4] }

    func matches(minute: Int, hour: Int, day: Int, month: Int, weekday: Int) -> Bool {
        guard sets[0].contains(minute), sets[1].contains(hour), sets[3].contains(month) else { return false }
        let dayMatches = sets[2].contains(day)
        let weekdayMatches = sets[4].contains(weekday)
        return dayFieldsMustBothMatch ? dayMatches && weekdayMatches : dayMatches || weekdayMatches
    }

    private static let bounds = [0...59, 0...23, 1...31, 1...12, 0...7]
    private static let names = [
        3: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
        4: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    ]
    /// Chance that a field is starred, per field: frequent enough that a few days hold some fire times.
    private static let starChance = [0.5, 0.5, 0.7, 0.8, 0.6]

    /// `earlyHours`: explicit hours come from 0-4, where daylight-saving changes happen, so that fixed-time
    /// jobs meet gaps and overlaps often.
    static func make(using rng: inout SplitMix64, earlyHours: Bool = false) -> RandomCron {
        var fields: [String] = []
        var sets: [Set<Int>] = []
        var starred: [Bool] = []
        for field in 0..<5 {
            let (text, values) = makeField(field, earlyHours: earlyHours && field == 1, using: &rng)
            fields.append(text)
            sets.append(Set(values.map { field == 4 && $0 == 7 ? 0 : $0 }))
            starred.append(text.hasPrefix("*"))
        }
        let separators = [" ", "  ", "\t"]
        var text = fields[0]
        for field in fields.dropFirst() { text += separators.randomElement(using: &rng)! + field }
        return RandomCron(text: text, sets: sets, starred: starred)
    }

    private static func makeField(_ field: Int, earlyHours: Bool, using rng: inout SplitMix64) -> (String, [Int]) {
        let range = earlyHours ? 0...4 : bounds[field]
        var items: [String] = []
        var values: [Int] = []
        if !earlyHours && Double.random(in: 0..<1, using: &rng) < starChance[field] {
            if Bool.random(using: &rng) {
                items.append("*")
                values += Array(range)
            } else {
                let step = Int.random(in: 1...max(1, range.upperBound / 3), using: &rng)
                items.append("*/\(step)")
                values += Array(stride(from: range.lowerBound, through: range.upperBound, by: step))
            }
            if Int.random(in: 0..<5, using: &rng) == 0 {
                let extra = Int.random(in: range, using: &rng)
                items.append(spell(extra, field, using: &rng))
                values.append(extra)
            }
            return (items.joined(separator: ","), values)
        }
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let a = Int.random(in: range, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0, 1:
                items.append(spell(a, field, using: &rng))
                values.append(a)
            default:
                var b = Int.random(in: a...range.upperBound, using: &rng)
                var spelledEnd = spell(b, field, using: &rng)
                if field == 4 && b == 0 { b = 7 }  // a day-of-week range ending in 0 ends at 7: 0-0 is every day
                if field == 4 && a > 0 && Int.random(in: 0..<4, using: &rng) == 0 {
                    (b, spelledEnd) = (7, Bool.random(using: &rng) ? "0" : "sun")  // ends at Sunday, written 0
                }
                var item = spell(a, field, using: &rng) + "-" + spelledEnd
                var step = 1
                if Bool.random(using: &rng) {
                    step = Int.random(in: 1...range.upperBound, using: &rng)
                    item += "/\(step)"
                }
                items.append(item)
                values += Array(stride(from: a, through: b, by: step))
            }
        }
        return (items.joined(separator: ","), values)
    }

    /// A number (sometimes with a leading zero) or, in month and day-of-week fields, a name in a random case.
    private static func spell(_ value: Int, _ field: Int, using rng: inout SplitMix64) -> String {
        if let names = names[field], value < 7 || field == 3, Int.random(in: 0..<3, using: &rng) == 0 {
            let name = names[field == 3 ? value - 1 : value]
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: return name
            case 1: return name.lowercased()
            default: return name.prefix(1) + name.dropFirst().lowercased()
            }
        }
        return Int.random(in: 0..<8, using: &rng) == 0 ? "0\(value)" : "\(value)"
    }
}
