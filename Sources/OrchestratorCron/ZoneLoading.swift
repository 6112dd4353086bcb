import Foundation

/// The zone named by an IANA identifier (`Europe/Berlin`, `America/Indiana/Indianapolis`, `UTC`, `Etc/UTC`),
/// exactly as spelled (names are case-sensitive). Refuses what is not an IANA name even where Foundation would
/// accept it: abbreviations (`PST`) and offset spellings (`GMT+5`, `UTC+3`, whose sign is the opposite of
/// IANA's `Etc/GMT+5`).
public func loadZone(_ identifier: String) throws(CronError) -> any ZoneRules {
    guard isZoneNameShaped(identifier), let timeZone = TimeZone(identifier: identifier),
        isIANAName(identifier)
    else { throw .unknownZone(identifier) }
    return FoundationZone(identifier: identifier, timeZone: timeZone)
}

/// The host's zone: `$TZ` (an IANA name, optionally after `:`, or a path into a zoneinfo directory; set but
/// empty means UTC, as in glibc), else the zone /etc/localtime links to, else Foundation's idea of the current
/// zone, else UTC.
public func hostZone() -> any ZoneRules {
    if let variable = ProcessInfo.processInfo.environment["TZ"] {
        var name = Substring(variable)
        if name.hasPrefix(":") { name = name.dropFirst() }
        if name.isEmpty { return utcZone() }
        if let zone = try? loadZone(zoneName(fromPath: String(name))) { return zone }
    } else if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/etc/localtime"),
        let zone = try? loadZone(zoneName(fromPath: target))
    {
        return zone
    }
    let current = TimeZone.current
    if let zone = try? loadZone(current.identifier) { return zone }
    return FoundationZone(identifier: current.identifier, timeZone: current)
}

/// Why `$TZ` is not the zone `hostZone` uses, or nil: it holds something other than a zone name or path (a POSIX
/// rule such as `EST5EDT,M3.2.0,M11.1.0`, a name this machine does not know), which glibc's `date` may still read.
/// Said rather than silently replaced.
public func hostZoneProblem(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    guard let variable = environment["TZ"] else { return nil }
    let name = variable.hasPrefix(":") ? String(variable.dropFirst()) : variable
    guard !name.isEmpty, (try? loadZone(zoneName(fromPath: name))) == nil else { return nil }
    return "TZ=\"\(variable)\" is not a time zone name (such as Europe/Berlin) or a path into a zoneinfo directory; "
        + "schedules without tz use \(hostZone().identifier) instead"
}

private func utcZone() -> any ZoneRules {
    FoundationZone(identifier: "UTC", timeZone: TimeZone(secondsFromGMT: 0) ?? TimeZone.current)
}

/// `/usr/share/zoneinfo/Europe/Berlin` (or `../usr/share/zoneinfo/...`) → `Europe/Berlin`; other text unchanged.
private func zoneName(fromPath path: String) -> String {
    guard let range = path.range(of: "zoneinfo/", options: .backwards) else { return path }
    return String(path[range.upperBound...])
}

/// Components of letters, digits, `_`, `-`, `+` and `.`, none empty, `.` or `..`, not absolute.
private func isZoneNameShaped(_ name: String) -> Bool {
    let components = name.split(separator: "/", omittingEmptySubsequences: false)
    return !name.isEmpty && components.allSatisfy { component in
        !component.isEmpty && component != "." && component != ".."
            && component.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                    || byte == UInt8(ascii: ".")
            }
    }
}

/// ICU's canonical list, the system's zoneinfo directory (links such as `Asia/Kolkata`, `US/Eastern`), and UTC
/// whether or not tzdata is installed.
private func isIANAName(_ name: String) -> Bool {
    if ["UTC", "Etc/UTC", "GMT", "Etc/GMT"].contains(name) { return true }
    if TimeZone.knownTimeZoneIdentifiers.contains(name) { return true }
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: "/usr/share/zoneinfo/" + name, isDirectory: &isDirectory)
        && !isDirectory.boolValue
}
