import Testing

@testable import OrchestratorDaemon

@Suite struct ReportTableTests {
    @Test func columnsAreAsWideAsTheirWidestCellSoALongNameShiftsNothing() {
        let lines = Reports.table(
            ["TASK", "TRIGGER", "NEXT", "LAST"],
            [
                ["nightly-report-long-name", "cron 0 3 * * * Europe/Berlin", "2026-12-06T02:00:00+00:00", "never ran"],
                ["t2", "every 1h", "2026-12-06T01:00:00+00:00", "ok 2026-12-06T00:00:01Z"],
            ])
        #expect(lines.count == 3)
        // Every column starts at the same offset on every line.
        for column in ["TRIGGER", "NEXT", "LAST"] {
            let offset = lines[0].range(of: column).map { lines[0].distance(from: lines[0].startIndex, to: $0.lowerBound) }
            let cells = column == "TRIGGER" ? ["cron 0 3", "every 1h"] : column == "NEXT" ? ["2026-12-06T02", "2026-12-06T01"] : ["never ran", "ok 2026"]
            for (line, cell) in zip(lines.dropFirst(), cells) {
                let at = line.range(of: cell).map { line.distance(from: line.startIndex, to: $0.lowerBound) }
                #expect(at == offset, "\(column) in \(line)")
            }
        }
        // The last column carries no padding.
        #expect(lines.allSatisfy { !$0.hasSuffix(" ") })
    }

    @Test func aWorkersOutputIsShownWithoutItsControlSequences() {
        #expect(Reports.terminalSafe("\u{1b}[2J\u{1b}]0;pwned\u{07}\u{1b}[31mred") == "\\x1b[2J\\x1b]0;pwned\\x07\\x1b[31mred")
        #expect(Reports.terminalSafe("tab\there\rover \u{9b}c") == "tab\there\\x0dover \\x9bc")
        #expect(Reports.terminalSafe("ünïcode ✓ stays") == "ünïcode ✓ stays")
    }
}
