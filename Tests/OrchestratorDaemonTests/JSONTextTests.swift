import Foundation
import Testing

@testable import OrchestratorDaemon

@Suite struct JSONTextTests {
    static func reference(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    /// What the reports build: snake_case keys, nested objects and lists, numbers, flags, nulls, and text with
    /// every kind of character a file name can bring.
    @Test func writesWhatJSONSerializationWrites() throws {
        let awkward = "a/b \"quoted\" back\\slash\nnew\rret\ttab\u{8}\u{c}\u{1}\u{1f}\u{7f} é 😀 \u{2028} <&>'"
        let object: [String: Any] = [
            "job": 42, "pid": Int32(7), "slot_ms": Int64(1_800_000_000_000), "running": true, "paused": false,
            "reason": NSNull(), "name": awkward, "name_b64": "YWJj",
            "durations": [2.0, 0.1, 1e-7, 123456789012.5, 1e21, -0.0, 0.06930291652679443, Double.pi, 100.0, 1e16, 12345.678],
            "attempts": [["attempt": 1, "outcome": "succeeded", "user_cpu_seconds": 0.008], ["attempt": 2, "signal": NSNull()]],
            "jobs": ["queued": 0, "retry_wait": 3, "breaker_wait": 1, "done": 5000],
            "tasks": [[String: Any]](), "empty": [String: Any](), "a_b": 1, "ab": 2, "attempts_used": 3, "z": [[1, 2], []],
        ]
        #expect(JSONText.render(object) == (try Self.reference(object)))
    }

    @Test func randomTextMatchesToo() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let scalars = (0..<Int.random(in: 0...40, using: &generator)).compactMap { _ in
                Unicode.Scalar(UInt32.random(in: 0...0x2FF, using: &generator))
            }
            let text = String(String.UnicodeScalarView(scalars))
            let number = Double.random(in: -1e6...1e6, using: &generator)
            let object: [String: Any] = ["text": text, "number": number, "whole": number.rounded()]
            #expect(JSONText.render(object) == (try Self.reference(object)), "\(text.debugDescription) \(number)")
        }
    }

    /// A type it does not know makes it step aside (the caller falls back to JSONSerialization).
    @Test func anUnknownValueIsLeftToJSONSerialization() {
        #expect(JSONText.render(["when": Date()]) == nil)
        #expect(JSONText.render(["nan": Double.nan]) == nil)
    }
}
