/// Writes `cron next` lines (`CronTimestamp.format` and a newline) as bytes, for printing millions of them:
/// consecutive fires mostly share a day and an offset, so the date and offset text are kept and copied.
public struct CronTimestampWriter {
    /// The longest line, newline included: a six-character year (instants are within about ±34,000 years) and
    /// an offset with seconds, with room to spare.
    public static let maximumLineLength = 48

    /// `YYYY-MM-DDT` of `day` (local day number).
    private var day: Int64?
    private var dayText: [UInt8] = []
    /// `±HH:MM` or `±HH:MM:SS` and the newline, for `offset`.
    private var offset: Int32?
    private var offsetText: [UInt8] = []

    public init() {}

    /// Writes the line for `instant` shown with `offset` (seconds east of UTC, the one in force at `instant`)
    /// at `destination`, which has room for `maximumLineLength` bytes; returns how many it wrote.
    public mutating func writeLine(_ instant: Int64, offset: Int32, to destination: UnsafeMutablePointer<UInt8>) -> Int {
        let local = instant + Int64(offset)
        let localDay = CivilCalendar.floorDivide(local, CivilCalendar.secondsPerDay)
        if localDay != day {
            day = localDay
            Self.writeDate(localDay, to: &dayText)
        }
        if offset != self.offset {
            self.offset = offset
            Self.writeOffset(offset, to: &offsetText)
        }
        var position = 0
        dayText.withUnsafeBufferPointer { text in
            destination.update(from: text.baseAddress!, count: text.count)
            position = text.count
        }
        let second = Int(local - localDay * CivilCalendar.secondsPerDay)
        Self.twoDigits(second / 3600, at: destination + position)
        destination[position + 2] = UInt8(ascii: ":")
        Self.twoDigits(second / 60 % 60, at: destination + position + 3)
        destination[position + 5] = UInt8(ascii: ":")
        Self.twoDigits(second % 60, at: destination + position + 6)
        position += 8
        offsetText.withUnsafeBufferPointer { text in
            (destination + position).update(from: text.baseAddress!, count: text.count)
            position += text.count
        }
        return position
    }

    private static func writeDate(_ day: Int64, to text: inout [UInt8]) {
        let date = CivilCalendar.date(dayNumber: day)
        text.removeAll(keepingCapacity: true)
        if date.year < 0 { text.append(UInt8(ascii: "-")) }
        appendDigits(date.year.magnitude, width: 4, to: &text)
        text.append(UInt8(ascii: "-"))
        appendDigits(UInt64(date.month), width: 2, to: &text)
        text.append(UInt8(ascii: "-"))
        appendDigits(UInt64(date.day), width: 2, to: &text)
        text.append(UInt8(ascii: "T"))
    }

    private static func writeOffset(_ offset: Int32, to text: inout [UInt8]) {
        let magnitude = UInt64(offset.magnitude)
        text.removeAll(keepingCapacity: true)
        text.append(offset < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        appendDigits(magnitude / 3600, width: 2, to: &text)
        text.append(UInt8(ascii: ":"))
        appendDigits(magnitude / 60 % 60, width: 2, to: &text)
        if magnitude % 60 != 0 {
            text.append(UInt8(ascii: ":"))
            appendDigits(magnitude % 60, width: 2, to: &text)
        }
        text.append(UInt8(ascii: "\n"))
    }

    private static func twoDigits(_ value: Int, at destination: UnsafeMutablePointer<UInt8>) {
        destination[0] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value / 10)
        destination[1] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10)
    }

    /// Decimal digits of `value`, zero-padded to at least `width`.
    private static func appendDigits(_ value: UInt64, width: Int, to text: inout [UInt8]) {
        var count = 1
        var power: UInt64 = 1
        while value / power >= 10 {
            power *= 10
            count += 1
        }
        for _ in count..<Swift.max(count, width) { text.append(UInt8(ascii: "0")) }
        while power > 0 {
            text.append(UInt8(ascii: "0") + UInt8(value / power % 10))
            power /= 10
        }
    }
}
