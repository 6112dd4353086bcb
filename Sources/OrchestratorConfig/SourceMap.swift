/// The line on which each table, key and array element of a TOML document first appears.
///
/// TOMLKit reports lines only for syntax errors, so this scanner reads the raw text itself to
/// place every semantic problem. It follows valid TOML exactly (tested against Python's tomllib
/// on random documents) but does not validate it, which keeps it small: on anything unexpected
/// it skips ahead rather than failing, since TOMLKit reports the real syntax error. The one
/// exception is `parserHazard`, input that TOMLKit must not be given at all.
struct SourceMap: Sendable {
    private var lines: [String: Int] = [:]

    /// The first spot where TOMLKit's toml++ 3.4.0 would trip a debug assertion (abort) or,
    /// in release builds, undefined behaviour, instead of reporting a syntax error; see
    /// `SourceScanner.noteHazard`. nil for every valid document.
    private(set) var parserHazard: (line: Int, column: Int, message: String)?

    init(scanning text: String) {
        var scanner = SourceScanner(bytes: Array(text.utf8))
        scanner.run()
        lines = scanner.lines
        parserHazard = scanner.hazard
    }

    /// The line of `path`, else of its nearest enclosing table or array that is written in the
    /// file, else 0 (the value came from a default and has no line).
    func line(of path: TOMLPath) -> Int {
        var candidate: TOMLPath? = path
        while let current = candidate, !current.components.isEmpty {
            if let line = lines[current.description] { return line }
            candidate = current.parent
        }
        return 0
    }

    /// The line where `path` itself is written, or nil if it is not in the file.
    func exactLine(of path: TOMLPath) -> Int? {
        lines[path.description]
    }

    /// Every recorded path (by its description) and line; for tests that compare against another parser.
    var allLines: [String: Int] { lines }
}

private struct SourceScanner {
    let bytes: [UInt8]
    var position = 0
    var line = 1
    var lines: [String: Int] = [:]
    /// How many `[[name]]` headers have been seen per array path, to number the elements the
    /// way TOMLKit's arrays do and to resolve `[name.sub]` to the last element.
    var arrayTableCounts: [TOMLPath: Int] = [:]
    var hazard: (line: Int, column: Int, message: String)?
    /// Where the current line starts, for columns.
    var lineStart = 0
    /// Arrays and inline tables currently open; bounded so a hostile file cannot overflow the stack.
    var depth = 0
    /// toml++'s own limit (TOML_MAX_NESTED_VALUES); nothing valid for it goes deeper.
    static let maximumDepth = 256

    init(bytes: [UInt8]) { self.bytes = bytes }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private func peek(_ offset: Int) -> UInt8? {
        position + offset < bytes.count ? bytes[position + offset] : nil
    }

    private func startsWith(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count else { return false }
        return text.withUTF8Buffer { buffer in
            for offset in 0..<count where bytes[position + offset] != buffer[offset] { return false }
            return true
        }
    }

    private mutating func advance(_ count: Int = 1) {
        for _ in 0..<count where position < bytes.count {
            position += 1
            if bytes[position - 1] == UInt8(ascii: "\n") {
                line += 1
                lineStart = position
            }
        }
    }

    private mutating func record(_ path: TOMLPath, line: Int) {
        // Parents too, so that `[a.b]` gives `a` a line even though `a` never has a header.
        var candidate: TOMLPath? = path
        while let current = candidate, !current.components.isEmpty {
            let key = current.description
            if lines[key] == nil { lines[key] = line }
            candidate = current.parent
        }
    }

    mutating func run() {
        // TOMLKit hands toml++ a C string, which would silently end at a NUL byte.
        if let nul = bytes.firstIndex(of: 0) {
            line = 1 + bytes[..<nul].count { $0 == UInt8(ascii: "\n") }
            lineStart = (bytes[..<nul].lastIndex(of: UInt8(ascii: "\n")) ?? -1) + 1
            noteHazard("the file contains a NUL byte", at: nul)
            return
        }
        if startsWith("\u{FEFF}") { position = 3 }
        var table = TOMLPath.root
        while position < bytes.count && hazard == nil {
            let before = position
            skipTrivia(newlines: true)
            guard let byte = current else { break }
            if byte == UInt8(ascii: "[") {
                table = header()
            } else {
                keyValue(in: table)
            }
            skipRestOfLine()
            if position == before { advance() }
        }
    }

    // MARK: - Statements

    /// toml++ 3.4.0 asserts (aborts the process in debug builds, undefined behaviour in
    /// release) instead of failing cleanly on a few malformed inputs: a header whose key starts
    /// with anything but a key character (`[#`, `[[[`; fixed upstream in
    /// marzer/tomlplusplus#301), `}` where an array expects a value (`x = [1, }]`) and some
    /// malformed dates. No valid document has any of them, and toml++ stops at its first
    /// error, so it only reaches such a spot after a valid prefix, which this scanner follows
    /// exactly; flagging them here keeps `config check` from crashing on a typo.
    private mutating func noteHazard(_ message: String, at start: Int? = nil) {
        let offset = start ?? position
        if hazard == nil { hazard = (line, offset - lineStart + 1, message) }
    }

    private static func describe(_ byte: UInt8) -> String {
        switch byte {
        case 0x21...0x7E: "'\(Unicode.Scalar(byte))'"
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"): "the end of the line"
        default: "an unexpected character"
        }
    }

    private mutating func header() -> TOMLPath {
        let headerLine = line
        let isArray = peek(1) == UInt8(ascii: "[")
        advance(isArray ? 2 : 1)
        while current == UInt8(ascii: " ") || current == UInt8(ascii: "\t") { advance() }
        if let byte = current, byte != UInt8(ascii: "]"), !Self.isBareKeyByte(byte),
           byte != UInt8(ascii: "\""), byte != UInt8(ascii: "'") {
            noteHazard("a table header must start with a key name, saw \(Self.describe(byte))")
        }
        skipTrivia(newlines: false)
        let names = dottedKey()
        skipTrivia(newlines: false)
        if current == UInt8(ascii: "]") { advance(isArray ? 2 : 1) }

        var path = TOMLPath.root
        for name in names.dropLast() {
            path = path.key(name)
            if let count = arrayTableCounts[path] { path = path.index(count - 1) }
        }
        path = path.key(names.last ?? "")
        if isArray {
            let count = arrayTableCounts[path, default: 0]
            arrayTableCounts[path] = count + 1
            record(path, line: headerLine)
            path = path.index(count)
        }
        record(path, line: headerLine)
        return path
    }

    private mutating func keyValue(in table: TOMLPath) {
        let keyLine = line
        let names = dottedKey()
        guard !names.isEmpty else { return }
        var path = table
        for name in names { path = path.key(name) }
        record(path, line: keyLine)
        skipTrivia(newlines: false)
        guard current == UInt8(ascii: "=") else { return }
        advance()
        skipTrivia(newlines: false)
        value(at: path)
    }

    // MARK: - Keys

    private mutating func dottedKey() -> [String] {
        var names: [String] = []
        while let name = simpleKey() {
            names.append(name)
            skipTrivia(newlines: false)
            guard current == UInt8(ascii: ".") else { break }
            advance()
            skipTrivia(newlines: false)
        }
        return names
    }

    private mutating func simpleKey() -> String? {
        switch current {
        case UInt8(ascii: "\""):
            return basicString()
        case UInt8(ascii: "'"):
            return literalString()
        case let byte? where Self.isBareKeyByte(byte):
            let start = position
            while let byte = current, Self.isBareKeyByte(byte) { advance() }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        default:
            return nil
        }
    }

    private static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    // MARK: - Values

    private mutating func value(at path: TOMLPath) {
        guard depth < Self.maximumDepth else {
            noteHazard("arrays and inline tables are nested more than \(Self.maximumDepth) deep")
            return
        }
        if startsWith("\"\"\"") {
            skipMultilineString(quote: UInt8(ascii: "\""), escapes: true)
        } else if startsWith("'''") {
            skipMultilineString(quote: UInt8(ascii: "'"), escapes: false)
        } else if current == UInt8(ascii: "\"") {
            _ = basicString()
        } else if current == UInt8(ascii: "'") {
            _ = literalString()
        } else if current == UInt8(ascii: "[") {
            array(at: path)
        } else if current == UInt8(ascii: "{") {
            inlineTable(at: path)
        } else {
            // Numbers, booleans, dates; a date may contain a space, so only delimiters end it.
            let start = position
            while let byte = current, !Self.endsScalar(byte) { advance() }
            var token = bytes[start..<position]
            while let last = token.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { token = token.dropLast() }
            checkScalar(token, at: start)
        }
    }

    /// Flags a bare value that is not a TOML 1.0 number, boolean or date/time.
    ///
    /// toml++ 3.4.0 asserts on some malformed dates (`1979-05-27 0,` and `1979-05-27Tx07:00:00`)
    /// rather than failing; checking every bare value against the grammar here covers those and
    /// any like them. It also gives the likeliest typo, an unquoted `timeout = 10m`, a clearer message.
    private mutating func checkScalar(_ token: ArraySlice<UInt8>, at start: Int) {
        guard !token.isEmpty else {
            noteHazard("expected a value, saw \(current.map(Self.describe) ?? "the end of the file")")
            return
        }
        guard !ScalarSyntax.isValid(token) else { return }
        let text = String(decoding: token, as: UTF8.self)
        let shown = text.count > 40 ? text.prefix(40) + "..." : Substring(text)
        let looksLikeText = !token.contains { $0 <= 0x20 || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\"") }
        noteHazard(looksLikeText ? "invalid value \(shown); text must be quoted: \"\(shown)\"" : "invalid value: \(shown)",
                   at: start)
    }

    private static func endsScalar(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ",") || byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}")
            || byte == UInt8(ascii: "#") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    private mutating func array(at path: TOMLPath) {
        advance()
        depth += 1
        defer { depth -= 1 }
        var index = 0
        while position < bytes.count && hazard == nil {
            let before = position
            skipTrivia(newlines: true)
            if current == UInt8(ascii: "]") { advance(); return }
            let element = path.index(index)
            record(element, line: line)
            value(at: element)
            index += 1
            skipTrivia(newlines: true)
            if current == UInt8(ascii: ",") { advance() }
            if position == before { advance() }
        }
    }

    private mutating func inlineTable(at path: TOMLPath) {
        advance()
        depth += 1
        defer { depth -= 1 }
        while position < bytes.count && hazard == nil {
            let before = position
            // TOML 1.0 keeps inline tables on one line; newlines are tolerated for TOML 1.1 files.
            skipTrivia(newlines: true)
            if current == UInt8(ascii: "}") { advance(); return }
            keyValue(in: path)
            skipTrivia(newlines: true)
            if current == UInt8(ascii: ",") { advance() }
            if position == before { advance() }
        }
    }

    // MARK: - Strings

    /// Reads `"..."` and returns its decoded text, so quoted keys match TOMLKit's key strings.
    private mutating func basicString() -> String {
        advance()
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flush() {
            scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            raw.removeAll()
        }
        while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\n") {
            if byte == UInt8(ascii: "\\") {
                flush()
                let start = position
                advance()
                let decoded = escape()
                noteNUL(decoded, at: start)
                scalars.append(contentsOf: decoded)
            } else {
                raw.append(byte)
                advance()
            }
        }
        flush()
        if current == UInt8(ascii: "\"") { advance() }
        return String(scalars)
    }

    /// toml++ hands strings over as C strings: one holding a NUL (`\u0000`) would reach us cut off there, a
    /// different name or command than the file says.
    private mutating func noteNUL(_ decoded: [Unicode.Scalar], at start: Int) {
        if decoded.contains("\u{0}") { noteHazard("a string cannot hold a NUL character (\\u0000)", at: start) }
    }

    /// Decodes the escape after a backslash (already consumed).
    private mutating func escape() -> [Unicode.Scalar] {
        guard let byte = current else { return [] }
        advance()
        switch byte {
        case UInt8(ascii: "b"): return ["\u{08}"]
        case UInt8(ascii: "t"): return ["\t"]
        case UInt8(ascii: "n"): return ["\n"]
        case UInt8(ascii: "f"): return ["\u{0C}"]
        case UInt8(ascii: "r"): return ["\r"]
        case UInt8(ascii: "e"): return ["\u{1B}"]
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = byte == UInt8(ascii: "u") ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let digit = current.flatMap({ Self.hexValue($0) }) else { break }
                value = value &* 16 &+ UInt32(digit)
                advance()
            }
            return Unicode.Scalar(value).map { [$0] } ?? []
        default:
            return [Unicode.Scalar(byte)]
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private mutating func literalString() -> String {
        advance()
        let start = position
        while let byte = current, byte != UInt8(ascii: "'"), byte != UInt8(ascii: "\n") { advance() }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if current == UInt8(ascii: "'") { advance() }
        return text
    }

    private mutating func skipMultilineString(quote: UInt8, escapes: Bool) {
        advance(3)
        while let byte = current {
            if escapes && byte == UInt8(ascii: "\\") {
                let start = position
                advance()
                if current == UInt8(ascii: "u") || current == UInt8(ascii: "U") {
                    noteNUL(escape(), at: start)
                } else {
                    advance()
                }
            } else if byte == quote && peek(1) == quote && peek(2) == quote {
                advance(3)
                // Up to two more quotes belong to the content: `"""a""""` ends with `a"`.
                var extra = 0
                while extra < 2 && current == quote { advance(); extra += 1 }
                return
            } else {
                advance()
            }
        }
    }

    // MARK: - Trivia

    private mutating func skipTrivia(newlines: Bool) {
        while let byte = current {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
                advance()
            } else if newlines && byte == UInt8(ascii: "\n") {
                advance()
            } else if byte == UInt8(ascii: "#") {
                while let next = current, next != UInt8(ascii: "\n") { advance() }
            } else {
                return
            }
        }
    }

    /// After a statement only a comment may follow; anything else is skipped to stay in step.
    private mutating func skipRestOfLine() {
        while let byte = current, byte != UInt8(ascii: "\n") { advance() }
    }
}
