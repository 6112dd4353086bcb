import ArgumentParser
import Foundation
import OrchestratorCron

extension Orchestrator {
    /// `orchestrator cron next EXPR [--from ISO] [--count N] [--tz ZONE]` (spec/cron.md §1).
    struct Cron: CommandGroup {
        static let configuration = CommandConfiguration(
            abstract: "Cron expression tools.", subcommands: [Next.self])

        /// Reads its own arguments so that every mistake, usage errors included, is one `error:` line on stderr
        /// (status 64 for usage, 65 for a bad expression, zone or timestamp) and stdout stays empty.
        struct Next: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the next fire times of a cron expression, one ISO-8601 timestamp with offset per line.",
                usage: "orchestrator cron next EXPR [--from ISO] [--count N] [--tz ZONE]",
                discussion: """
                    EXPR: five fields or a macro, as one argument ("30 2 * * *", "@daily").
                      --from ISO  start strictly after this ISO-8601 instant (default: now);
                                  without an offset it is wall-clock time in --tz
                      --count N   how many fire times to print (default: 1)
                      --tz ZONE   IANA zone (default: the host's, from TZ or /etc/localtime)
                    """)

            @Argument(parsing: .captureForPassthrough, help: .hidden)
            var arguments: [String] = []

            struct Options {
                var expression: String?
                var from: String?
                var count = 1
                var tz: String?
            }

            func run() throws {
                guard let options = try parseOptions() else {
                    printOut(Self.helpMessage())
                    return
                }
                guard let expression = options.expression else { throw usage("missing the cron expression (EXPR)") }
                if options.tz == nil, let problem = hostZoneProblem() { printError("warning: \(problem)") }
                var fires = try reportingCronErrors { () throws(CronError) -> CronSchedule.Fires in
                    let cron = try CronExpression(parsing: expression)
                    let zone = try options.tz.map { name throws(CronError) in try loadZone(name) } ?? hostZone()
                    let start =
                        try options.from.map { text throws(CronError) in try CronTimestamp.parse(text, in: zone) }
                        ?? Int64(Date().timeIntervalSince1970.rounded(.down))
                    return CronSchedule(expression: cron, zone: zone).fires(after: start)
                }
                guard let first = fires.next() else {
                    let cron = try? CronExpression(parsing: expression)
                    let reason =
                        if cron?.isReboot == true {
                            "@reboot has no calendar fire time: it runs once each time the daemon starts"
                        } else if cron?.canEverFire == false {
                            "can never fire: none of the dates it names exists"
                        } else {
                            "does not fire again"
                        }
                    printError("error: cron expression \(quotedArgument(expression)): \(reason)")
                    throw ExitCode(65)
                }
                try printFires(first: first, then: &fires, count: options.count)
            }

            /// `EXPR`, `--from X` / `--from=X`, `--count N`, `--tz Z`, and `--` before an EXPR that starts with `-`;
            /// nil for `--help` / `-h`.
            private func parseOptions() throws -> Options? {
                var options = Options()
                var index = 0
                var onlyPositional = false
                while index < arguments.count {
                    let argument = arguments[index]
                    index += 1
                    if !onlyPositional && (argument == "--help" || argument == "-h") { return nil }
                    if onlyPositional || !argument.hasPrefix("--") {
                        guard options.expression == nil else {
                            throw usage(
                                "unexpected argument \(quotedArgument(argument)); quote the expression as one argument")
                        }
                        options.expression = argument
                        continue
                    }
                    if argument == "--" {
                        onlyPositional = true
                        continue
                    }
                    var name = argument
                    var value: String?
                    if let equals = argument.firstIndex(of: "=") {
                        name = String(argument[..<equals])
                        value = String(argument[argument.index(after: equals)...])
                    }
                    // Every command takes --config (and --store); this one reads neither, so they are taken and left.
                    guard ["--from", "--count", "--tz", "--config", "--store"].contains(name) else {
                        throw usage("unknown option \(quotedArgument(name)) (options: --from, --count, --tz)")
                    }
                    if value == nil {
                        guard index < arguments.count else { throw usage("\(name) needs a value") }
                        value = arguments[index]
                        index += 1
                    }
                    guard let value else { continue }
                    switch name {
                    case "--from": options.from = value
                    case "--tz": options.tz = value
                    case "--config", "--store": break
                    default:
                        guard let number = Int(value), number >= 1 else {
                            throw usage("--count must be a whole number of at least 1, not \(quotedArgument(value))")
                        }
                        options.count = number
                    }
                }
                return options
            }

            private func usage(_ message: String) -> ExitCode {
                printError("error: \(message)")
                return ExitCode(64)
            }
        }
    }
}

/// Runs `body`; a `CronError` becomes one `error:` line on stderr and exit status 65 (bad input).
private func reportingCronErrors<T>(_ body: () throws(CronError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        switch error {
        case .unknownZone: printError("error: --tz: \(error)")
        case .invalidTimestamp: printError("error: --from: \(error)")
        case .invalidExpression: printError("error: \(error)")
        }
        throw ExitCode(65)
    }
}

/// Writes `count` lines (`first`, then from `rest`) to stdout in large blocks: `cron next --count 1000000`
/// is a benchmark of the evaluator, not of a write per line.
private func printFires(first: CronSchedule.Fire, then rest: inout CronSchedule.Fires, count: Int) throws {
    let blockSize = 1 << 16
    let block = UnsafeMutablePointer<UInt8>.allocate(capacity: blockSize + CronTimestampWriter.maximumLineLength)
    defer { block.deallocate() }
    var writer = CronTimestampWriter()
    var used = writer.writeLine(first.instant, offset: first.offset, to: block)
    var printed = 1
    while printed < count, let fire = rest.next() {
        used += writer.writeLine(fire.instant, offset: fire.offset, to: block + used)
        printed += 1
        if used >= blockSize {
            try writeToStandardOutput(block, count: used)
            used = 0
        }
    }
    try writeToStandardOutput(block, count: used)
}

private func writeToStandardOutput(_ bytes: UnsafeMutablePointer<UInt8>, count: Int) throws {
    var done = 0
    while done < count {
        let written = write(STDOUT_FILENO, bytes + done, count - done)
        if written < 0 {
            if errno == EINTR { continue }
            printError("error: writing to standard output: \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        done += written
    }
}

private func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

private func quotedArgument(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        .replacingOccurrences(of: "\n", with: "\\n") + "\""
}
