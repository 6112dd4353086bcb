import Testing
@testable import OrchestratorConfig

/// The scanner that places problems on lines; each test names the TOML feature that could
/// throw its line count or key paths off.
@Suite struct SourceMapTests {
    private func line(_ text: String, _ path: String) -> Int? {
        SourceMap(scanning: text).exactLine(of: KeyPathSyntax.parse(path))
    }

    @Test func tablesAndKeys() {
        let text = """
            [paths]
            inbox = "../Inbox"

            [limits]
            max_concurrent = 2
            """
        #expect(line(text, "paths") == 1)
        #expect(line(text, "paths.inbox") == 2)
        #expect(line(text, "limits") == 4)
        #expect(line(text, "limits.max_concurrent") == 5)
    }

    @Test func arrayOfTablesAreNumberedInOrder() {
        let text = """
            [[handler]]
            name = "a"
            [[task]]
            name = "t"
            [[handler]]
            name = "b"
            max_atempts = 3
            """
        #expect(line(text, "handler[0]") == 1)
        #expect(line(text, "handler[0].name") == 2)
        #expect(line(text, "task[0].name") == 4)
        #expect(line(text, "handler[1]") == 5)
        #expect(line(text, "handler[1].max_atempts") == 7)
    }

    @Test func hashInsideStringsIsNotAComment() {
        let text = """
            [[handler]]
            command = ["a#b", 'c # d', "e\\"#"] # real comment
            match = ["x"]
            """
        #expect(line(text, "handler[0].command[2]") == 2)
        #expect(line(text, "handler[0].match") == 3)
    }

    @Test func multiLineArraysWithComments() {
        let text = """
            [inbox]
            exclude = [
              ".*",      # hidden
              # a whole comment line, with "quotes" and [brackets]
              "*.tmp",
              "[bad",
            ]
            settle = "1s"
            """
        #expect(line(text, "inbox.exclude") == 2)
        #expect(line(text, "inbox.exclude[0]") == 3)
        #expect(line(text, "inbox.exclude[1]") == 5)
        #expect(line(text, "inbox.exclude[2]") == 6)
        #expect(line(text, "inbox.settle") == 8)
    }

    @Test func multiLineStringsCountTheirLines() {
        let text = #"""
            a = """
            first # not a comment
            key = "not a key"
            """
            b = '''
            x '' y
            '''
            c = """quote at end"""""
            d = 1
            """#
        #expect(line(text, "a") == 1)
        #expect(line(text, "key") == nil)
        #expect(line(text, "b") == 5)
        #expect(line(text, "c") == 8)
        #expect(line(text, "d") == 9)
    }

    @Test func quotedAndDottedKeys() {
        let text = """
            "quoted key" = 1
            'literal.key' = 2
            site . "a.b" = 3
            """
        #expect(line(text, #""quoted key""#) == 1)
        #expect(line(text, #""literal.key""#) == 2)
        #expect(line(text, #"site."a.b""#) == 3)
        #expect(line(text, "site") == 3)
    }

    @Test func inlineTablesAndSubTables() {
        let text = """
            [[handler]]
            name = "a"
            breaker = { failures = 5, cooldown = "5m", extra = { x = 1 } }
            [[handler]]
            name = "b"
            [handler.breaker]
            cooldown = "1m"
            """
        #expect(line(text, "handler[0].breaker") == 3)
        #expect(line(text, "handler[0].breaker.cooldown") == 3)
        #expect(line(text, "handler[0].breaker.extra.x") == 3)
        // `[handler.breaker]` belongs to the last `[[handler]]`.
        #expect(line(text, "handler[1].breaker") == 6)
        #expect(line(text, "handler[1].breaker.cooldown") == 7)
    }

    @Test func fallsBackToTheEnclosingTable() {
        let map = SourceMap(scanning: "x = 1\n[[task]]\nname = \"t\"\n")
        #expect(map.line(of: KeyPathSyntax.parse("task[0].command")) == 2)
        #expect(map.line(of: KeyPathSyntax.parse("sweeps.retry")) == 0)
    }

    @Test func datesWithSpacesAndCRLF() {
        let text = "when = 1979-05-27 07:32:00Z\r\nnext = true\r\n"
        #expect(line(text, "when") == 1)
        #expect(line(text, "next") == 2)
    }

    @Test func byteOrderMarkIsNotAKey() {
        #expect(line("\u{FEFF}first = 1\nsecond = 2", "first") == 1)
    }

    @Test func nulByteIsAHazardAtItsLine() {
        let map = SourceMap(scanning: "a = 1\nb = \"x\u{0}y\"\n")
        #expect(map.parserHazard?.line == 2 && map.parserHazard?.column == 7)
    }
}
