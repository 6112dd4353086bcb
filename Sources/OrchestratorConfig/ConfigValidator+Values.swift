import OrchestratorCore

/// Typed readers: each returns nil when the key is absent or its value is invalid, having
/// reported the latter at the value's line.
extension ConfigValidator {
    mutating func mismatch(_ section: Section, _ key: String, expected: String, got node: TOMLNode) {
        report(section.path.key(key), "\(section.keyPrefix)\(key): expected \(expected), got \(node.typeName)")
    }

    mutating func string(_ section: Section, _ key: String) -> String? {
        guard let node = section.entries[key] else { return nil }
        guard case .string(let text) = node else {
            mismatch(section, key, expected: "a string", got: node)
            return nil
        }
        return text
    }

    mutating func nonEmptyString(_ section: Section, _ key: String) -> String? {
        guard let text = string(section, key) else { return nil }
        guard !text.isEmpty else {
            report(section.path.key(key), "\(section.keyPrefix)\(key): must not be empty")
            return nil
        }
        return text
    }

    mutating func bool(_ section: Section, _ key: String) -> Bool? {
        guard let node = section.entries[key] else { return nil }
        guard case .boolean(let value) = node else {
            mismatch(section, key, expected: "true or false", got: node)
            return nil
        }
        return value
    }

    mutating func integer(_ section: Section, _ key: String, atLeast minimum: Int) -> Int? {
        integer(section, key, in: minimum...Int.max)
    }

    mutating func integer(_ section: Section, _ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let node = section.entries[key] else { return nil }
        guard case .integer(let value) = node else {
            mismatch(section, key, expected: "an integer", got: node)
            return nil
        }
        guard range.contains(value) else {
            let bounds = range.upperBound == Int.max
                ? "at least \(range.lowerBound)"
                : "between \(range.lowerBound) and \(range.upperBound)"
            report(section.path.key(key), "\(section.keyPrefix)\(key): must be \(bounds), got \(value)")
            return nil
        }
        return value
    }

    /// A share of the whole machine; TOML integers and floats are both accepted (`80`, `12.5`).
    mutating func percent(_ section: Section, _ key: String) -> Double? {
        guard let node = section.entries[key] else { return nil }
        let value: Double
        let written: String
        switch node {
        case .integer(let integer):
            value = Double(integer)
            written = String(integer)
        case .float(let float):
            value = float
            written = String(float)
        default:
            mismatch(section, key, expected: "a number of percent like 50", got: node)
            return nil
        }
        guard value > 0 && value <= 100 else {
            report(section.path.key(key), "\(section.keyPrefix)\(key): must be greater than 0 and at most 100, got \(written)")
            return nil
        }
        return value
    }

    mutating func duration(_ section: Section, _ key: String) -> Duration? {
        guard let node = section.entries[key] else { return nil }
        guard case .string(let text) = node else {
            mismatch(section, key, expected: "a duration string like \"10m\"", got: node)
            return nil
        }
        do {
            return try Duration(parsing: text)
        } catch {
            report(section.path.key(key), "\(section.keyPrefix)\(key): \(error.message)")
            return nil
        }
    }

    mutating func choice<Value: RawRepresentable & CaseIterable>(
        _ section: Section, _ key: String, as type: Value.Type
    ) -> Value? where Value.RawValue == String {
        guard let text = string(section, key) else { return nil }
        if let value = Value(rawValue: text) { return value }
        let names = Value.allCases.map { "\"\($0.rawValue)\"" }
        let allowed = names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
        report(section.path.key(key), "\(section.keyPrefix)\(key): expected \(allowed), got \"\(text)\"")
        return nil
    }

    /// Each element with its own path, so a bad element of a multi-line array gets its own line.
    mutating func strings(_ section: Section, _ key: String, expectation: String) -> [(text: String, path: TOMLPath)]? {
        guard let node = section.entries[key] else { return nil }
        guard case .array(let elements) = node else {
            mismatch(section, key, expected: expectation, got: node)
            return nil
        }
        let path = section.path.key(key)
        var result: [(text: String, path: TOMLPath)] = []
        var valid = true
        for (index, element) in elements.enumerated() {
            guard case .string(let text) = element else {
                report(path.index(index), "\(section.keyPrefix)\(key)[\(index)]: expected a string, got \(element.typeName)")
                valid = false
                continue
            }
            result.append((text, path.index(index)))
        }
        return valid ? result : nil
    }

    mutating func globs(_ section: Section, _ key: String, allowEmpty: Bool) -> [Glob]? {
        guard let items = strings(section, key, expectation: "an array of patterns like [\"*.pdf\"]") else { return nil }
        if items.isEmpty && !allowEmpty {
            report(section.path.key(key), "\(section.keyPrefix)\(key): must list at least one pattern")
            return nil
        }
        var globs: [Glob] = []
        for item in items {
            do {
                globs.append(try Glob(item.text))
            } catch {
                report(item.path, "\(section.keyPrefix)\(key): \(error.message)")
            }
        }
        return globs.count == items.count ? globs : nil
    }

    /// An argv template with a relative argv[0] resolved against the config's directory.
    ///
    /// Each argument is parsed on its own first so a bad one is reported at its own line.
    mutating func command(_ section: Section, _ key: String, forTask: Bool) -> CommandTemplate? {
        let label = section.keyPrefix + key
        guard let items = strings(section, key, expectation: "an array of strings like [\"prog\", \"{file}\"]") else {
            return nil
        }
        guard let program = items.first else {
            report(section.path.key(key), "\(label): must not be empty; give the program and its arguments")
            return nil
        }
        guard !program.text.isEmpty else {
            report(program.path, "\(label): the program (first element) must not be empty")
            return nil
        }
        let texts = [resolveProgram(program.text)] + items.dropFirst().map(\.text)
        var arguments: [ArgumentTemplate] = []
        for (text, item) in zip(texts, items) {
            do {
                arguments.append(try ArgumentTemplate(parsing: text))
            } catch {
                report(item.path, "\(label): \(error.message)")
            }
        }
        guard arguments.count == items.count else { return nil }
        if forTask {
            // A task has no file, so these would silently expand to nothing.
            let used = arguments.reduce(into: Set<Placeholder>()) { $0.formUnion($1.placeholders) }
            let fileOnly = Placeholder.allCases.filter { [.file, .name, .stem, .ext].contains($0) && used.contains($0) }
            if !fileOnly.isEmpty {
                let names = fileOnly.map { "{\($0.rawValue)}" }.joined(separator: ", ")
                let verb = fileOnly.count == 1 ? "has" : "have"
                report(section.path.key(key), "\(label): \(names) \(verb) no value in a task; use only {job} and {attempt}")
                return nil
            }
        }
        do {
            return try CommandTemplate(parsing: texts)
        } catch {
            report(section.path.key(key), "\(label): \(error.message)")
            return nil
        }
    }

    /// SPEC §2: an argv[0] containing `/` is a path relative to the config's directory; a bare
    /// name is left for PATH lookup. One that starts with a placeholder is left alone, since
    /// `{file}` already expands to an absolute path.
    func resolveProgram(_ text: String) -> String {
        guard text.contains("/"), !text.hasPrefix("/") else { return text }
        if text.hasPrefix("{") && !text.hasPrefix("{{") { return text }
        if text.contains("{") || text.contains("}") {
            // `..` next to a placeholder cannot be folded textually: `{name}` may itself contain `/`.
            return (baseDirectory == "/" ? "" : baseDirectory) + "/" + text
        }
        return FileSystem.absolute(text, relativeTo: baseDirectory)
    }
}
