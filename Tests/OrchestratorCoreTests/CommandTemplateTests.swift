import Testing
@testable import OrchestratorCore

struct CommandTemplateTests {
    let values = PlaceholderValues(
        file: Array("/srv/Inbox/.processing/sub/a.tar.gz".utf8), name: RelativePath("sub/a.tar.gz"), job: 42, attempt: 3)

    func expand(_ argument: String) throws -> String {
        String(decoding: try ArgumentTemplate(parsing: argument).expand(values), as: UTF8.self)
    }

    @Test func everyPlaceholderExpands() throws {
        #expect(try expand("{file}") == "/srv/Inbox/.processing/sub/a.tar.gz")
        #expect(try expand("{name}") == "sub/a.tar.gz")
        #expect(try expand("{stem}") == "a.tar")
        #expect(try expand("{ext}") == "gz")
        #expect(try expand("{job}") == "42")
        #expect(try expand("{attempt}") == "3")
        #expect(try expand("--out=/tmp/{stem}-{job}.{ext}") == "--out=/tmp/a.tar-42.gz")
    }

    @Test func doubledBracesAreLiteral() throws {
        #expect(try expand("{{file}}") == "{file}")
        #expect(try expand("{{{name}}}") == "{sub/a.tar.gz}")
        #expect(try expand("json={{\"k\": 1}}") == "json={\"k\": 1}")
    }

    @Test func nameWithoutDotHasEmptyExtension() throws {
        let plain = PlaceholderValues(file: Array("/x/README".utf8), name: RelativePath("README"), job: 1, attempt: 1)
        #expect(try ArgumentTemplate(parsing: "{stem}|{ext}").expand(plain) == Array("README|".utf8))
        let dotfile = PlaceholderValues(file: [], name: RelativePath(".bashrc"), job: 1, attempt: 1)
        #expect(try ArgumentTemplate(parsing: "{stem}|{ext}").expand(dotfile) == Array(".bashrc|".utf8))
    }

    @Test func bytesPassThroughUnchanged() throws {
        let hostile: [UInt8] = Array("-rf \n\"quoted\" ".utf8) + [0xff, 0xfe]
        let hostileValues = PlaceholderValues(file: hostile, name: RelativePath(hostile), job: 1, attempt: 1)
        #expect(try ArgumentTemplate(parsing: "{file}").expand(hostileValues) == hostile)
        #expect(try ArgumentTemplate(parsing: "x{name}y").expand(hostileValues) == [UInt8(ascii: "x")] + hostile + [UInt8(ascii: "y")])
    }

    @Test func placeholdersAreReported() throws {
        #expect(try ArgumentTemplate(parsing: "{file}:{job}").placeholders == [.file, .job])
        #expect(try ArgumentTemplate(parsing: "plain").placeholders.isEmpty)
    }

    @Test(arguments: [("{foo}", "unknown placeholder {foo}"), ("{file", "unclosed"), ("a}b", "lone")])
    func malformedArgumentsAreRefused(argument: String, message: String) {
        #expect {
            try ArgumentTemplate(parsing: argument)
        } throws: { error in
            (error as? PatternError)?.message.contains(message) == true
        }
    }

    @Test func commandNeedsAProgram() throws {
        #expect(throws: PatternError.self) { try CommandTemplate(parsing: []) }
        #expect(throws: PatternError.self) { try CommandTemplate(parsing: ["", "x"]) }
        let command = try CommandTemplate(parsing: ["convert", "{file}", "{stem}.png"])
        #expect(command.expand(values).map { String(decoding: $0, as: UTF8.self) }
            == ["convert", "/srv/Inbox/.processing/sub/a.tar.gz", "a.tar.png"])
    }
}
