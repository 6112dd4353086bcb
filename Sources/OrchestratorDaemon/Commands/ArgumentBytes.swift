#if canImport(Glibc)
import Glibc
#endif

/// The bytes a command-line argument came as. Swift decodes argv as UTF-8 and replaces invalid bytes with U+FFFD, so
/// a path naming a file whose name is not UTF-8 (Latin-1 from an old share: guarantee 5, any name works) would name
/// another file. An argument with a replacement character is looked up in argv itself; any other is its UTF-8.
enum ArgumentBytes {
    static func of(_ argument: String) -> [UInt8] {
        guard argument.unicodeScalars.contains("\u{FFFD}") else { return Array(argument.utf8) }
        for index in 0..<Int(CommandLine.argc) {
            guard let pointer = CommandLine.unsafeArgv[index] else { continue }
            let raw = UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)).map { $0 }
            if String(decoding: raw, as: UTF8.self) == argument { return raw }
        }
        return Array(argument.utf8)
    }
}
