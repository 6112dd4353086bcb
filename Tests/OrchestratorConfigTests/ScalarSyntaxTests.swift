import Testing
@testable import OrchestratorConfig

/// The bare-value grammar must accept every TOML 1.0 form (or valid files would be refused)
/// and refuse the malformed ones toml++ cannot be trusted with.
@Suite struct ScalarSyntaxTests {
    @Test(arguments: [
        "true", "false", "0", "+1", "-0", "42", "1_000", "0xDEAD_beef", "0o755", "0b1010", "3.14", "-0.01", "5e+22",
        "1E06", "-2E-2", "6.626e-34", "224_617.445_991", "inf", "+inf", "-nan", "nan",
        "1979-05-27", "07:32:00", "00:32:00.999999", "1979-05-27T07:32:00Z", "1979-05-27t07:32:00z",
        "1979-05-27 07:32:00", "1979-05-27T00:32:00.999-07:00", "1979-05-27T07:32:00+01:30",
    ])
    func accepts(_ token: String) {
        #expect(ScalarSyntax.isValid(Array(token.utf8)[...]))
    }

    @Test(arguments: [
        "", "10m", "yes", "True", "00", "01", "0_1", "1_", "1__0", "_1", "+0x1", "0x", "0o8", "0b2", "1.", ".5", "1.e5", "1e",
        "1e+", "infinity", "1979-05-27 0", "1979-05-27T", "1979-05-27Tx07:32:00Z", "1979-05-27 07:32", "07:32",
        "1979-05-27T07:32:00+01", "1979-05-27T07:32:00.", "1979-5-27", "../x.sh", "= 80",
    ])
    func refuses(_ token: String) {
        #expect(!ScalarSyntax.isValid(Array(token.utf8)[...]))
    }
}
