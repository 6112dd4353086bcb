import Testing

@testable import OrchestratorDaemon

/// Each error is one line on stderr (SPEC section 3), whatever text it carries.
@Suite struct CommandErrorTests {
    @Test func aStoreErrorIsOneLineWithoutItsStatement() {
        let message = """
            error: cannot read the state database: SQLite error 11: database disk image is malformed - while executing `SELECT a.*, j.id AS j_id
                FROM attempt a JOIN job j ON j.id = a.job_id
                ORDER BY a.id DESC LIMIT ?`
            """
        let error = CommandError(.failure, message)
        #expect(error.lines == ["error: cannot read the state database: SQLite error 11: database disk image is malformed"])
    }

    @Test func newlinesAndTheIndentationAfterThemBecomeOneSpace() {
        #expect(CommandError.oneLine("error: a\n    b\r\nc\n") == "error: a b c")
        #expect(CommandError.oneLine("error: plain") == "error: plain")
        #expect(CommandError.oneLine("error: `quoted` - while executing `x -- (`status`)` with arguments") == "error: `quoted` with arguments")
    }
}
