/// A placeholder usable in a `command` argument.
public enum Placeholder: String, CaseIterable, Sendable { case file, name, stem, ext, job, attempt }

/// The values that placeholders expand to for one attempt.
public struct PlaceholderValues: Sendable {
    public var file: [UInt8]
    public var name: RelativePath
    public var job: Int64
    public var attempt: Int
    public init(file: [UInt8], name: RelativePath, job: Int64, attempt: Int) {
        self.file = file
        self.name = name
        self.job = job
        self.attempt = attempt
    }

    func bytes(for placeholder: Placeholder) -> [UInt8] {
        switch placeholder {
        case .file: file
        case .name: name.bytes
        case .stem: name.stemAndExtension.stem
        case .ext: name.stemAndExtension.ext
        case .job: Array(String(job).utf8)
        case .attempt: Array(String(attempt).utf8)
        }
    }
}

/// One argument of a `command`, parsed once at config load so a typo in a placeholder is a config error,
/// not a surprise at the first file. Expansion works on bytes: file names need not be UTF-8.
public struct ArgumentTemplate: Hashable, Sendable {
    enum Segment: Hashable, Sendable {
        case literal([UInt8])
        case placeholder(Placeholder)
    }

    public let source: String
    let segments: [Segment]

    public init(parsing source: String) throws(PatternError) {
        self.source = source
        var segments: [Segment] = []
        var literal: [UInt8] = []
        let bytes = Array(source.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let next = index + 1 < bytes.count ? bytes[index + 1] : nil
            if byte == UInt8(ascii: "{") && next == UInt8(ascii: "{") || byte == UInt8(ascii: "}") && next == UInt8(ascii: "}") {
                literal.append(byte)
                index += 2
            } else if byte == UInt8(ascii: "{") {
                guard let close = bytes[index...].firstIndex(of: UInt8(ascii: "}")) else {
                    throw PatternError("argument \"\(source)\": unclosed \"{\" (write {{ for a literal brace)")
                }
                let word = String(decoding: bytes[(index + 1)..<close], as: UTF8.self)
                guard let placeholder = Placeholder(rawValue: word) else {
                    throw PatternError(
                        "argument \"\(source)\": unknown placeholder {\(word)}; known: {file} {name} {stem} {ext} {job} {attempt}")
                }
                if !literal.isEmpty { segments.append(.literal(literal)) }
                literal = []
                segments.append(.placeholder(placeholder))
                index = close + 1
            } else if byte == UInt8(ascii: "}") {
                throw PatternError("argument \"\(source)\": lone \"}\" (write }} for a literal brace)")
            } else {
                literal.append(byte)
                index += 1
            }
        }
        if !literal.isEmpty { segments.append(.literal(literal)) }
        self.segments = segments
    }

    public var placeholders: Set<Placeholder> {
        Set(segments.compactMap { if case .placeholder(let p) = $0 { p } else { nil } })
    }

    public func expand(_ values: PlaceholderValues) -> [UInt8] {
        var result: [UInt8] = []
        for segment in segments {
            switch segment {
            case .literal(let bytes): result += bytes
            case .placeholder(let placeholder): result += values.bytes(for: placeholder)
            }
        }
        return result
    }
}

/// A whole argv template.
public struct CommandTemplate: Hashable, Sendable {
    public let arguments: [ArgumentTemplate]

    public init(parsing arguments: [String]) throws(PatternError) {
        guard let first = arguments.first else { throw PatternError("command is empty") }
        guard !first.isEmpty else { throw PatternError("command's program (its first element) is empty") }
        var parsed: [ArgumentTemplate] = []
        for argument in arguments { parsed.append(try ArgumentTemplate(parsing: argument)) }
        self.arguments = parsed
    }

    public init(arguments: [ArgumentTemplate]) { self.arguments = arguments }

    public func expand(_ values: PlaceholderValues) -> [[UInt8]] { arguments.map { $0.expand(values) } }
}
