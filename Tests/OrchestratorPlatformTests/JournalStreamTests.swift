import OrchestratorPlatform
import Testing

/// `JOURNAL_STREAM=DEVICE:INODE` names stderr only when both numbers are fd 2's.
struct JournalStreamTests {
    @Test func theVariableNamesTheStreamOnlyWhenDeviceAndInodeBothMatch() {
        #expect(JournalStream.names("8:1234", device: 8, inode: 1234))
        #expect(!JournalStream.names("8:1235", device: 8, inode: 1234))
        #expect(!JournalStream.names("9:1234", device: 8, inode: 1234))
        // systemd writes dev_t as one decimal number, so a large device still compares whole.
        #expect(JournalStream.names("66305:18446744073709551615", device: 66305, inode: .max))
    }

    @Test func malformedValuesNameNothing() {
        for value in ["", "8", "8:", ":1234", "8:1234:5", "x:1234", "8:12a", " 8:1234", "-8:1234"] {
            #expect(!JournalStream.names(value, device: 8, inode: 1234), "\(value)")
        }
    }

    @Test func aVariableThatIsSetButNamesAnotherFileIsNotTheJournal() {
        #expect(!JournalStream.isStandardError(environment: ["JOURNAL_STREAM": "1:1"]))
        #expect(!JournalStream.isStandardError(environment: [:]))
    }
}
