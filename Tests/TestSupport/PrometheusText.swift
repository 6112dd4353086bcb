/// A small reader of the Prometheus text exposition format (version 0.0.4), strict enough to catch what a
/// scraper would refuse: every sample line is `name{labels} value` or `name value`, label values are quoted
/// with `\\`, `\"` and `\n` escapes, and `# TYPE` comes before the family's samples.
public struct PrometheusText {
    public struct Sample: Equatable, Sendable {
        public let name: String
        public let labels: [String: String]
        public let value: Double
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let line: String
        public let why: String
        public var description: String { "\(why): \(line)" }
    }

    public private(set) var samples: [Sample] = []
    /// Family name to its type.
    public private(set) var types: [String: String] = [:]
    public private(set) var help: [String: String] = [:]

    public init(_ text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ").map(String.init)
                guard parts.count == 2, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]) else {
                    throw ParseError(line: line, why: "bad TYPE line")
                }
                guard types[parts[0]] == nil else { throw ParseError(line: line, why: "second TYPE for one family") }
                types[parts[0]] = parts[1]
            } else if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                guard let space = rest.firstIndex(of: " ") else { throw ParseError(line: line, why: "bad HELP line") }
                help[String(rest[..<space])] = String(rest[rest.index(after: space)...])
            } else if line.hasPrefix("#") {
                continue
            } else {
                let sample = try Self.sample(line)
                guard types[Self.family(of: sample.name)] != nil else {
                    throw ParseError(line: line, why: "sample before its family's TYPE")
                }
                samples.append(sample)
            }
        }
    }

    /// The family a sample belongs to: histograms add `_bucket`, `_sum` and `_count`.
    public static func family(of name: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            return String(name.dropLast(suffix.count))
        }
        return name
    }

    /// The one sample with this name and exactly these labels.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matches = samples.filter { $0.name == name && $0.labels == labels }
        return matches.count == 1 ? matches[0].value : nil
    }

    public func samples(named name: String) -> [Sample] { samples.filter { $0.name == name } }

    private static func sample(_ line: String) throws -> Sample {
        var characters = Substring(line)
        let name = characters.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard let first = name.first, !first.isNumber else { throw ParseError(line: line, why: "bad metric name") }
        characters = characters.dropFirst(name.count)
        var labels: [String: String] = [:]
        if characters.first == "{" {
            characters = characters.dropFirst()
            while characters.first != "}" {
                let key = characters.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                guard !key.isEmpty else { throw ParseError(line: line, why: "bad label name") }
                characters = characters.dropFirst(key.count)
                guard characters.hasPrefix("=\"") else { throw ParseError(line: line, why: "label without =\"") }
                characters = characters.dropFirst(2)
                var value = ""
                while true {
                    guard let next = characters.popFirst() else { throw ParseError(line: line, why: "unterminated label value") }
                    if next == "\"" { break }
                    if next == "\\" {
                        switch characters.popFirst() {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw ParseError(line: line, why: "bad escape in label value")
                        }
                    } else {
                        value.append(next)
                    }
                }
                guard labels.updateValue(value, forKey: String(key)) == nil else {
                    throw ParseError(line: line, why: "label given twice")
                }
                if characters.first == "," { characters = characters.dropFirst() }
            }
            characters = characters.dropFirst()
        }
        guard characters.first == " " else { throw ParseError(line: line, why: "no space before the value") }
        let text = characters.dropFirst()
        let value: Double? = switch text {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(text)
        }
        guard let value else { throw ParseError(line: line, why: "bad value") }
        return Sample(name: String(name), labels: labels, value: value)
    }
}
