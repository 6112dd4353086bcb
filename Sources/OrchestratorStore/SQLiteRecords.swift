import Foundation
import GRDB
import OrchestratorCore

// Records as the SQLite engine reads them from its rows.

extension JobRecord {
    init(row: Row, prefix: String = "") {
        id = row[prefix + "id"]
        kind = JobKind(rawValue: row[prefix + "kind"]) ?? .file
        name = RelativePath((row[prefix + "name"] as Data?)?.bytes ?? [])
        handler = row[prefix + "handler"]
        state = JobState(rawValue: row[prefix + "state"]) ?? .failed
        priority = row[prefix + "priority"]
        attempts = row[prefix + "attempts"]
        maxAttempts = row[prefix + "max_attempts"]
        notBefore = row[prefix + "not_before"]
        finalPath = (row[prefix + "final_path"] as Data?).map { RelativePath($0.bytes) }
        reason = row[prefix + "reason"]
        createdAt = row[prefix + "created_at"]
        updatedAt = row[prefix + "updated_at"]
        finishedAt = row[prefix + "finished_at"]
        cause = row[prefix + "cause"]
        slotMs = row[prefix + "slot_ms"]
        eventID = row[prefix + "event_id"]
        claimDevice = (row[prefix + "claim_device"] as Int64?).map { UInt64(bitPattern: $0) }
        claimInode = (row[prefix + "claim_inode"] as Int64?).map { UInt64(bitPattern: $0) }
        prioritySetByHand = (row[prefix + "priority_set_at"] as Double?) != nil
        owner = row.hasColumn(prefix + "owner") ? row[prefix + "owner"] : nil
        leaseUntil = row.hasColumn(prefix + "lease_until") ? row[prefix + "lease_until"] : nil
        claims = row.hasColumn(prefix + "claims") ? row[prefix + "claims"] : 0
    }
}

extension AttemptRecord {
    init(row: Row) {
        id = row["id"]
        jobID = row["job_id"]
        number = row["number"]
        outcome = AttemptOutcome(rawValue: row["outcome"]) ?? .failed
        startedAt = row["started_at"]
        endedAt = row["ended_at"]
        pid = row["pid"]
        startTime = (row["start_time"] as Int64?).map { UInt64(bitPattern: $0) }
        exitCode = row["exit_code"]
        signal = row["signal"]
        timedOut = row["timed_out"]
        userCPU = row["user_cpu"]
        systemCPU = row["system_cpu"]
        maxRSSKiB = row["max_rss_kib"]
        logPath = (row["log_path"] as Data?)?.bytes
        stderrTail = (row["stderr_tail"] as Data?)?.bytes ?? []
        reason = row["reason"]
        logPrunedAt = row["log_pruned_at"]
    }
}
