import Foundation
import Testing

@testable import OrchestratorDaemon

@Suite struct TimestampTests {
    @Test func aUnixTimeIsWrittenAsUTCWithMilliseconds() {
        #expect(LineLogHandler.timestamp(at: 0) == "1970-01-01T00:00:00.000Z")
        #expect(LineLogHandler.timestamp(at: 1_796_411_801.5) == "2026-12-04T19:16:41.500Z")
        #expect(LineLogHandler.timestamp(at: 951_782_400.25) == "2000-02-29T00:00:00.250Z")
    }

    @Test func jsonLinesCarryCountsAndIdsAsNumbersAndNamesAsStrings() throws {
        let line = LineLogHandler.jsonLine(
            time: "2026-12-06T00:00:00.000Z", level: .info, message: "done",
            fields: ["job": "17", "attempt": "2", "ms": "1500", "file": "42", "retry_in": "300ms", "pid": "not-a-number"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["job"] as? Int == 17 && object["attempt"] as? Int == 2 && object["ms"] as? Int == 1500)
        // Names stay names, and a field that does not hold a number this time is not forced into one.
        #expect(object["file"] as? String == "42" && object["retry_in"] as? String == "300ms")
        #expect(object["pid"] as? String == "not-a-number")
        #expect(object["message"] as? String == "done" && object["level"] as? String == "info")
        #expect(!line.contains("\"17\"") && line.contains("\"file\":\"42\""))
    }
}
