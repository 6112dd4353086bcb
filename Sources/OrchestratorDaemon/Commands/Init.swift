#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OrchestratorConfig
import OrchestratorPlatform

/// `orchestrator init [DIR]`: a ready-to-run instance. Never overwrites anything that exists.
public enum Init {
    /// `configFile`: where the config goes (`--config`); the relative paths in it (`../Inbox`) make its folder's
    /// parent the instance folder, which `directory`, when given too, must be.
    public static func run(directory: String?, configFile: String? = nil) throws(CommandError) -> [String] {
        let root: String
        let configPath: String
        let configFolder: String
        if let configFile {
            let file = absolute(configFile)
            guard !configFile.hasSuffix("/"), file != "/" else {
                throw CommandError(.usage, "error: --config \(configFile) names no file")
            }
            let folder = URL(fileURLWithPath: file).deletingLastPathComponent()
            let implied = folder.deletingLastPathComponent().path
            if let directory, absolute(directory) != implied {
                throw CommandError(
                    .usage,
                    "error: --config \(configFile) makes \(implied) the instance folder (the config's paths, like ../Inbox, are relative to its own folder), not \(directory)")
            }
            (root, configPath, configFolder) = (implied, file, folder.path)
        } else {
            let directory = directory ?? "."
            root = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
            configFolder = root + "/config"
            configPath = configFolder + "/orchestrator.toml"
        }
        var lines: [String] = []
        for folder in ["Inbox", "Done", "Failed", "config", "workers", ".orchestrator"] {
            let path = PathBytes(folder == "config" ? configFolder : root + "/" + folder)
            if FileSystem.exists(path) {
                lines.append("kept    \(path)/")
                continue
            }
            do {
                try FileSystem.createDirectories(path)
            } catch {
                throw CommandError(.badInput, "error: cannot create \(path): \(error)")
            }
            lines.append("created \(path)/")
        }
        for (file, contents, mode) in [
            (configPath, Templates.config, 0o644), (root + "/workers/process.sh", Templates.worker, 0o755),
        ] {
            let path = PathBytes(file)
            if FileSystem.exists(path) {
                lines.append("kept    \(path)")
                continue
            }
            do {
                try FileSystem.writeFile(path, Array(contents.utf8), mode: mode_t(mode))
            } catch {
                throw CommandError(.badInput, "error: cannot write \(path): \(error)")
            }
            lines.append("created \(path)")
        }
        return lines
    }

    /// `path` from the current directory, with `.` and `..` taken out as written (links are not followed).
    private static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let standardized = URL(fileURLWithPath: full).standardized.path
        return standardized.count > 1 && standardized.hasSuffix("/") ? String(standardized.dropLast()) : standardized
    }
}

/// The files `init` writes; the repository's own config/orchestrator.toml and workers/process.sh are
/// these same texts (a test keeps them identical).
public enum Templates {
    public static let config = #"""
# orchestrator configuration. Relative paths resolve against this file's folder.
# Every key below is optional except a handler's name and command; unknown keys are errors.

[paths]
inbox  = "../Inbox"              # drop files here
done   = "../Done"               # files whose worker exited 0
failed = "../Failed"             # files whose last attempt failed for good
state  = "../.orchestrator"      # SQLite database, lock, per-attempt logs
processing = "../Inbox/.processing"   # claimed files wait here; same filesystem as inbox

[inbox]
include   = ["**"]                # "**" crosses folders, so nested files count when recursive = true
exclude   = [".*", "*.tmp", "*.part", "*.crdownload", "~*"]
recursive = false                # watch subfolders too; keep relative paths in Done/Failed
settle    = "500ms"              # a file written in place counts as arrived after this long unchanged

[limits]
max_concurrent     = 2           # workers running at once (file jobs and tasks share them)
max_cpu_percent    = 80          # admit new work only while estimates and the host's load fit under this
max_memory_percent = 85
starvation_after   = "30m"       # a waiting job gains +1 priority per this much waiting, up to 10
shutdown_grace     = "30s"       # on SIGTERM/SIGINT, how long running workers may finish

# Handlers: first match wins. {file} is the claimed file's absolute path, {name} its path relative
# to Inbox; also {stem} {ext} {job} {attempt}. Workers run with this folder as working directory.
[[handler]]
name         = "default"
match        = ["*"]
command      = ["../workers/process.sh", "{file}"]   # records name, size, lines, sha256; fails on empty files
priority     = 5
timeout      = "10m"             # then SIGTERM to the worker's process group, SIGKILL after shutdown_grace
max_attempts = 3
backoff      = "30s"             # exponential with jitter: 30s, 60s, 120s ...
breaker      = { failures = 5, cooldown = "5m" }   # after 5 failures in a row, pause this handler 5m

# Tasks: interval (every), cron (cron + tz) or event (on) commands on the same queue. Examples:
#
# [[task]]
# name    = "health_check"
# every   = "10m"                # slots at :00, :10, :20 ...
# command = ["../scripts/check_health.sh"]
#
# [[task]]
# name    = "analysis"
# every   = "30m"
# after   = ["health_check"]     # only after health_check succeeded since analysis last ran
# command = ["../scripts/analyse.sh"]
#
# [[task]]
# name    = "briefing"
# cron    = "0 3 * * *"          # see `orchestrator cron next "0 3 * * *" --count 3`
# tz      = "Europe/Berlin"
# command = ["../scripts/briefing.sh"]
#
# [[task]]
# name    = "on_failure"
# on      = "file.failed"        # also file.received, file.done, task.completed, task.failed,
# command = ["../scripts/notify.sh"]   # error.critical, or any name given to `orchestrator trigger`

[sweeps]
retry    = "1m"                  # re-queue retries whose backoff is due
ingest   = "5m"                  # rescan Inbox for files no event announced
watchdog = "30s"                 # timeouts, the watch, disk space; health snapshot for `status`
prune    = "1h"                  # delete what [retention] names and reuse the freed space

[retention]                      # what the prune sweep deletes; files in Done/ and Failed/ are never touched
jobs = "90d"                     # finished jobs (with their attempts, transitions, events) older than this
logs = "14d"                     # per-attempt log files older than this

# Several daemons sharing one queue keep the ledger in PostgreSQL (README, "The store"): give each the same
# [store] url and [paths] inbox/done/failed, and a [node] name of its own.
# [store]
# url   = "postgres://orchestrator@db.example/orchestrator"
# lease = "30s"                  # a silent daemon's running jobs go to the others after this
#
# [node]
# name  = "host-a"               # default: the host name

"""#

    public static let worker = #"""
#!/bin/sh
# Sample worker: records each file's name, size, line count and sha256 in reports/inventory.tsv
# beside the config folder, and refuses empty files (so a failure is easy to try out).
# The orchestrator runs it with the config folder as working directory and the file as "$1".
set -eu
file="$1"
name="${ORCH_NAME:-$(basename -- "$file")}"
if [ ! -s "$file" ]; then
    echo "refusing empty file: $name" >&2
    exit 1
fi
size=$(wc -c < "$file")
lines=$(wc -l < "$file")
sum=$(sha256sum < "$file" | cut -d' ' -f1)
# Tabs and newlines in a name would break the table's rows.
clean=$(printf '%s' "$name" | tr '\t\n' '  ')
mkdir -p ../reports
printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$sum" "$size" "$lines" "$clean" >> ../reports/inventory.tsv
echo "recorded $clean: $size bytes, $lines lines, sha256 $sum"

"""#
}
