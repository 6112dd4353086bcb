import Testing

@testable import OrchestratorDaemon

@Suite struct TimestampTests {
    @Test func aUnixTimeIsWrittenAsUTCWithMilliseconds() {
        #expect(LineLogHandler.timestamp(at: 0) == "1970-01-01T00:00:00.000Z")
        #expect(LineLogHandler.timestamp(at: 1_796_411_801.5) == "2026-12-04T19:16:41.500Z")
        #expect(LineLogHandler.timestamp(at: 951_782_400.25) == "2000-02-29T00:00:00.250Z")
    }
}
