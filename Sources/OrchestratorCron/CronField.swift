/// The five fields of a cron expression, with their value ranges and names.
enum CronField: Int, CaseIterable, Sendable {
    case minute, hour, dayOfMonth, month, dayOfWeek

    /// The name used in error messages.
    var label: String {
        switch self {
        case .minute: "minute"
        case .hour: "hour"
        case .dayOfMonth: "day of month"
        case .month: "month"
        case .dayOfWeek: "day of week"
        }
    }

    /// The values an item may name; day of week accepts 7 for Sunday.
    var bounds: ClosedRange<Int> {
        switch self {
        case .minute: 0...59
        case .hour: 0...23
        case .dayOfMonth: 1...31
        case .month: 1...12
        case .dayOfWeek: 0...7
        }
    }

    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// The value of a three-letter name (any case) in this field, nil if the field has no names or it is not one.
    func value(ofName text: Substring) -> Int? {
        let upper = text.uppercased()
        switch self {
        case .month: return Self.monthNames.firstIndex(of: upper).map { $0 + 1 }
        case .dayOfWeek: return Self.dayNames.firstIndex(of: upper)
        default: return nil
        }
    }
}
