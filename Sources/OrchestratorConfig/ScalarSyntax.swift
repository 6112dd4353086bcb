/// TOML 1.0's bare values: integers, floats, booleans, dates, times and date-times.
///
/// Used to refuse a malformed bare value before toml++ sees it (see `SourceMap`); a hand-written
/// matcher because a `Regex` is not `Sendable` and compiling one per value is slow.
enum ScalarSyntax {
    static func isValid(_ token: ArraySlice<UInt8>) -> Bool {
        let bytes = Array(token)
        if bytes == Array("true".utf8) || bytes == Array("false".utf8) { return true }
        return isNumber(bytes) || isDateOrTime(bytes)
    }

    private static func isNumber(_ bytes: [UInt8]) -> Bool {
        var cursor = Cursor(bytes: bytes)
        // 0x, 0o and 0b integers take no sign.
        if bytes.count > 2 && bytes[0] == ascii("0") {
            let digits: ((UInt8) -> Bool)? = switch bytes[1] {
            case ascii("x"): isHexDigit
            case ascii("o"): { $0 >= ascii("0") && $0 <= ascii("7") }
            case ascii("b"): { $0 == ascii("0") || $0 == ascii("1") }
            default: nil
            }
            if let digits {
                cursor.position = 2
                return cursor.digitRun(digits) && cursor.atEnd
            }
        }
        _ = cursor.eat(ascii("+")) || cursor.eat(ascii("-"))
        if cursor.eat("inf") || cursor.eat("nan") { return cursor.atEnd }
        if cursor.eat(ascii("0")) {
            // No leading zeros: `00`, `0_1`.
            if let next = cursor.peek(), isDigit(next) || next == ascii("_") { return false }
        } else if !cursor.digitRun(isDigit) {
            return false
        }
        if cursor.eat(ascii(".")) && !cursor.digitRun(isDigit) { return false }
        if cursor.eat(ascii("e")) || cursor.eat(ascii("E")) {
            _ = cursor.eat(ascii("+")) || cursor.eat(ascii("-"))
            if !cursor.digitRun(isDigit) { return false }
        }
        return cursor.atEnd
    }

    private static func isDateOrTime(_ bytes: [UInt8]) -> Bool {
        var cursor = Cursor(bytes: bytes)
        guard bytes.count >= 10 && bytes[4] == ascii("-") else {
            return cursor.time() && cursor.atEnd
        }
        guard cursor.digits(4), cursor.eat(ascii("-")), cursor.digits(2), cursor.eat(ascii("-")), cursor.digits(2)
        else { return false }
        if cursor.atEnd { return true }
        guard cursor.eat(ascii("T")) || cursor.eat(ascii("t")) || cursor.eat(ascii(" ")), cursor.time() else {
            return false
        }
        if cursor.atEnd { return true }
        if cursor.eat(ascii("Z")) || cursor.eat(ascii("z")) { return cursor.atEnd }
        guard cursor.eat(ascii("+")) || cursor.eat(ascii("-")), cursor.digits(2), cursor.eat(ascii(":")),
              cursor.digits(2) else { return false }
        return cursor.atEnd
    }

    private static func ascii(_ character: Unicode.Scalar) -> UInt8 { UInt8(ascii: character) }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= ascii("0") && byte <= ascii("9") }
    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte >= ascii("a") && byte <= ascii("f")) || (byte >= ascii("A") && byte <= ascii("F"))
    }

    private struct Cursor {
        let bytes: [UInt8]
        var position = 0

        var atEnd: Bool { position == bytes.count }

        func peek(_ offset: Int = 0) -> UInt8? {
            position + offset < bytes.count ? bytes[position + offset] : nil
        }

        mutating func eat(_ byte: UInt8) -> Bool {
            guard peek() == byte else { return false }
            position += 1
            return true
        }

        mutating func eat(_ word: String) -> Bool {
            let word = Array(word.utf8)
            guard bytes[position...].starts(with: word) else { return false }
            position += word.count
            return true
        }

        /// `digit ('_'? digit)*`: an underscore only between two digits.
        mutating func digitRun(_ isDigit: (UInt8) -> Bool) -> Bool {
            guard let first = peek(), isDigit(first) else { return false }
            position += 1
            while let next = peek() {
                if isDigit(next) {
                    position += 1
                } else if next == UInt8(ascii: "_"), let after = peek(1), isDigit(after) {
                    position += 2
                } else if next == UInt8(ascii: "_") {
                    return false
                } else {
                    break
                }
            }
            return true
        }

        mutating func digits(_ count: Int) -> Bool {
            for _ in 0..<count {
                guard let next = peek(), ScalarSyntax.isDigit(next) else { return false }
                position += 1
            }
            return true
        }

        /// `HH:MM:SS` with optional fraction.
        mutating func time() -> Bool {
            guard digits(2), eat(UInt8(ascii: ":")), digits(2), eat(UInt8(ascii: ":")), digits(2) else { return false }
            if eat(UInt8(ascii: ".")) {
                guard digits(1) else { return false }
                while let next = peek(), ScalarSyntax.isDigit(next) { position += 1 }
            }
            return true
        }
    }
}
