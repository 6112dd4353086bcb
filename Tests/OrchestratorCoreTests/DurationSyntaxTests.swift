import Testing
@testable import OrchestratorCore

struct DurationSyntaxTests {
    @Test(arguments: [
        ("500ms", 500), ("30s", 30_000), ("10m", 600_000), ("1h30m", 5_400_000), ("2d", 172_800_000),
        ("1d12h", 129_600_000), ("2m30s", 150_000), ("1s500ms", 1_500), ("05s", 5_000),
    ])
    func validDurations(text: String, milliseconds: Int64) throws {
        #expect(try Duration(parsing: text).wholeMilliseconds == milliseconds)
    }

    @Test(arguments: [
        ("", "empty"), ("30", "missing unit"), ("5w", "unknown unit \"w\""), ("5sec", "unknown unit"), ("0s", "positive"),
        ("-5s", "expected a number"), ("1.5h", "unexpected"), ("1m1m", "largest to smallest"), ("30s1m", "largest to smallest"),
        ("5 m", "unexpected"), ("99999999999999999999d", "too large"), ("9999999999999d", "too large"),
        ("1000000d", "at most 36500d"), ("9223372036854775807ms", "at most 36500d"), ("36500d1ms", "at most 36500d"),
    ])
    func invalidDurations(text: String, message: String) {
        #expect {
            try Duration(parsing: text)
        } throws: { error in
            guard let error = error as? PatternError else { return false }
            return error.message.contains(message) && error.message.contains("\"\(text)\"")
        }
    }

    @Test func aHundredYearsIsTheLongest() throws {
        #expect(try Duration(parsing: "36500d").wholeMilliseconds == Duration.longestConfigured)
    }

    @Test func wholeMillisecondsRoundsDown() {
        #expect(Duration.microseconds(1999).wholeMilliseconds == 1)
        #expect(Duration.seconds(2).wholeMilliseconds == 2000)
    }
}
