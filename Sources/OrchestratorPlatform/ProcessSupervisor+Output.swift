import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// Copying a worker's stdout and stderr pipes into its capped log.
extension ProcessSupervisor {
    /// Reads at most this many chunks per pipe after the leader has exited: more than any pipe
    /// buffer holds (1 MiB at most, `pipe-max-size`), yet bounded if an escaped grandchild keeps writing.
    static let maxDrainReads = 32

    /// One read per readiness event; the source fires again while data remains.
    func readOutput(_ worker: SupervisedWorker, _ stream: SupervisedWorker.Slot) {
        guard worker.result == nil else { return }
        switch readChunk(worker, stream) {
        case .data, .wouldBlock: break
        case .end: stopWatching(worker, stream)
        }
    }

    /// After the leader is reaped: take what is already buffered, then close, without waiting for EOF.
    func drainAndClose(_ worker: SupervisedWorker, _ stream: SupervisedWorker.Slot) {
        guard worker.registrations[stream] != nil else { return }  // Closed at EOF.
        for _ in 0..<Self.maxDrainReads {
            guard case .data = readChunk(worker, stream) else { break }
        }
        stopWatching(worker, stream)
    }

    /// Ends the log: closes it, after a line saying how much was dropped, if anything was.
    func finishLog(_ worker: SupervisedWorker) {
        if worker.droppedBytes > 0, !worker.logBroken {
            let atLineStart = worker.lastLoggedByte.map { $0 == UInt8(ascii: "\n") } ?? true
            let note = (atLineStart ? "" : "\n")
                + "[orchestrator: dropped \(worker.droppedBytes) bytes of output beyond the log cap of \(worker.logCap) bytes]\n"
            _ = writeAll(worker.logFD, Array(note.utf8))
        }
        if worker.logFD >= 0 { close(worker.logFD) }
    }

    private enum ReadOutcome { case data, wouldBlock, end }

    private func readChunk(_ worker: SupervisedWorker, _ stream: SupervisedWorker.Slot) -> ReadOutcome {
        let fd = stream == .stdout ? worker.stdoutFD : worker.stderrFD
        while true {
            let n = read(fd, readBuffer.baseAddress, readBuffer.count)
            if n > 0 {
                consume(worker, stream, UnsafeRawBufferPointer(rebasing: readBuffer[..<n]))
                return .data
            }
            if n == 0 { return .end }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .end  // EIO and the like: nothing more will come.
            }
        }
    }

    /// What the spawner's child writes to stderr before it exits 127 when the worker cannot start (spawn.c,
    /// `report_start_failure`): this marker, the stage ('c' or 'x') and the errno, 17 bytes in one write.
    static let startFailureMarker: [UInt8] = [0] + Array("orch-spawn".utf8) + [0]
    static let startFailureReportSize = 17

    private func consume(_ worker: SupervisedWorker, _ stream: SupervisedWorker.Slot, _ bytes: UnsafeRawBufferPointer) {
        var bytes = bytes
        if stream == .stderr, !worker.stderrStarted {
            worker.stderrStarted = true
            if worker.startedBySpawner != nil, bytes.count >= Self.startFailureReportSize,
                bytes.starts(with: Self.startFailureMarker)
            {
                var code: Int32 = 0
                withUnsafeMutableBytes(of: &code) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[13..<17])) }
                worker.startFailure = .init(stage: bytes[12], code: code)
                bytes = UnsafeRawBufferPointer(rebasing: bytes[Self.startFailureReportSize...])
                guard !bytes.isEmpty else { return }
            }
        }
        worker.outputBytes += bytes.count
        if stream == .stderr {
            let tail = Self.stderrTailSize
            if bytes.count >= tail {
                worker.stderrTail = Array(bytes[(bytes.count - tail)...])
            } else {
                let excess = worker.stderrTail.count + bytes.count - tail
                if excess > 0 { worker.stderrTail.removeFirst(excess) }
                worker.stderrTail.append(contentsOf: bytes)
            }
        }
        if worker.logFD < 0, !worker.logBroken, worker.loggedBytes < worker.logCap {
            worker.logFD = Self.openLog(worker.logPath)
            if worker.logFD < 0 {
                worker.logBroken = true
                worker.logFailure = SystemError("open", PathBytes(worker.logPath).description).description
            }
        }
        let room = worker.logBroken ? 0 : max(0, worker.logCap - worker.loggedBytes)
        let kept = min(room, bytes.count)
        if kept > 0 {
            let slice = UnsafeRawBufferPointer(rebasing: bytes[..<kept])
            if writeAll(worker.logFD, slice) {
                worker.loggedBytes += kept
                worker.lastLoggedByte = slice[kept - 1]
            } else {
                worker.logBroken = true  // ENOSPC, EIO...: count the rest as dropped.
                worker.logFailure = SystemError("write", PathBytes(worker.logPath).description).description
                worker.droppedBytes += kept
            }
        }
        worker.droppedBytes += bytes.count - kept
    }

    /// A logs folder removed under the daemon (by hand, by a cleaner) is made again: its output is kept, not dropped.
    static func openLog(_ path: [UInt8]) -> Int32 {
        let flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
        let fd = withCBytes(path) { open($0, flags, 0o644) }
        guard fd < 0, errno == ENOENT else { return fd }
        do {
            try FileSystem.createDirectories(PathBytes(path).parent)
        } catch {
            errno = error.code
            return -1
        }
        return withCBytes(path) { open($0, flags, 0o644) }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n > 0 {
                offset += n
            } else if n < 0, errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }
}
