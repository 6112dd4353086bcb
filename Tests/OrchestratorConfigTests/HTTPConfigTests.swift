import Foundation
import Testing
@testable import OrchestratorConfig

@Suite struct HTTPConfigTests {
    @Test func anAbsentTableMeansNoServer() throws {
        #expect(try load("").http == nil)
    }

    @Test func aLoopbackAddressNeedsNoToken() throws {
        let http = try #require(try load("[http]\nlisten = \"127.0.0.1:8765\"\n").http)
        #expect(http == HTTPSettings(listen: ListenAddress(host: "127.0.0.1", port: 8765)))
    }

    @Test func theTokenFileIsRelativeToTheConfigAndTrimmed() throws {
        let folder = NSTemporaryDirectory() + "http-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/config", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try " s3cret\n\n".write(toFile: folder + "/token", atomically: true, encoding: .utf8)
        let http = try #require(
            try load("[http]\nlisten = \"0.0.0.0:80\"\ntoken_file = \"../token\"\n", file: folder + "/config/orchestrator.toml").http)
        #expect(http.tokenFile == folder + "/token")
        #expect(http.token == "s3cret")
    }

    @Test func everyProblemHasItsLine() throws {
        let folder = NSTemporaryDirectory() + "http-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "\n \n".write(toFile: folder + "/empty", atomically: true, encoding: .utf8)
        let cases: [(String, String)] = [
            ("[http]\nlisten = \"0.0.0.0:8765\"\n",
             "2: [http] listen: 0.0.0.0:8765 is not a loopback address; set token_file so that callers must authenticate"),
            ("[http]\nlisten = \"127.0.0.1\"\n",
             #"2: [http] listen: "127.0.0.1" is not HOST:PORT (an IPv4 address, [IPv6] or localhost, then a port)"#),
            ("[http]\nlisten = \"127.0.0.1:99999\"\n", #"2: [http] listen: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535"#),
            ("[http]\nlisten = 8765\n", "2: listen: expected a string, got integer"),
            ("[http]\nlisten = \"[::1]:1\"\ntoken_file = \"missing\"\n",
             "3: [http] token_file: cannot read \(folder)/missing: No such file or directory"),
            ("[http]\nlisten = \"[::1]:1\"\ntoken_file = \"empty\"\n", "3: [http] token_file: \(folder)/empty is empty"),
            ("[http]\nlisten = \"[::1]:1\"\nport = 1\n", #"3: unknown key "port" in [http]"#),
            ("[http]\n", #"1: [http]: listen is required, e.g. listen = "127.0.0.1:8765""#),
        ]
        for (text, expected) in cases {
            do {
                _ = try load(text, file: folder + "/orchestrator.toml")
                Issue.record("loaded: \(text)")
            } catch {
                #expect(error.problems.map { "\($0.line): \($0.message)" } == [expected], "\(text)")
            }
        }
    }
}
