import Foundation

/// A python3 script run beside a test to hold something (a lock, connections) until released: it prints one line once
/// it holds it, and ends when its stdin closes.
public final class PythonHolder {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var released = false

    public var pid: Int32 { process.processIdentifier }

    public init(script: String, arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    /// The line it printed once it held what it was asked to (waits for it), trimmed.
    public func report() -> String {
        String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Ends it and waits until it has exited.
    public func release() {
        guard !released else { return }
        released = true
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit { release() }
}
