import Testing
@testable import OrchestratorConfig

/// Every problem in a file, as `LINE: MESSAGE`, in report order; empty if the file loads.
private func problems(_ text: String) -> [String] {
    do {
        _ = try Config.parse(text: text, file: configFile)
        return []
    } catch {
        #expect(error.problems.allSatisfy { $0.file == configFile })
        return error.problems.map { "\($0.line): \($0.message)" }
    }
}

@Suite struct ConfigValidationTests {
    /// `recursive = true` with handlers that only match at top level sends every nested file to Failed/: said as a
    /// warning at the `recursive` line, not refused; one handler reaching into subfolders is enough to say nothing.
    @Test func recursiveWithTopLevelMatchesOnlyIsAWarning() throws {
        let topLevel = try Config.parse(text: """
            [inbox]
            recursive = true

            [[handler]]
            name = "a"
            command = ["x"]
            match = ["*", "*.pdf"]
            """, file: configFile)
        #expect(topLevel.warnings().map { "\($0.line): \($0.isWarning)" } == ["2: true"])
        #expect(topLevel.warnings().first?.description.hasPrefix("\(configFile):2: warning: [inbox] recursive = true") == true)
        let reaching = try Config.parse(text: """
            [inbox]
            recursive = true

            [[handler]]
            name = "a"
            command = ["x"]
            match = ["*.pdf"]

            [[handler]]
            name = "b"
            command = ["x"]
            match = ["**"]
            """, file: configFile)
        #expect(reaching.warnings().isEmpty)
        let flat = try Config.parse(text: "[[handler]]\nname = \"a\"\ncommand = [\"x\"]\nmatch = [\"*\"]\n", file: configFile)
        #expect(flat.warnings().isEmpty)
    }

    @Test func unknownKeyWithItsLine() {
        #expect(problems("""
            [[handler]]
            name = "default"
            command = ["x"]
            max_atempts = 3
            """) == [#"4: unknown key "max_atempts" in [[handler]] "default""#])
    }

    @Test func unknownKeysInTwoHandlersAreBothReported() {
        #expect(problems("""
            [[handler]]
            name = "a"
            command = ["x"]
            max_atempts = 3

            [[handler]]
            command = ["y"]
            name = "b"
            timout = "1m"
            """) == [
                #"4: unknown key "max_atempts" in [[handler]] "a""#,
                #"9: unknown key "timout" in [[handler]] "b""#,
            ])
    }

    @Test func unknownKeysEverywhere() {
        #expect(problems("""
            verbose = true
            [path]
            inbox = "x"
            [[handlers]]
            name = "h"
            [inbox]
            exclud = []
            [sweeps]
            retyr = "1m"
            [[task]]
            name = "t"
            every = "1m"
            command = ["x"]
            breaker = { failures = 2, cooldwn = "1m" }
            """) == [
                #"1: unknown key "verbose" at top level"#,
                "2: unknown table [path]",
                "4: unknown table [[handlers]]",
                #"7: unknown key "exclud" in [inbox]"#,
                #"9: unknown key "retyr" in [sweeps]"#,
                #"14: unknown key "cooldwn" in breaker of [[task]] "t""#,
            ])
    }

    @Test func badDurationAtItsLine() {
        let found = problems("""
            [inbox]
            settle = "500ms"

            [limits]
            shutdown_grace = "30 parsecs"
            """)
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("5: shutdown_grace: ") == true)
    }

    @Test func wrongTypes() {
        #expect(problems("""
            [inbox]
            recursive = "yes"
            include = "*"
            [limits]
            max_concurrent = 2.5
            [[handler]]
            name = "h"
            command = "run.sh {file}"
            timeout = 5
            match = ["*", 3]
            breaker = 5
            """) == [
                #"2: recursive: expected true or false, got string"#,
                #"3: include: expected an array of patterns like ["*.pdf"], got string"#,
                #"5: max_concurrent: expected an integer, got float"#,
                #"8: command: expected an array of strings like ["prog", "{file}"], got string"#,
                #"9: timeout: expected a duration string like "10m", got integer"#,
                #"10: match[1]: expected a string, got integer"#,
                #"11: breaker: expected an inline table like { failures = 5, cooldown = "5m" }, got integer"#,
            ])
    }

    @Test func sectionsOfTheWrongShape() {
        #expect(problems("""
            paths = "x"
            [handler]
            name = "h"
            """) == [
                "1: paths: expected a table [paths], got string",
                "2: handler: expected [[handler]] entries (an array of tables), got table",
            ])
    }

    @Test func syntaxErrorStopsWithItsLine() throws {
        let found = problems("""
            [limits]
            max_concurrent = 2
            name = "unterminated
            bogus_key = 1
            """)
        try #require(found.count == 1)
        #expect(found[0].hasPrefix("3: TOML syntax error while parsing string: "))
        #expect(found[0].hasSuffix(" (column 21)"))
    }

    @Test func unquotedTextIsASyntaxErrorWithAHint() {
        #expect(problems("""
            [[handler]]
            name = "h"
            timeout = 10m
            command = ["x"]
            """) == [#"3: TOML syntax error: invalid value 10m; text must be quoted: "10m" (column 11)"#])
    }

    /// Inputs on which toml++ 3.4.0 asserts (aborting the test process) instead of failing.
    @Test(arguments: [
        "[#x]", "[[[a]]]", "[ [a]]", "[[\n", "x = [1, }]", "x = 1979-05-27 0,", "x = [1979-05-27 0 ]",
        "x = 1979-05-27Tx07:32:00Z", "x = 1979-05-27T-07:32:00Z", "x = {a = [}]}",
    ])
    func parserHazardsAreSyntaxErrorsNotCrashes(_ line: String) throws {
        let found = problems("a = 1\n" + line + "\nb = 2\n")
        try #require(found.count == 1)
        #expect(found[0].hasPrefix("2: TOML syntax error: "))
    }

    @Test func absurdNestingIsRefusedWithoutRecursingForever() {
        let found = problems("x = " + String(repeating: "[", count: 100_000))
        #expect(found.count == 1 && found.first?.hasPrefix("1: TOML syntax error") == true)
    }

    @Test func duplicateKeyIsASyntaxError() {
        let found = problems("""
            [[handler]]
            name = "a"
            name = "b"
            """)
        #expect(found.count == 1 && found.first?.hasPrefix("3: TOML syntax error") == true)
    }

    @Test func missingRequiredKeysAtTheHeaderLine() {
        #expect(problems("""
            [[handler]]
            name = "a"

            [[handler]]
            match = ["*"]

            [[task]]
            name = "t"
            every = "1m"
            """) == [
                #"1: handler "a": missing required key "command""#,
                #"4: [[handler]] #2: missing required key "name""#,
                #"4: [[handler]] #2: missing required key "command""#,
                #"7: task "t": missing required key "command""#,
            ])
    }

    @Test func duplicateNames() {
        #expect(problems("""
            [[handler]]
            name = "a"
            command = ["x"]
            [[handler]]
            name = "a"
            command = ["y"]
            [[task]]
            name = "t"
            on = "e"
            command = ["x"]
            [[task]]
            name = "t"
            on = "e"
            command = ["x"]
            """) == [
                #"5: duplicate handler name "a" (first defined at line 2)"#,
                #"12: duplicate task name "t" (first defined at line 8)"#,
            ])
    }

    @Test func ranges() {
        #expect(problems("""
            [limits]
            max_concurrent = 0
            max_cpu_percent = 0
            max_memory_percent = 100.5
            [[handler]]
            name = "h"
            command = ["x"]
            priority = 11
            max_attempts = 0
            breaker = { failures = 0 }
            memory_percent = -1
            """) == [
                "2: max_concurrent: must be between 1 and 1024, got 0",
                "3: max_cpu_percent: must be greater than 0 and at most 100, got 0",
                "4: max_memory_percent: must be greater than 0 and at most 100, got 100.5",
                "8: priority: must be between 1 and 10, got 11",
                "9: max_attempts: must be at least 1, got 0",
                "10: breaker.failures: must be at least 1, got 0",
                "11: memory_percent: must be greater than 0 and at most 100, got -1",
            ])
    }

    @Test func valuesTooLargeToRunWithAreRefused() {
        #expect(problems("""
            [limits]
            max_concurrent = 9223372036854775807
            [retention]
            logs = "1000000d"
            [[handler]]
            name = "h"
            command = ["x"]
            backoff = "9223372036854775807ms"
            """) == [
                "2: max_concurrent: must be between 1 and 1024, got 9223372036854775807",
                #"4: logs: invalid duration "1000000d": too large (at most 36500d, a hundred years)"#,
                #"8: backoff: invalid duration "9223372036854775807ms": too large (at most 36500d, a hundred years)"#,
            ])
    }

    @Test func afterNamesMustExist() {
        #expect(problems("""
            [[task]]
            name = "a"
            every = "1m"
            command = ["x"]
            after = [
              "b",
            ]
            """) == [#"6: unknown task "b" in after"#])
    }

    @Test func dependencyCycles() {
        #expect(problems("""
            [[task]]
            name = "a"
            on = "e"
            command = ["x"]
            after = ["b"]
            [[task]]
            name = "b"
            on = "e"
            command = ["x"]
            after = ["a"]
            [[task]]
            name = "self"
            on = "e"
            command = ["x"]
            after = ["self"]
            """) == [
                "5: dependency cycle: a -> b -> a",
                "15: dependency cycle: self -> self",
            ])
    }

    @Test func triggerChoice() {
        #expect(problems("""
            [[task]]
            name = "x"
            every = "1m"
            cron = "* * * * *"
            command = ["x"]
            [[task]]
            name = "y"
            command = ["x"]
            [[task]]
            name = "z"
            every = "1m"
            tz = "UTC"
            command = ["x"]
            [[task]]
            name = "w"
            cron = ""
            on = "e"
            every = "1m"
            command = ["x"]
            """) == [
                #"4: task "x": has both every and cron; choose one"#,
                #"6: task "y": has none of every, cron, on"#,
                #"12: task "z": tz is only allowed with cron"#,
                "16: cron: must not be empty",
                #"18: task "w": has every, cron and on; choose one"#,
            ])
    }

    /// `trigger` and the API accept only some names: a task listening to any other would never run, and `config check`
    /// said ok.
    @Test func anEventNoCommandCanFireIsRefused() {
        #expect(problems("""
            [[task]]
            name = "space"
            on = "webhook received"
            command = ["x"]
            [[task]]
            name = "newline"
            on = "a\\nb"
            command = ["x"]
            [[task]]
            name = "built-in"
            on = "file.done"
            command = ["x"]
            [[task]]
            name = "custom"
            on = "deploy:prod_eu-1"
            command = ["x"]
            """) == [
                #"3: on: "webhook received" is not an event name (1-200 characters of letters, digits and . _ - :); no event could ever fire it"#,
                #"7: on: "a\nb" is not an event name (1-200 characters of letters, digits and . _ - :); no event could ever fire it"#,
            ])
    }

    /// A name is printed in logs and `show` and passed in the worker's environment: a NUL cut it short there, an
    /// escape sequence or a newline garbled or forged the lines it is in.
    @Test func namesWithControlCharactersAreRefused() {
        #expect(problems(#"""
            [[handler]]
            name = "a\u0007b"
            match = ["*"]
            command = ["x"]
            [[task]]
            name = "t\u001b[2J"
            every = "1h"
            command = ["x"]
            [[task]]
            name = "line\nbreak"
            every = "1h"
            command = ["x"]
            [[task]]
            name = "ok name-1"
            every = "1h"
            command = ["x"]
            """#) == [
                #"2: name: "a\u{07}b" contains a control character; a handler name must not"#,
                #"6: name: "t\u{1B}[2J" contains a control character; a task name must not"#,
                #"10: name: "line\nbreak" contains a control character; a task name must not"#,
            ])
    }

    /// toml++ hands strings over as C strings: a NUL cut a name or a command's argument short, and the daemon ran
    /// under a name (or with an argument) the file did not say. Refused with the line and column of the escape, in any
    /// string.
    @Test(arguments: [
        (#"name = "a\u0000b""#, 2, 10), (#"name = "\U00000000""#, 2, 9), ("command = [\"\"\"x\\u0000\"\"\"]", 2, 16),
    ])
    func aNULInAStringIsRefused(line: String, at expectedLine: Int, column: Int) {
        let text = "[[handler]]\n\(line)\n" + (line.hasPrefix("name") ? "match = [\"*\"]\ncommand = [\"x\"]\n" : "name = \"h\"\nmatch = [\"*\"]\n")
        #expect(problems(text) == ["\(expectedLine): TOML syntax error: a string cannot hold a NUL character (\\u0000) (column \(column))"])
    }

    /// Each value of a task with two triggers is checked too: one run of `config check` names every problem.
    @Test func everyProblemOfATaskWithTwoTriggersIsNamed() {
        #expect(problems("""
            [[task]]
            name = "t"
            cron = "61 * * * *"
            tz = "Mars/Base"
            every = "5x"
            command = ["x"]
            priority = 0
            """) == [
                #"3: cron: cron expression "61 * * * *": minute: value 61 is out of range 0-59"#,
                #"4: tz: unknown time zone "Mars/Base" (expected an IANA name such as Europe/Berlin or UTC)"#,
                #"5: every: invalid duration "5x": unknown unit "x" (use ms, s, m, h, d)"#,
                #"5: task "t": has both every and cron; choose one"#,
                "7: priority: must be between 1 and 10, got 0",
            ])
    }

    @Test func unknownTimeZone() {
        #expect(problems("""
            [[task]]
            name = "a"
            cron = "0 9 * * 1"
            tz = "Mars/Olympus_Mons"
            command = ["x"]
            [[task]]
            name = "b"
            cron = "0 9 * * 1"
            tz = "../../etc/passwd"
            command = ["x"]
            [[task]]
            name = "c"
            cron = "0 9 * * 1"
            tz = "zone.tab"
            command = ["x"]
            [[task]]
            name = "d"
            cron = "0 9 * * 1"
            tz = "right/UTC"
            command = ["x"]
            [[task]]
            name = "e"
            cron = "0 9 * * 1"
            tz = "localtime"
            command = ["x"]
            """) == [
                #"4: tz: unknown time zone "Mars/Olympus_Mons" (expected an IANA name such as Europe/Berlin or UTC)"#,
                #"9: tz: unknown time zone "../../etc/passwd" (expected an IANA name such as Europe/Berlin or UTC)"#,
                #"14: tz: unknown time zone "zone.tab" (expected an IANA name such as Europe/Berlin or UTC)"#,
                // Files under /usr/share/zoneinfo the scheduler cannot use: the task never ran.
                #"19: tz: unknown time zone "right/UTC" (expected an IANA name such as Europe/Berlin or UTC)"#,
                #"24: tz: unknown time zone "localtime" (expected an IANA name such as Europe/Berlin or UTC)"#,
            ])
    }

    @Test func enumValues() {
        #expect(problems("""
            [[task]]
            name = "a"
            every = "1m"
            command = ["x"]
            catch_up = "all"
            overlap = "parallel"
            """) == [
                #"5: catch_up: expected "none" or "once", got "all""#,
                #"6: overlap: expected "skip" or "queue", got "parallel""#,
            ])
    }

    @Test func commandsMustBeUsable() {
        #expect(problems("""
            [[handler]]
            name = "a"
            command = []
            [[handler]]
            name = "b"
            command = ["", "{file}"]
            [[task]]
            name = "t"
            every = "1m"
            command = ["x", "{file}", "{job}"]
            """) == [
                "3: command: must not be empty; give the program and its arguments",
                "6: command: the program (first element) must not be empty",
                "10: command: {file} has no value in a task; use only {job} and {attempt}",
            ])
    }

    @Test func badTemplateAndGlobAtTheirElementLines() {
        let found = problems("""
            [[handler]]
            name = "a"
            match = [
              "*.pdf",
              "[oops",
            ]
            command = [
              "x",
              "{nope}",
            ]
            """)
        #expect(found.count == 2)
        #expect(found.first?.hasPrefix("5: match: ") == true)
        #expect(found.last?.hasPrefix("9: command: ") == true)
    }

    @Test func hashInsideStringsDoesNotMisplaceLines() {
        #expect(problems("""
            [[handler]]
            name = "#1 # not a comment"
            command = ["x", "a#b"] # comment with "quotes" and = signs
            upload = ['''y''', "# still a string"]
            bad = 1
            """) == [##"5: unknown key "bad" in [[handler]] "#1 # not a comment""##])
    }

    @Test func multiLineArraysAndStringsKeepLinesRight() {
        #expect(problems(#"""
            [inbox]
            exclude = [
              ".*",   # hidden files
              "*.tmp",
            ]
            [[handler]]
            name = "h"
            command = [
              "x",
              """
            multi
            line""",
            ]
            timeout = 5
            """#) == [#"14: timeout: expected a duration string like "10m", got integer"#])
    }

    @Test func pathsMustBeDistinctAndNonEmpty() {
        #expect(problems("""
            [paths]
            inbox = "../Inbox"
            done = "../Inbox/"
            failed = ""
            """) == [
                "3: paths: inbox and done are the same directory (/srv/orch/Inbox)",
                "4: failed: must not be empty",
            ])
    }

    @Test func everyProblemIsCollectedInLineOrder() {
        let found = problems("""
            [[task]]
            name = "t"
            every = "soon"
            command = ["x"]
            after = ["ghost"]
            [limits]
            max_concurrent = -1
            [[handler]]
            name = "h"
            """)
        #expect(found.map { $0.prefix { $0 != ":" } } == ["3", "5", "7", "8"])
    }
}

@Test func cronExpressionsAreCheckedAtTheirLine() {
    let text = """
        [[task]]
        name = "typo"
        cron = "5-1 * * * *"
        command = ["true"]

        [[task]]
        name = "never"
        cron = "0 0 30 2 *"
        command = ["true"]

        [[task]]
        name = "fine"
        cron = "@reboot"
        command = ["true"]
        """
    do {
        _ = try Config.parse(text: text, file: "/tmp/cron.toml")
        Issue.record("expected errors")
    } catch {
        let lines = error.problems.map(\.description)
        #expect(lines.count == 2)
        #expect(lines.contains { $0.hasPrefix("/tmp/cron.toml:3: error:") && $0.contains("range 5-1 is reversed") })
        #expect(lines.contains { $0.hasPrefix("/tmp/cron.toml:8: error:") && $0.contains("can never fire") })
    }
}
