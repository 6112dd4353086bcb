import Testing
@testable import OrchestratorCore

struct GlobTests {
    func matches(_ pattern: String, _ path: String) throws -> Bool {
        try Glob(pattern).matches(RelativePath(path))
    }

    @Test(arguments: [
        ("*", "a.txt", true), ("*", "sub/a.txt", false), ("**", "sub/deeper/a.txt", true),
        ("*.pdf", "report.pdf", true), ("*.pdf", "report.PDF", false), ("*.pdf", "x/report.pdf", false),
        ("**/*.pdf", "report.pdf", true), ("**/*.pdf", "x/y/report.pdf", true), ("**/*.pdf", "x/y/report.txt", false),
        ("sub/**", "sub/a/b", true), ("sub/**", "other/a", false), ("a/**/b", "a/b", true), ("a/**/b", "a/x/y/b", true),
        ("?.txt", "a.txt", true), ("?.txt", "ab.txt", false), ("?.txt", "é.txt", true), ("?", "/", false),
        ("[abc].csv", "b.csv", true), ("[abc].csv", "d.csv", false), ("[a-c]*", "cat", true), ("[!a-c]*", "cat", false),
        ("[^a-c]*", "dog", true), ("\\*.txt", "*.txt", true), ("\\*.txt", "a.txt", false), ("*[x]", "a/x", false),
    ])
    func patternMatching(pattern: String, path: String, expected: Bool) throws {
        #expect(try matches(pattern, path) == expected, "\(pattern) vs \(path)")
    }

    @Test(arguments: [
        ("*", false), ("*.pdf", false), ("?.txt", false), ("[abc]*", false), ("\\*", false),
        ("**", true), ("**/*.pdf", true), ("sub/*", true), ("a/**/b", true),
    ])
    func crossingFoldersIsWhatMatchesInASubfolder(pattern: String, crosses: Bool) throws {
        let glob = try Glob(pattern)
        #expect(glob.crossesFolders == crosses, "\(pattern)")
        // What the property promises, against the matcher: a pattern that crosses none matches no nested path.
        if !crosses { #expect(!glob.matches(RelativePath("sub/a.pdf")) && !glob.matches(RelativePath("a/b"))) }
    }

    /// Patterns of one `*` between literals, `**` and plain names are matched by comparing bytes: the same answers
    /// as the general walk, for every name.
    @Test func shapesMatchedByComparingBytesAgreeWithTheWalk() throws {
        let patterns = ["*", "**", "*.pdf", ".*", "~*", "a*b", "report.pdf", "ab*ba", "*.tar.gz", "x"]
        let names = [
            "", "a", "b", "ab", "aba", "abba", "ab/ba", "a/b", ".", ".hidden", "sub/.hidden", "~", "~lock", "x", "x/",
            "report.pdf", "sub/report.pdf", "a.pdf", ".pdf", "pdf", "a.tar.gz", "tar.gz", "é.pdf", "a\u{FFFD}b",
        ]
        for pattern in patterns {
            let glob = try Glob(pattern)
            for name in names {
                let path = RelativePath(name)
                #expect(glob.matches(path) == glob.matchesByWalk(path), "\(pattern) vs \(name)")
            }
        }
        // Invalid UTF-8 and a "/" in the literal part take the walk (the shape leaves "/" to it).
        let raw = RelativePath([0x61, 0xff, 0x62])
        #expect(try Glob("a*b").matches(raw) == Glob("a*b").matchesByWalk(raw))
        #expect(try Glob("sub/*.pdf").matches(RelativePath("sub/a.pdf")))
    }

    @Test func defaultExcludesRecogniseTemporaryNames() throws {
        let excludes = try [".*", "*.tmp", "*.part", "*.crdownload", "~*"].map(Glob.init)
        for name in [".hidden", "upload.tmp", "video.mp4.part", "file.crdownload", "~lock.docx"] {
            #expect(excludes.contains { $0.matches(RelativePath(name)) }, "\(name) should be excluded")
        }
        for name in ["report.pdf", "a.tmp.txt", "notes~"] {
            #expect(!excludes.contains { $0.matches(RelativePath(name)) }, "\(name) should not be excluded")
        }
    }

    @Test func invalidUTF8NamesMatchByteForByte() throws {
        let name = RelativePath([0x62, 0xff, 0x2e, 0x74, 0x78, 0x74])  // "b\xff.txt"
        #expect(try Glob("*.txt").matches(name))
        #expect(try Glob("b?.txt").matches(name))
        #expect(try !Glob("b??.txt").matches(name))
    }

    @Test func pathologicalPatternFinishesQuickly() throws {
        let glob = try Glob("*a*a*a*a*a*a*a*a*a*b")
        let name = RelativePath(String(repeating: "a", count: 2000))
        let clock = ContinuousClock()
        let elapsed = clock.measure { #expect(!glob.matches(name)) }
        #expect(elapsed < .seconds(5))
    }

    @Test(arguments: ["", "/abs/*.txt", "[abc", "trailing\\", "[z-a]"])
    func invalidPatternsAreRefused(pattern: String) {
        #expect(throws: PatternError.self) { try Glob(pattern) }
    }
}
