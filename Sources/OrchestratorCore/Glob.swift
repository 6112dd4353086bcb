/// A shell-style pattern matched against a path relative to Inbox, byte for byte, case-sensitively.
///
/// `*` matches within one folder, `**` across folders (`**/` also matches no folder at all), `?` one
/// character, `[a-z]`/`[!x]` one character of a set, and `\` escapes. Matching is a memoised walk over
/// (pattern position, name position), so no pattern can make it exponential.
public struct Glob: Hashable, Sendable, CustomStringConvertible {
    public let pattern: String
    private let tokens: [Token]
    private let shape: Shape
    /// Whether the pattern names a folder ("a/*.txt"): one without `/` is also tried on each component.
    public let containsSlash: Bool

    /// What most configured patterns are (`*`, `**`, `*.pdf`, `.*`, `~*`, a plain name), matched by comparing
    /// bytes: the Inbox path of every arrival is tried against every include and exclude pattern.
    enum Shape: Hashable, Sendable {
        /// `**`
        case anything
        /// Literal bytes, then `*`, then literal bytes, with no "/" in either: one folder's names.
        case oneStar(prefix: [UInt8], suffix: [UInt8])
        case literal([UInt8])
        case general

        init(_ tokens: [Token]) {
            if tokens == [.globStar] {
                self = .anything
                return
            }
            var prefix: [UInt8] = []
            var suffix: [UInt8] = []
            var sawStar = false
            for token in tokens {
                switch token {
                case .byte(let byte) where byte != UInt8(ascii: "/"):
                    if sawStar { suffix.append(byte) } else { prefix.append(byte) }
                case .star where !sawStar:
                    sawStar = true
                default:
                    self = .general
                    return
                }
            }
            self = sawStar ? .oneStar(prefix: prefix, suffix: suffix) : .literal(prefix)
        }
    }

    enum Token: Hashable, Sendable {
        case byte(UInt8)
        case anyCharacter
        case star
        case globStar
        /// `**/`: any run of whole folders, possibly none.
        case folders
        case set(ranges: [ClosedRange<UInt8>], negated: Bool)
    }

    public init(_ pattern: String) throws(PatternError) {
        self.pattern = pattern
        let bytes = Array(pattern.utf8)
        guard !bytes.isEmpty else { throw PatternError("empty glob pattern") }
        guard bytes.first != UInt8(ascii: "/") else {
            throw PatternError("glob \"\(pattern)\" starts with \"/\"; patterns match paths relative to Inbox")
        }
        var tokens: [Token] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "*"):
                if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "*") {
                    index += 2
                    if index < bytes.count, bytes[index] == UInt8(ascii: "/") {
                        tokens.append(.folders)
                        index += 1
                    } else {
                        tokens.append(.globStar)
                    }
                    continue
                }
                tokens.append(.star)
            case UInt8(ascii: "?"):
                tokens.append(.anyCharacter)
            case UInt8(ascii: "\\"):
                guard index + 1 < bytes.count else { throw PatternError("glob \"\(pattern)\" ends with a lone \"\\\"") }
                index += 1
                tokens.append(.byte(bytes[index]))
            case UInt8(ascii: "["):
                var cursor = index + 1
                var negated = false
                if cursor < bytes.count, bytes[cursor] == UInt8(ascii: "!") || bytes[cursor] == UInt8(ascii: "^") {
                    negated = true
                    cursor += 1
                }
                var ranges: [ClosedRange<UInt8>] = []
                var first = true
                while cursor < bytes.count, bytes[cursor] != UInt8(ascii: "]") || first {
                    first = false
                    var low = bytes[cursor]
                    if low == UInt8(ascii: "\\"), cursor + 1 < bytes.count {
                        cursor += 1
                        low = bytes[cursor]
                    }
                    if cursor + 2 < bytes.count, bytes[cursor + 1] == UInt8(ascii: "-"), bytes[cursor + 2] != UInt8(ascii: "]") {
                        let high = bytes[cursor + 2]
                        guard low <= high else { throw PatternError("glob \"\(pattern)\": reversed range in [...]") }
                        ranges.append(low...high)
                        cursor += 3
                    } else {
                        ranges.append(low...low)
                        cursor += 1
                    }
                }
                guard cursor < bytes.count else { throw PatternError("glob \"\(pattern)\" has an unterminated \"[\"") }
                tokens.append(.set(ranges: ranges, negated: negated))
                index = cursor
            default:
                tokens.append(.byte(byte))
            }
            index += 1
        }
        self.tokens = tokens
        self.shape = Shape(tokens)
        self.containsSlash = bytes.contains(UInt8(ascii: "/"))
    }

    public var description: String { pattern }

    /// Whether it can match a path in a subfolder: only a "/" or "**" crosses one ("*" and "?" stop at "/").
    public var crossesFolders: Bool {
        tokens.contains { token in
            switch token {
            case .byte(let byte): byte == UInt8(ascii: "/")
            case .globStar, .folders: true
            default: false
            }
        }
    }

    public func matches(_ path: RelativePath) -> Bool {
        let name = path.bytes
        switch shape {
        case .anything:
            return true
        case .literal(let bytes):
            return name == bytes
        case .oneStar(let prefix, let suffix):
            return name.count >= prefix.count + suffix.count && name.starts(with: prefix)
                && name.reversed().starts(with: suffix.reversed()) && !name.contains(UInt8(ascii: "/"))
        case .general:
            return matchesByWalk(path)
        }
    }

    /// The general matcher, whatever the shape (tests compare the two).
    func matchesByWalk(_ path: RelativePath) -> Bool {
        let name = path.bytes
        // memo[t][n]: 0 unknown, 1 no, 2 yes.
        var memo = [UInt8](repeating: 0, count: (tokens.count + 1) * (name.count + 1))
        return match(0, 0, name, &memo)
    }

    private func match(_ t: Int, _ n: Int, _ name: [UInt8], _ memo: inout [UInt8]) -> Bool {
        let key = t * (name.count + 1) + n
        if memo[key] != 0 { return memo[key] == 2 }
        let result: Bool
        if t == tokens.count {
            result = n == name.count
        } else {
            switch tokens[t] {
            case .byte(let byte):
                result = n < name.count && name[n] == byte && match(t + 1, n + 1, name, &memo)
            case .anyCharacter:
                let length = Self.characterLength(name, n)
                result = length > 0 && match(t + 1, n + length, name, &memo)
            case .set(let ranges, let negated):
                let length = Self.characterLength(name, n)
                let inSet = length == 1 && ranges.contains { $0.contains(name[n]) }
                result = length > 0 && inSet != negated && match(t + 1, n + length, name, &memo)
            case .star:
                var end = n
                var found = match(t + 1, end, name, &memo)
                while !found, end < name.count, name[end] != UInt8(ascii: "/") {
                    end += 1
                    found = match(t + 1, end, name, &memo)
                }
                result = found
            case .globStar:
                var end = n
                var found = match(t + 1, end, name, &memo)
                while !found, end < name.count {
                    end += 1
                    found = match(t + 1, end, name, &memo)
                }
                result = found
            case .folders:
                // Nothing, or anything up to and including a "/".
                var found = match(t + 1, n, name, &memo)
                var end = n
                while !found, end < name.count {
                    if name[end] == UInt8(ascii: "/") { found = match(t + 1, end + 1, name, &memo) }
                    end += 1
                }
                result = found
            }
        }
        memo[key] = result ? 2 : 1
        return result
    }

    /// Bytes of the character at `index`: a whole UTF-8 scalar when valid, else one byte; 0 at the end or at "/".
    static func characterLength(_ name: [UInt8], _ index: Int) -> Int {
        guard index < name.count, name[index] != UInt8(ascii: "/") else { return 0 }
        let lead = name[index]
        let expected = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 1
        guard expected > 1, index + expected <= name.count else { return 1 }
        for offset in 1..<expected where name[index + offset] >> 6 != 0b10 { return 1 }
        return expected
    }
}

/// Why a glob, command template or duration was refused; `message` is one human line without location.
public struct PatternError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
