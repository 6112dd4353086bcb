/// A path relative to Inbox (or Done/Failed), kept as the exact bytes the kernel gave us.
///
/// File names on Linux are bytes, not text: decoding an invalid UTF-8 name into a `String`
/// would replace bytes and the file could no longer be found or moved intact.
public struct RelativePath: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }

    public static func < (lhs: RelativePath, rhs: RelativePath) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    /// The text to show a person: invalid UTF-8 bytes become U+FFFD.
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    public var isValidUTF8: Bool { String(validating: bytes, as: UTF8.self) != nil }

    public var components: [ArraySlice<UInt8>] {
        bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
    }

    /// The last component.
    public var baseName: [UInt8] {
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return bytes }
        return Array(bytes[(slash + 1)...])
    }

    /// Everything before the last component, without a trailing slash; empty at top level.
    public var parent: [UInt8] {
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return [] }
        return Array(bytes[..<slash])
    }

    /// `a.tar.gz` -> (`a.tar`, `gz`); `README` -> (`README`, ``); `.bashrc` -> (`.bashrc`, ``).
    public var stemAndExtension: (stem: [UInt8], ext: [UInt8]) {
        let base = baseName
        guard let dot = base.lastIndex(of: UInt8(ascii: ".")), dot > base.startIndex else { return (base, []) }
        return (Array(base[..<dot]), Array(base[(dot + 1)...]))
    }

    public func appending(_ component: [UInt8]) -> RelativePath {
        bytes.isEmpty ? RelativePath(component) : RelativePath(bytes + [UInt8(ascii: "/")] + component)
    }
}

extension RelativePath {
    /// A component starts with a dot: hidden files and folders are never input.
    public var hasHiddenComponent: Bool { components.contains { $0.first == UInt8(ascii: ".") } }
}
