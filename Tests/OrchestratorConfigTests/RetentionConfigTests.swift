import Testing
@testable import OrchestratorConfig

@Suite struct RetentionConfigTests {
    @Test func retentionAndPruneIntervalAreRead() throws {
        let config = try load("""
            [sweeps]
            prune = "10m"
            [retention]
            jobs = "2s"
            logs = "1d12h"
            """)
        #expect(config.sweeps.prune == .seconds(600))
        #expect(config.retention == Retention(jobs: .seconds(2), logs: .seconds(36 * 3600)))
    }

    @Test func badRetentionValuesAndUnknownKeysHaveTheirLines() {
        do {
            _ = try load("""
                [retention]
                jobs = 90
                logs = "forever"
                attempts = "1d"
                [sweeps]
                prune = "0s"
                """)
            Issue.record("loaded")
        } catch {
            #expect(error.problems.map { "\($0.line): \($0.message)" } == [
                #"2: jobs: expected a duration string like "10m", got integer"#,
                #"3: logs: invalid duration "forever": expected a number at "forever""#,
                #"4: unknown key "attempts" in [retention]"#,
                #"6: prune: invalid duration "0s": must be positive"#,
            ])
        }
    }
}
