#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// The live dashboard (`GET /`) in a real headless Chromium, driven by selenium (Tests/Dashboard/dashboard_check.py):
/// the login form with a token, no console errors, a dropped file shown done within 2 s, replay from the Failed
/// list and cancel from the running list. Screenshots of each step are kept in .build/test-artifacts/dashboard/.
@Suite(.timeLimit(.minutes(3))) struct DashboardTests {
    static let token = "dash-\(UUID().uuidString)"

    static let config = """
        [inbox]
        settle = "50ms"

        [limits]
        max_concurrent = 2
        shutdown_grace = "5s"

        [http]
        listen = "127.0.0.1:0"
        token_file = "../token"

        [[handler]]
        name = "dash"
        command = ["../workers/dash.sh", "{file}"]
        max_attempts = 1
        """

    /// Fails on names starting with "bad", runs until cancelled on "slow", succeeds on anything else.
    static let worker = """
        #!/bin/sh
        case "$(basename "$1")" in
            bad*) echo "refusing $1" >&2; exit 3 ;;
            slow*) exec sleep 120 ;;
        esac
        exit 0
        """

    @Test func theDashboardShowsWorkAndActsOnIt() throws {
        let instance = try TestInstance(config: Self.config, workers: ["dash.sh": Self.worker])
        try "\(Self.token)\n".write(toFile: instance.path("token"), atomically: true, encoding: .utf8)
        try instance.startDaemon()
        let base = try instance.apiBase()
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let artifacts = repository.appendingPathComponent(".build/test-artifacts/dashboard").path
        let outputPath = instance.path("dashboard-check.out")
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", repository.appendingPathComponent("Tests/Dashboard/dashboard_check.py").path, base, instance.root.path,
            artifacts, Self.token,
        ]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = process.standardOutput
        try process.run()
        let exited = waitForExit(process, within: 150, "the dashboard check")
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        #expect(exited && process.terminationStatus == 0, "dashboard check:\n\(output)\ndaemon log:\n\(instance.log.suffix(3000))")
        #expect(output.contains("dashboard ok"))
        #expect(instance.stopDaemon() == 0)
    }
}
