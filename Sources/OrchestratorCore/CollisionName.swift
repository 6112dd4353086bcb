/// Names for a file whose place in Done/ or Failed/ is taken (guarantee 16): `stem~TAG.ext`, then
/// `stem~TAG-2.ext` ... Every component stays within the kernel's 255-byte limit: a long stem is shortened
/// (never the suffix that makes the name unique), keeping the extension.
public enum CollisionName {
    public static let maxComponentBytes = 255

    /// The name to try for the `attempt`-th time (1: the name itself).
    public static func candidate(for name: RelativePath, tag: String, attempt: Int) -> RelativePath {
        guard attempt > 1 else { return name }
        let suffix = Array("~\(tag)".utf8) + (attempt > 2 ? Array("-\(attempt - 1)".utf8) : [])
        let base = withSuffix(name.baseName, suffix)
        return name.parent.isEmpty ? RelativePath(base) : RelativePath(name.parent).appending(base)
    }

    /// `base` with `suffix` inserted before its extension, shortened to fit.
    public static func withSuffix(_ base: [UInt8], _ suffix: [UInt8]) -> [UInt8] {
        let (stem, ext) = RelativePath(base).stemAndExtension
        let dotExt = ext.isEmpty ? [] : [UInt8(ascii: ".")] + ext
        // The extension gives way only when even a one-byte stem would not fit beside it.
        let keptExt = dotExt.count + suffix.count + 1 <= maxComponentBytes
            ? dotExt : Array(dotExt.prefix(max(0, maxComponentBytes - suffix.count - 1)))
        let room = maxComponentBytes - suffix.count - keptExt.count
        return shortened(stem, to: room) + suffix + keptExt
    }

    /// At most `limit` bytes of `bytes`; a valid UTF-8 name is cut between characters, not inside one.
    static func shortened(_ bytes: [UInt8], to limit: Int) -> [UInt8] {
        guard bytes.count > limit else { return bytes }
        var cut = max(0, limit)
        if String(validating: bytes, as: UTF8.self) != nil {
            while cut > 0, bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        }
        return Array(bytes[..<cut])
    }
}
